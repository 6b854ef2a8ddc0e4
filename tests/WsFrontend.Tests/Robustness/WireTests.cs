using System.Buffers.Binary;
using System.Diagnostics;
using System.Globalization;
using System.Net;
using System.Net.Sockets;
using System.Security.Cryptography;
using System.Text;
using System.Text.Json;
using Broker.Frontend.Options;
using Broker.Frontend.Tests.Infrastructure;
using Xunit.Sdk;

namespace Broker.Frontend.Tests.Robustness;

/// <summary>
/// RFC 6455 on the wire: a bare TCP socket writes exactly the bytes a test says (client frames
/// masked unless the test is about an unmasked one) and reads the server's bytes as they come.
/// Runs against the pipe transport ("Broker:WebSocketTransport" = "Pipe", the default, on the
/// broker's own sockets), and the handshake, fragmentation and close tests also against the
/// pipe transport on Kestrel's sockets ("Broker:SocketTransport" = "Kestrel") and the ASP.NET
/// Core one.
/// </summary>
public sealed class WireTests(WireTests.Servers servers) : IClassFixture<WireTests.Servers>
{
    private const string Pipe = "Pipe";
    private const string AspNetCore = "AspNetCore";

    // The pipe transport on Kestrel's socket transport instead of the broker's own sockets.
    private const string PipeOnKestrel = "PipeOnKestrel";
    private const int MaxFrameBytes = 1024;
    private const int Normal = 1000;
    private const int ProtocolError = 1002;
    private const int Unsupported = 1003;
    private const int TooBig = 1009;
    private const int InvalidPayload = 1007;

    // ---- 1-3: the handshake ----

    [Theory]
    [InlineData(Pipe)]
    [InlineData(PipeOnKestrel)]
    [InlineData(AspNetCore)]
    public async Task Handshake_ValidUpgrade_101WithAcceptThenWelcome(string transport)
    {
        var server = await servers.ForAsync(transport);
        using var client = await WireConnection.ConnectAsync(server);
        var key = WireConnection.NewKey();

        await client.WriteAsync(WireConnection.UpgradeRequest(server, "/chat?user=a", key));

        var response = await client.ReadHttpResponseAsync("the handshake response");
        Assert.Equal(101, response.Status);
        Assert.StartsWith("HTTP/1.1 101", response.Head, StringComparison.Ordinal);
        Assert.Equal(WireConnection.AcceptFor(key), response.Header("Sec-WebSocket-Accept"));
        Assert.Equal("websocket", response.Header("Upgrade"), ignoreCase: true);
        Assert.Contains("upgrade", response.Header("Connection")?.ToLowerInvariant() ?? string.Empty, StringComparison.Ordinal);

        var welcome = await client.ReadFrameAsync("the welcome frame");
        Assert.NotNull(welcome);
        Assert.Equal(WireFrameBuilder.Text, welcome.Opcode);
        Assert.True(welcome.Fin, "The welcome frame is not final.");
        Assert.False(welcome.Masked, "A server frame must not be masked.");
        Assert.Equal(0, welcome.Rsv);
        using var json = JsonDocument.Parse(welcome.Payload);
        Assert.Equal("welcome", json.RootElement.GetProperty("type").GetString());
        Assert.Equal("a", json.RootElement.GetProperty("user").GetString());
        Assert.Equal("chat", json.RootElement.GetProperty("namespace").GetString());
    }

    [Fact]
    public async Task Handshake_HeadersInOddCaseWithExtraSpaces_StillUpgrades()
    {
        var server = await servers.ForAsync(Pipe);
        using var client = await WireConnection.ConnectAsync(server);
        var key = WireConnection.NewKey();
        var request =
            "GET /chat?user=odd HTTP/1.1\r\n" +
            $"hOsT:   127.0.0.1:{server.HttpBase.Port}  \r\n" +
            "upgrade: WebSocket\r\n" +
            "connection:   keep-alive, Upgrade \r\n" +
            $"sec-websocket-key:  {key}   \r\n" +
            "SEC-WEBSOCKET-VERSION:\t13\r\n" +
            "\r\n";

        await client.WriteAsync(request);

        var response = await client.ReadHttpResponseAsync("the handshake response");
        Assert.True(response.Status == 101, $"Expected 101, got: {response.Head}{response.Body}");
        Assert.Equal(WireConnection.AcceptFor(key), response.Header("Sec-WebSocket-Accept"));
        var welcome = await client.ReadJsonAsync("the welcome frame");
        Assert.Equal("welcome", Frame.Type(welcome));
        Assert.Equal("odd", welcome.GetProperty("user").GetString());
    }

    [Fact]
    public async Task Handshake_FirstFramesInTheSameWrite_AreAnswered()
    {
        var server = await servers.ForAsync(Pipe);
        using var client = await WireConnection.ConnectAsync(server);
        var key = WireConnection.NewKey();

        // The request head and two frames in one TCP write: the server must keep what follows the head.
        await client.WriteAsync(
            Encoding.ASCII.GetBytes(WireConnection.UpgradeRequest(server, "/chat?user=a", key)),
            WireFrameBuilder.TextFrame("{\"type\":\"ping\",\"id\":1}"),
            WireFrameBuilder.TextFrame("ping"));

        var response = await client.ReadHttpResponseAsync("the handshake response");
        Assert.Equal(101, response.Status);
        Assert.Equal(WireConnection.AcceptFor(key), response.Header("Sec-WebSocket-Accept"));
        Assert.Equal("welcome", Frame.Type(await client.ReadJsonAsync("the welcome frame")));
        var pong = await client.ReadJsonAsync("the pong to the pipelined ping");
        Assert.Equal("pong", Frame.Type(pong));
        Assert.Equal(1, pong.GetProperty("id").GetInt32());
        Assert.Equal("pong", await client.ReadTextAsync("the text pong to the pipelined text ping"));
    }

    // ---- 4-5: frame headers ----

    [Fact]
    public async Task Frame_Unmasked_Closes1002()
    {
        using var client = await WireConnection.OpenAsync(await servers.ForAsync(Pipe));

        await client.WriteAsync(WireFrameBuilder.Frame(WireFrameBuilder.Text, "{\"type\":\"ping\",\"id\":1}"u8, masked: false));

        await client.ExpectCloseAsync("an unmasked client frame", [ProtocolError]);
    }

    [Theory]
    [InlineData(0x40 | WireFrameBuilder.Text, "RSV1 on a text frame")]
    [InlineData(0x20 | WireFrameBuilder.Text, "RSV2 on a text frame")]
    [InlineData(0x10 | WireFrameBuilder.Text, "RSV3 on a text frame")]
    [InlineData(0x3, "the reserved data opcode 3")]
    [InlineData(0xB, "the reserved control opcode 0xB")]
    public async Task Frame_ReservedBitsOrOpcode_Closes1002(int rsvAndOpcode, string what)
    {
        using var client = await WireConnection.OpenAsync(await servers.ForAsync(Pipe));

        await client.WriteAsync(WireFrameBuilder.Frame(rsvAndOpcode & 0x0F, "{\"type\":\"ping\",\"id\":1}"u8, rsv: rsvAndOpcode >> 4));

        await client.ExpectCloseAsync(what, [ProtocolError]);
    }

    // ---- 6-7: fragmentation ----

    [Theory]
    [InlineData(Pipe)]
    [InlineData(PipeOnKestrel)]
    [InlineData(AspNetCore)]
    public async Task Fragments_WithPingBetween_PongAndJsonPongThenConnectionLives(string transport)
    {
        using var client = await WireConnection.OpenAsync(await servers.ForAsync(transport));

        // {"type":"ping","id":7} in three fragments, a ping control frame between the first two.
        await client.WriteAsync(WireFrameBuilder.TextFrame("{\"type\":\"pi", fin: false));
        await client.WriteAsync(WireFrameBuilder.Frame(WireFrameBuilder.Ping, "abc"u8));
        await client.WriteAsync(WireFrameBuilder.Frame(WireFrameBuilder.Continuation, "ng\",\"id"u8, fin: false));
        await client.WriteAsync(WireFrameBuilder.Frame(WireFrameBuilder.Continuation, "\":7}"u8));

        WireFrame? controlPong = null;
        JsonElement? jsonPong = null;
        var clock = Stopwatch.StartNew();
        while (controlPong is null || jsonPong is null)
        {
            var left = WireConnection.Timeout - clock.Elapsed;
            var frame = await client.ReadFrameAsync("a pong frame and the JSON pong with id 7", left > TimeSpan.Zero ? left : TimeSpan.Zero);
            Assert.True(frame is not null, "The server ended the TCP connection before both pongs arrived.");
            Assert.True(frame.Opcode != WireFrameBuilder.Close, $"The server closed with {frame.CloseCode} before both pongs arrived.");
            if (frame.Opcode == WireFrameBuilder.Pong)
            {
                controlPong = frame;
            }
            else if (frame.Opcode == WireFrameBuilder.Text && ReceivedFrame.Parse(frame.TextPayload) is { IsJson: true } parsed && Frame.HasId(parsed.Json, 7))
            {
                jsonPong = parsed.Json;
            }
        }

        Assert.Equal("abc", controlPong.TextPayload);
        Assert.True(controlPong.Fin, "The pong control frame is not final.");
        Assert.False(controlPong.Masked, "A server frame must not be masked.");
        Assert.Equal("pong", Frame.Type(jsonPong.Value));

        await AssertPingPongAsync(client, 8);
    }

    [Fact]
    public async Task Fragments_ContinuationWithoutMessage_Closes1002()
    {
        using var client = await WireConnection.OpenAsync(await servers.ForAsync(Pipe));

        await client.WriteAsync(WireFrameBuilder.Frame(WireFrameBuilder.Continuation, "{\"type\":\"ping\",\"id\":1}"u8));

        await client.ExpectCloseAsync("a continuation frame with no message started", [ProtocolError]);
    }

    [Fact]
    public async Task Fragments_NewTextFrameWhileMessageUnfinished_Closes1002()
    {
        using var client = await WireConnection.OpenAsync(await servers.ForAsync(Pipe));

        await client.WriteAsync(
            WireFrameBuilder.TextFrame("{\"type\":", fin: false),
            WireFrameBuilder.TextFrame("{\"type\":\"ping\",\"id\":1}"));

        await client.ExpectCloseAsync("a text frame inside an unfinished fragmented message", [ProtocolError]);
    }

    // ---- 8-9: control frames ----

    [Fact]
    public async Task Control_PingWith126BytePayload_Closes1002()
    {
        using var client = await WireConnection.OpenAsync(await servers.ForAsync(Pipe));

        await client.WriteAsync(WireFrameBuilder.Frame(WireFrameBuilder.Ping, new byte[126]));

        await client.ExpectCloseAsync("a ping with a 126-byte payload", [ProtocolError]);
    }

    [Fact]
    public async Task Control_PingNotFinal_Closes1002()
    {
        using var client = await WireConnection.OpenAsync(await servers.ForAsync(Pipe));

        await client.WriteAsync(WireFrameBuilder.Frame(WireFrameBuilder.Ping, "abc"u8, fin: false));

        await client.ExpectCloseAsync("a fragmented ping", [ProtocolError]);
    }

    [Theory]
    [InlineData(Pipe)]
    [InlineData(PipeOnKestrel)]
    [InlineData(AspNetCore)]
    public async Task Close_Normal_ServerAnswers1000ThenEndsTcp(string transport)
    {
        using var client = await WireConnection.OpenAsync(await servers.ForAsync(transport));

        await client.WriteAsync(WireFrameBuilder.CloseFrame(Normal, "bye"));

        // We started the closing handshake: no echo from us, the server answers and hangs up.
        await client.ExpectCloseAsync("the answer to the client's close 1000", [Normal], echo: false);
    }

    [Theory]
    [InlineData(Pipe)]
    [InlineData(PipeOnKestrel)]
    [InlineData(AspNetCore)]
    public async Task Close_OneBytePayload_Closes1002(string transport)
    {
        using var client = await WireConnection.OpenAsync(await servers.ForAsync(transport));

        await client.WriteAsync(WireFrameBuilder.Frame(WireFrameBuilder.Close, [0x03]));

        await client.ExpectCloseAsync("a close frame with a 1-byte payload", [ProtocolError], echo: false);
    }

    [Theory]
    [InlineData(Pipe, 999)]
    [InlineData(Pipe, 1005)]
    [InlineData(AspNetCore, 999)]
    [InlineData(AspNetCore, 1005)]
    public async Task Close_InvalidCode_Closes1002(string transport, int code)
    {
        using var client = await WireConnection.OpenAsync(await servers.ForAsync(transport));

        await client.WriteAsync(WireFrameBuilder.CloseFrame(code));

        await client.ExpectCloseAsync($"a close frame with the invalid code {code}", [ProtocolError], echo: false);
    }

    // ---- 10-12: payloads ----

    [Theory]
    [InlineData(Pipe)]
    [InlineData(PipeOnKestrel)]
    [InlineData(AspNetCore)]
    public async Task Text_InvalidUtf8_Closes1007(string transport)
    {
        using var client = await WireConnection.OpenAsync(await servers.ForAsync(transport));
        byte[] payload = [.. "{\"type\":\"ping\",\"id\":3,\"data\":\""u8, 0xC3, 0x28, .. "\"}"u8];

        await client.WriteAsync(WireFrameBuilder.Frame(WireFrameBuilder.Text, payload));

        // RFC 6455 8.1: the endpoint fails the connection with 1007; no reply frame comes first.
        await client.ExpectCloseAsync("a text frame with invalid UTF-8", [InvalidPayload]);
    }

    [Fact]
    public async Task Frame_HeaderAnnouncingMoreThanMaxFrameBytes_Closes1009WithoutWaitingForPayload()
    {
        using var client = await WireConnection.OpenAsync(await servers.ForAsync(Pipe));

        // Only the header (with its mask key): the 2048 payload bytes never come.
        await client.WriteAsync(WireFrameBuilder.Header(WireFrameBuilder.Text, 2 * MaxFrameBytes));

        await client.ExpectCloseAsync("a frame header announcing 2048 bytes (MaxFrameBytes 1024)", [TooBig], timeout: TimeSpan.FromSeconds(5));
    }

    [Theory]
    [InlineData(Pipe)]
    [InlineData(PipeOnKestrel)]
    public async Task Echo_HeaderAnnouncingMoreThanMaxFrameBytes_Closes1009(string transport)
    {
        // /echo runs on the pipe socket too: a message too big is the client's doing, a close
        // frame, never an exception for Kestrel to log with its stack trace.
        var server = await servers.ForAsync(transport);
        using var client = await WireConnection.ConnectAsync(server);
        await client.WriteAsync(WireConnection.UpgradeRequest(server, "/echo", WireConnection.NewKey()));
        Assert.Equal(101, (await client.ReadHttpResponseAsync("the /echo handshake")).Status);

        await client.WriteAsync(WireFrameBuilder.Header(WireFrameBuilder.Text, 2 * MaxFrameBytes));

        await client.ExpectCloseAsync("an /echo frame header announcing 2048 bytes (MaxFrameBytes 1024)", [TooBig], timeout: TimeSpan.FromSeconds(5));
    }

    [Fact]
    public async Task Fragments_TotalOverMaxFrameBytes_Closes1009()
    {
        using var client = await WireConnection.OpenAsync(await servers.ForAsync(Pipe));
        var half = new string('x', MaxFrameBytes * 2 / 3);

        await client.WriteAsync(
            WireFrameBuilder.TextFrame("{\"type\":\"echo\",\"data\":\"" + half, fin: false),
            WireFrameBuilder.Frame(WireFrameBuilder.Continuation, Encoding.UTF8.GetBytes(half + "\"}")));

        await client.ExpectCloseAsync("two fragments of 700 bytes (MaxFrameBytes 1024)", [TooBig]);
    }

    [Fact]
    public async Task Frame_64BitLengthWithMostSignificantBitSet_Closes1002Or1009()
    {
        using var client = await WireConnection.OpenAsync(await servers.ForAsync(Pipe));

        await client.WriteAsync(WireFrameBuilder.Header(WireFrameBuilder.Text, 0x8000_0000_0000_0000UL));

        await client.ExpectCloseAsync("a 64-bit length with its most significant bit set", [ProtocolError, TooBig]);
    }

    [Fact]
    public async Task Frame_Binary_Closes1003()
    {
        using var client = await WireConnection.OpenAsync(await servers.ForAsync(Pipe));

        await client.WriteAsync(WireFrameBuilder.Frame(WireFrameBuilder.Binary, "{\"type\":\"ping\",\"id\":1}"u8));

        await client.ExpectCloseAsync("a binary frame", [Unsupported]);
    }

    // ---- 13: server pings ----

    [Fact]
    public async Task KeepAlive_ServerPingsRawClient_AnsweringPongsKeepsItConnected()
    {
        await using var server = await BrokerServer.StartAsync(Servers.Settings(Pipe, new()
        {
            ["Broker:KeepAliveInterval"] = "00:00:01",
            ["Broker:KeepAliveTimeout"] = "00:00:01",
        }));
        using var client = await WireConnection.OpenAsync(server);
        var clock = Stopwatch.StartNew();

        // Every ping answered at once: the connection outlives several intervals and timeouts.
        // Counted, not timed: a loaded machine may stretch an interval, never skip a ping.
        var pings = 0;
        while (pings < 4)
        {
            var ping = await client.ReadFrameAsync($"server ping #{pings + 1}", TimeSpan.FromSeconds(5));
            Assert.True(ping is not null, $"The server ended the TCP connection after {pings} pings ({clock.Elapsed}).");
            Assert.True(ping.Opcode == WireFrameBuilder.Ping, $"Expected server ping #{pings + 1}, got {ping} after {clock.Elapsed}.");
            Assert.True(ping.Fin, "A server ping must be final.");
            Assert.False(ping.Masked, "A server frame must not be masked.");
            Assert.True(ping.Payload.Length <= 125, "A control frame's payload is at most 125 bytes.");
            await client.WriteAsync(WireFrameBuilder.Frame(WireFrameBuilder.Pong, ping.Payload));
            pings++;
        }

        await AssertPingPongAsync(client, 5);
    }

    // ---- 14: plain HTTP on the same port ----

    [Fact]
    public async Task Http_Healthz_200()
    {
        var server = await servers.ForAsync(Pipe);
        using var client = await WireConnection.ConnectAsync(server);

        await client.WriteAsync(WireConnection.GetRequest(server, "/healthz"));

        var response = await client.ReadHttpResponseAsync("the /healthz response");
        Assert.True(response.Status == 200, $"Expected 200, got: {response.Head}{response.Body}");
        Assert.Contains("\"status\":\"ok\"", response.Body, StringComparison.Ordinal);
    }

    [Fact]
    public async Task Http_NamespaceWithoutUpgrade_426()
    {
        var server = await servers.ForAsync(Pipe);
        using var client = await WireConnection.ConnectAsync(server);

        await client.WriteAsync(WireConnection.GetRequest(server, "/chat"));

        var response = await client.ReadHttpResponseAsync("the response to a plain GET /chat");
        Assert.True(response.Status == 426, $"Expected 426, got: {response.Head}{response.Body}");
        Assert.Equal("websocket", response.Header("Upgrade"));
        Assert.Equal("13", response.Header("Sec-WebSocket-Version"));
    }

    [Theory]
    [InlineData(Pipe)]
    [InlineData(PipeOnKestrel)]
    [InlineData(AspNetCore)]
    public async Task Http_UpgradeWithVersion8_426ListingVersion13(string transport)
    {
        var server = await servers.ForAsync(transport);
        using var client = await WireConnection.ConnectAsync(server);

        await client.WriteAsync(WireConnection.UpgradeRequest(server, "/chat?user=a", WireConnection.NewKey(), version: "8"));

        // RFC 6455 4.4: a server that does not speak the client's version says which ones it does.
        var response = await client.ReadHttpResponseAsync("the response to Sec-WebSocket-Version: 8");
        Assert.True(response.Status == 426, $"Expected 426, got: {response.Head}{response.Body}");
        Assert.Equal("13", response.Header("Sec-WebSocket-Version"));
    }

    [Fact]
    public async Task Http_UpgradeToUnknownNamespace_404()
    {
        var server = await servers.ForAsync(Pipe);
        using var client = await WireConnection.ConnectAsync(server);

        await client.WriteAsync(WireConnection.UpgradeRequest(server, "/nope?user=a", WireConnection.NewKey()));

        var response = await client.ReadHttpResponseAsync("the response to an upgrade to /nope");
        Assert.True(response.Status == 404, $"Expected 404, got: {response.Head}{response.Body}");
    }

    [Fact]
    public async Task Http_KeepAlive_TwoRequestsOnOneConnectionBothAnswered()
    {
        var server = await servers.ForAsync(Pipe);
        using var client = await WireConnection.ConnectAsync(server);

        await client.WriteAsync(WireConnection.GetRequest(server, "/healthz"));
        var first = await client.ReadHttpResponseAsync("the first /healthz response");
        await client.WriteAsync(WireConnection.GetRequest(server, "/chat"));
        var second = await client.ReadHttpResponseAsync("the second response on the same connection");

        Assert.True(first.Status == 200, $"First: expected 200, got: {first.Head}{first.Body}");
        Assert.True(second.Status == 426, $"Second: expected 426, got: {second.Head}{second.Body}");
    }

    // ---- 15: half-finished handshakes ----

    [Fact]
    public async Task PartialRequestHead_OthersStillConnect()
    {
        var server = await servers.ForAsync(Pipe);
        var partialHead = $"GET /chat?user=partial HTTP/1.1\r\nHost: 127.0.0.1:{server.HttpBase.Port}\r\nUpgrade: webso";

        // One stalls in the middle of its head and stays; another stalls and goes away.
        using var staller = await WireConnection.ConnectAsync(server);
        await staller.WriteAsync(partialHead);
        using (var quitter = await WireConnection.ConnectAsync(server))
        {
            await quitter.WriteAsync(partialHead);
        }

        using var client = await WireConnection.OpenAsync(server, "/chat?user=after");
        Assert.Equal("after", client.Welcome.GetProperty("user").GetString());
        await AssertPingPongAsync(client, 1);
    }

    /// <summary>{"type":"ping","id":N} is answered with {"type":"pong","id":N}.</summary>
    private static async Task AssertPingPongAsync(WireConnection client, int id)
    {
        await client.WriteAsync(WireFrameBuilder.TextFrame($"{{\"type\":\"ping\",\"id\":{id}}}"));
        var pong = await client.ReadJsonAsync($"the pong with id {id}");
        Assert.Equal("pong", Frame.Type(pong));
        Assert.True(Frame.HasId(pong, id), $"Expected the pong to carry id {id}: {pong}");
    }

    /// <summary>One broker per transport for the tests of this class (they run one at a time), with MaxFrameBytes 1024.</summary>
    public sealed class Servers : IAsyncLifetime
    {
        private readonly Dictionary<string, Task<BrokerServer>> _started = new(StringComparer.Ordinal);
        private readonly Lock _gate = new();

        public static Dictionary<string, string?> Settings(string transport, Dictionary<string, string?>? more = null)
        {
            var settings = new Dictionary<string, string?>
            {
                ["Broker:WebSocketTransport"] = transport == PipeOnKestrel ? Pipe : transport,
                ["Broker:MaxFrameBytes"] = MaxFrameBytes.ToString(CultureInfo.InvariantCulture),
            };
            if (transport == PipeOnKestrel)
            {
                settings["Broker:SocketTransport"] = "Kestrel";
            }

            foreach (var (key, value) in more ?? [])
            {
                settings[key] = value;
            }

            return settings;
        }

        public Task<BrokerServer> ForAsync(string transport)
        {
            lock (_gate)
            {
                if (!_started.TryGetValue(transport, out var server))
                {
                    server = BrokerServer.StartAsync(Settings(transport));
                    _started[transport] = server;
                }

                return server;
            }
        }

        public Task InitializeAsync() => Task.CompletedTask;

        public async Task DisposeAsync()
        {
            foreach (var started in _started.Values)
            {
                await ((Task)started).ConfigureAwait(ConfigureAwaitOptions.SuppressThrowing);
                if (started.IsCompletedSuccessfully)
                {
                    await started.Result.DisposeAsync();
                }
            }
        }
    }
}

/// <summary>Client frames, byte for byte: masked with a fresh random key unless told otherwise.</summary>
internal static class WireFrameBuilder
{
    public const int Continuation = 0x0;
    public const int Text = 0x1;
    public const int Binary = 0x2;
    public const int Close = 0x8;
    public const int Ping = 0x9;
    public const int Pong = 0xA;

    /// <summary>A frame header (with its mask key when masked) announcing <paramref name="length"/> payload bytes.</summary>
    public static byte[] Header(int opcode, ulong length, bool fin = true, int rsv = 0, bool masked = true) =>
        HeaderAndMask(opcode, length, fin, rsv, masked ? RandomNumberGenerator.GetBytes(4) : null);

    public static byte[] Frame(int opcode, ReadOnlySpan<byte> payload, bool fin = true, int rsv = 0, bool masked = true)
    {
        var mask = masked ? RandomNumberGenerator.GetBytes(4) : null;
        var header = HeaderAndMask(opcode, (ulong)payload.Length, fin, rsv, mask);
        var frame = new byte[header.Length + payload.Length];
        header.CopyTo(frame, 0);
        for (var i = 0; i < payload.Length; i++)
        {
            frame[header.Length + i] = mask is null ? payload[i] : (byte)(payload[i] ^ mask[i % 4]);
        }

        return frame;
    }

    public static byte[] TextFrame(string text, bool fin = true) => Frame(Text, Encoding.UTF8.GetBytes(text), fin);

    public static byte[] CloseFrame(int code, string reason = "")
    {
        var payload = new byte[2 + Encoding.UTF8.GetByteCount(reason)];
        BinaryPrimitives.WriteUInt16BigEndian(payload, (ushort)code);
        Encoding.UTF8.GetBytes(reason, payload.AsSpan(2));
        return Frame(Close, payload);
    }

    private static byte[] HeaderAndMask(int opcode, ulong length, bool fin, int rsv, byte[]? mask)
    {
        var header = new List<byte>(14) { (byte)((fin ? 0x80 : 0) | ((rsv & 0x7) << 4) | (opcode & 0x0F)) };
        var maskBit = mask is null ? 0 : 0x80;
        if (length < 126)
        {
            header.Add((byte)(maskBit | (int)length));
        }
        else if (length <= ushort.MaxValue)
        {
            header.Add((byte)(maskBit | 126));
            header.Add((byte)(length >> 8));
            header.Add((byte)length);
        }
        else
        {
            header.Add((byte)(maskBit | 127));
            for (var shift = 56; shift >= 0; shift -= 8)
            {
                header.Add((byte)(length >> shift));
            }
        }

        if (mask is not null)
        {
            header.AddRange(mask);
        }

        return [.. header];
    }
}

/// <summary>A frame as the server sent it.</summary>
internal sealed record WireFrame(bool Fin, int Rsv, int Opcode, bool Masked, byte[] Payload)
{
    public string TextPayload => Encoding.UTF8.GetString(Payload);

    /// <summary>The status of a close frame; 1005 when it has no payload.</summary>
    public int CloseCode => Payload.Length >= 2 ? BinaryPrimitives.ReadUInt16BigEndian(Payload) : 1005;

    public override string ToString() => Opcode switch
    {
        WireFrameBuilder.Close => $"close {CloseCode} \"{(Payload.Length > 2 ? Encoding.UTF8.GetString(Payload, 2, Payload.Length - 2) : string.Empty)}\"",
        WireFrameBuilder.Text => $"text \"{TextPayload}\"",
        _ => $"opcode {Opcode} ({Payload.Length} bytes){(Fin ? string.Empty : " FIN=0")}",
    };
}

/// <summary>An HTTP response as read off the wire.</summary>
internal sealed record WireHttpResponse(int Status, string Head, Dictionary<string, string> Headers, string Body)
{
    public string? Header(string name) => Headers.TryGetValue(name, out var value) ? value : null;
}

/// <summary>
/// A bare TCP connection to the broker: writes raw bytes, reads HTTP responses and WebSocket
/// frames off one buffer (so no byte after a response head is lost). Every read waits for
/// bytes or EOF, bounded by a timeout that fails the test with what it was waiting for.
/// </summary>
internal sealed class WireConnection : IDisposable
{
    public static readonly TimeSpan Timeout = TimeSpan.FromSeconds(10);
    private const string AcceptGuid = "258EAFA5-E914-47DA-95CA-C5AB0DC85B11";

    private readonly TcpClient _tcp;
    private readonly NetworkStream _stream;
    private readonly byte[] _buffer = new byte[16 * 1024];
    private int _start;
    private int _end;

    private WireConnection(TcpClient tcp)
    {
        _tcp = tcp;
        _stream = tcp.GetStream();
    }

    /// <summary>The welcome frame, for connections made with <see cref="OpenAsync"/>.</summary>
    public JsonElement Welcome { get; private set; }

    public static string NewKey() => Convert.ToBase64String(RandomNumberGenerator.GetBytes(16));

    public static string AcceptFor(string key) => Convert.ToBase64String(SHA1.HashData(Encoding.ASCII.GetBytes(key + AcceptGuid)));

    public static string UpgradeRequest(BrokerServer server, string pathAndQuery, string key, string version = "13") =>
        $"GET {pathAndQuery} HTTP/1.1\r\n" +
        $"Host: 127.0.0.1:{server.HttpBase.Port}\r\n" +
        "Upgrade: websocket\r\n" +
        "Connection: Upgrade\r\n" +
        $"Sec-WebSocket-Key: {key}\r\n" +
        $"Sec-WebSocket-Version: {version}\r\n\r\n";

    public static string GetRequest(BrokerServer server, string path) =>
        $"GET {path} HTTP/1.1\r\nHost: 127.0.0.1:{server.HttpBase.Port}\r\n\r\n";

    public static Task<WireConnection> ConnectAsync(BrokerServer server) => ConnectFromAsync(server, source: null);

    /// <summary>Connects from a given loopback address (127.0.0.2 and so on: another client address for per-address caps); null: the system's choice.</summary>
    public static async Task<WireConnection> ConnectFromAsync(BrokerServer server, IPAddress? source)
    {
        var tcp = source is null ? new TcpClient { NoDelay = true } : new TcpClient(new IPEndPoint(source, 0)) { NoDelay = true };
        try
        {
            using var timeout = new CancellationTokenSource(Timeout);
            await tcp.ConnectAsync(IPAddress.Loopback, server.HttpBase.Port, timeout.Token);
            return new WireConnection(tcp);
        }
        catch
        {
            tcp.Dispose();
            throw;
        }
    }

    /// <summary>Connects and upgrades (checking 101 and the accept key), and reads the welcome frame.</summary>
    public static async Task<WireConnection> OpenAsync(BrokerServer server, string pathAndQuery = "/chat?user=a")
    {
        var client = await ConnectAsync(server);
        try
        {
            var key = NewKey();
            await client.WriteAsync(UpgradeRequest(server, pathAndQuery, key));
            var response = await client.ReadHttpResponseAsync("the handshake response");
            Assert.True(response.Status == 101, $"Expected 101, got: {response.Head}{response.Body}");
            Assert.Equal(AcceptFor(key), response.Header("Sec-WebSocket-Accept"));
            client.Welcome = await client.ReadJsonAsync("the welcome frame");
            Assert.Equal("welcome", Frame.Type(client.Welcome));
            return client;
        }
        catch
        {
            client.Dispose();
            throw;
        }
    }

    public Task WriteAsync(string ascii) => WriteAsync(Encoding.ASCII.GetBytes(ascii));

    /// <summary>Writes the parts in one TCP write.</summary>
    public async Task WriteAsync(params byte[][] parts)
    {
        byte[] bytes = [.. parts.SelectMany(p => p)];
        using var timeout = new CancellationTokenSource(Timeout);
        await _stream.WriteAsync(bytes, timeout.Token);
    }

    public async Task<WireHttpResponse> ReadHttpResponseAsync(string what)
    {
        using var cts = new CancellationTokenSource(Timeout);
        try
        {
            var head = new StringBuilder();
            var headers = new Dictionary<string, string>(StringComparer.OrdinalIgnoreCase);
            var statusLine = await ReadLineAsync(cts.Token) ?? throw Failure($"The server ended the connection instead of sending {what}.");
            head.Append(statusLine).Append("\r\n");
            var parts = statusLine.Split(' ', 3);
            Assert.True(
                parts.Length >= 2 && parts[0].StartsWith("HTTP/1.", StringComparison.Ordinal) && int.TryParse(parts[1], CultureInfo.InvariantCulture, out _),
                $"Not an HTTP status line ({what}): {statusLine}");
            var status = int.Parse(parts[1], CultureInfo.InvariantCulture);
            while (true)
            {
                var line = await ReadLineAsync(cts.Token) ?? throw Failure($"The server ended the connection inside the head of {what}: {head}");
                head.Append(line).Append("\r\n");
                if (line.Length == 0)
                {
                    break;
                }

                var colon = line.IndexOf(':', StringComparison.Ordinal);
                Assert.True(colon > 0, $"Malformed header line in {what}: {line}");
                var name = line[..colon];
                var value = line[(colon + 1)..].Trim();
                headers[name] = headers.TryGetValue(name, out var earlier) ? earlier + ", " + value : value;
            }

            var body = await ReadHttpBodyAsync(status, headers, cts.Token);
            return new WireHttpResponse(status, head.ToString(), headers, Encoding.UTF8.GetString(body));
        }
        catch (OperationCanceledException) when (cts.IsCancellationRequested)
        {
            throw Failure($"No complete {what} within {Timeout}.");
        }
    }

    /// <summary>The next frame; null when the server ended the TCP connection.</summary>
    public async Task<WireFrame?> ReadFrameAsync(string what, TimeSpan? timeout = null)
    {
        using var cts = new CancellationTokenSource(timeout ?? Timeout);
        try
        {
            var head = await ReadExactlyAsync(2, cts.Token);
            if (head is null)
            {
                return null;
            }

            ulong length = (ulong)(head[1] & 0x7F);
            if (length >= 126)
            {
                var extended = await ReadExactlyAsync(length == 126 ? 2 : 8, cts.Token) ?? throw Failure($"EOF inside a frame header while waiting for {what}.");
                length = extended.Length == 2 ? BinaryPrimitives.ReadUInt16BigEndian(extended) : BinaryPrimitives.ReadUInt64BigEndian(extended);
            }

            var masked = (head[1] & 0x80) != 0;
            var mask = masked ? await ReadExactlyAsync(4, cts.Token) ?? throw Failure($"EOF inside a frame header while waiting for {what}.") : null;
            Assert.True(length <= 16 * 1024 * 1024, $"The server announced a {length}-byte frame while we waited for {what}.");
            var payload = await ReadExactlyAsync((int)length, cts.Token) ?? throw Failure($"EOF inside a frame payload while waiting for {what}.");
            if (mask is not null)
            {
                for (var i = 0; i < payload.Length; i++)
                {
                    payload[i] ^= mask[i % 4];
                }
            }

            return new WireFrame((head[0] & 0x80) != 0, (head[0] >> 4) & 0x7, head[0] & 0x0F, masked, payload);
        }
        catch (OperationCanceledException) when (cts.IsCancellationRequested)
        {
            throw Failure($"No frame within {timeout ?? Timeout} while waiting for {what}.");
        }
        catch (IOException ex)
        {
            throw Failure($"The connection was reset while waiting for {what}: {ex.Message}");
        }
    }

    /// <summary>The next text frame (server pings and pongs skipped); fails on close or EOF.</summary>
    public async Task<string> ReadTextAsync(string what)
    {
        var clock = Stopwatch.StartNew();
        while (true)
        {
            var left = Timeout - clock.Elapsed;
            if (left <= TimeSpan.Zero)
            {
                throw Failure($"No text frame within {Timeout} while waiting for {what}.");
            }

            var frame = await ReadFrameAsync(what, left) ?? throw Failure($"The server ended the TCP connection while we waited for {what}.");
            switch (frame.Opcode)
            {
                case WireFrameBuilder.Text:
                    Assert.True(frame.Fin, $"This reader does not join fragmented server messages ({what}).");
                    Assert.False(frame.Masked, "A server frame must not be masked.");
                    Assert.Equal(0, frame.Rsv);
                    return frame.TextPayload;
                case WireFrameBuilder.Ping or WireFrameBuilder.Pong:
                    continue;
                default:
                    throw Failure($"Got {frame} while waiting for {what}.");
            }
        }
    }

    public async Task<JsonElement> ReadJsonAsync(string what)
    {
        var text = await ReadTextAsync(what);
        var parsed = ReceivedFrame.Parse(text);
        Assert.True(parsed.IsJson, $"Not JSON ({what}): {text}");
        return parsed.Json;
    }

    /// <summary>
    /// Reads frames until the server's close frame, checks its status is one of <paramref name="codes"/>,
    /// answers it with a close of our own (when <paramref name="echo"/>, as a client completing the
    /// handshake does), then expects the server to end the TCP connection.
    /// </summary>
    public async Task ExpectCloseAsync(string what, int[] codes, bool echo = true, TimeSpan? timeout = null)
    {
        var expected = string.Join(" or ", codes);
        var wait = timeout ?? Timeout;
        var before = new List<string>();
        var clock = Stopwatch.StartNew();
        WireFrame? close = null;
        while (close is null)
        {
            var left = wait - clock.Elapsed;
            WireFrame? frame;
            try
            {
                frame = await ReadFrameAsync($"a close frame {expected} after {what}", left > TimeSpan.Zero ? left : TimeSpan.Zero);
            }
            catch (XunitException ex)
            {
                throw Failure($"{ex.Message} Frames before: [{string.Join(", ", before)}].");
            }

            if (frame is null)
            {
                throw Failure($"The server ended the TCP connection without a close frame after {what} (expected {expected}); frames before: [{string.Join(", ", before)}].");
            }

            if (frame.Opcode == WireFrameBuilder.Close)
            {
                close = frame;
            }
            else
            {
                before.Add(frame.ToString());
            }
        }

        Assert.False(close.Masked, "A server close frame must not be masked.");
        Assert.True(close.Fin, "A close frame must be final.");
        Assert.True(codes.Contains(close.CloseCode), $"After {what} the server sent {close}; expected {expected}.");
        if (echo)
        {
            try
            {
                await WriteAsync(WireFrameBuilder.CloseFrame(close.CloseCode));
            }
            catch (IOException)
            {
                // The server had already hung up: that is allowed after a protocol failure.
            }
        }

        await ExpectEndAsync($"the end of TCP after the close frame ({what})");
    }

    /// <summary>Expects the server to end the TCP connection (EOF or reset) without sending anything more.</summary>
    public async Task ExpectEndAsync(string what)
    {
        using var cts = new CancellationTokenSource(Timeout);
        try
        {
            var extra = _end - _start;
            while (true)
            {
                Assert.True(extra == 0, $"The server sent {extra} bytes after its close frame ({what}).");
                var read = await _stream.ReadAsync(_buffer, cts.Token);
                if (read == 0)
                {
                    return;
                }

                extra += read;
            }
        }
        catch (OperationCanceledException) when (cts.IsCancellationRequested)
        {
            throw Failure($"The server kept the TCP connection open for {Timeout}, waiting for {what}.");
        }
        catch (IOException)
        {
            // A reset ends the connection as well.
        }
    }

    /// <summary>Ends the TCP connection with a reset (RST), as a crashed client or a dropped NAT entry does.</summary>
    public void Reset()
    {
        _tcp.Client.LingerState = new LingerOption(true, 0);
        _tcp.Dispose();
    }

    public void Dispose() => _tcp.Dispose();

    private static XunitException Failure(string message) => new(message);

    private async Task<string?> ReadLineAsync(CancellationToken cancellationToken)
    {
        var line = new StringBuilder();
        while (true)
        {
            if (_start == _end && !await FillAsync(cancellationToken))
            {
                return null;
            }

            var b = _buffer[_start++];
            if (b == '\n')
            {
                return line.ToString().TrimEnd('\r');
            }

            line.Append((char)b);
        }
    }

    private async Task<byte[]> ReadHttpBodyAsync(int status, Dictionary<string, string> headers, CancellationToken cancellationToken)
    {
        if (status is 101 or 204 or 304 || status < 200)
        {
            return [];
        }

        if (headers.TryGetValue("Transfer-Encoding", out var encoding) && encoding.Contains("chunked", StringComparison.OrdinalIgnoreCase))
        {
            using var body = new MemoryStream();
            while (true)
            {
                var sizeLine = await ReadLineAsync(cancellationToken) ?? throw Failure("EOF inside a chunked body.");
                var size = int.Parse(sizeLine.Split(';')[0].Trim(), NumberStyles.HexNumber, CultureInfo.InvariantCulture);
                if (size == 0)
                {
                    // Trailers, up to the empty line.
                    while ((await ReadLineAsync(cancellationToken) ?? throw Failure("EOF inside chunked trailers.")).Length > 0)
                    {
                    }

                    return body.ToArray();
                }

                body.Write(await ReadExactlyAsync(size, cancellationToken) ?? throw Failure("EOF inside a chunk."));
                Assert.Equal(string.Empty, await ReadLineAsync(cancellationToken));
            }
        }

        if (headers.TryGetValue("Content-Length", out var length))
        {
            return await ReadExactlyAsync(int.Parse(length, CultureInfo.InvariantCulture), cancellationToken) ?? throw Failure("EOF inside a body.");
        }

        // No length: the body runs to the end of the connection.
        using var rest = new MemoryStream();
        rest.Write(_buffer, _start, _end - _start);
        _start = _end;
        while (await FillAsync(cancellationToken))
        {
            rest.Write(_buffer, _start, _end - _start);
            _start = _end;
        }

        return rest.ToArray();
    }

    /// <summary>Exactly <paramref name="count"/> bytes; null when the connection ends first.</summary>
    private async Task<byte[]?> ReadExactlyAsync(int count, CancellationToken cancellationToken)
    {
        var result = new byte[count];
        var filled = 0;
        while (filled < count)
        {
            if (_start == _end && !await FillAsync(cancellationToken))
            {
                return null;
            }

            var take = Math.Min(count - filled, _end - _start);
            _buffer.AsSpan(_start, take).CopyTo(result.AsSpan(filled));
            _start += take;
            filled += take;
        }

        return result;
    }

    private async Task<bool> FillAsync(CancellationToken cancellationToken)
    {
        _start = 0;
        _end = 0;
        var read = await _stream.ReadAsync(_buffer, cancellationToken);
        _end = read;
        return read > 0;
    }
}
