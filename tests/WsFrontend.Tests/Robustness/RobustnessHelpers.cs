using System.Diagnostics;
using System.Net;
using System.Net.Sockets;
using System.Net.WebSockets;
using System.Security.Cryptography;
using System.Text;
using System.Text.Json;
using Broker.Frontend.Tests.Infrastructure;

namespace Broker.Frontend.Tests.Robustness;

/// <summary>A bounded poll, for state that raises no event (the server's connection count).</summary>
internal static class Eventually
{
    public static Task WaitUntilAsync(Func<bool> condition, TimeSpan timeout, string what) =>
        WaitUntilAsync(() => Task.FromResult(condition()), timeout, what);

    /// <summary>The same, for a condition that asks the cluster (grain statistics).</summary>
    public static async Task WaitUntilAsync(Func<Task<bool>> condition, TimeSpan timeout, string what)
    {
        var clock = Stopwatch.StartNew();
        while (!await condition())
        {
            Assert.True(clock.Elapsed < timeout, $"Timed out after {timeout} waiting for {what}.");
            await Task.Delay(25);
        }
    }
}

/// <summary>Small readers of server frames.</summary>
internal static class Frame
{
    public const WebSocketCloseStatus ServiceRestart = (WebSocketCloseStatus)1012;
    public const WebSocketCloseStatus TryAgainLater = (WebSocketCloseStatus)1013;

    public static string? Type(JsonElement frame) =>
        frame.ValueKind == JsonValueKind.Object && frame.TryGetProperty("type", out var t) && t.ValueKind == JsonValueKind.String
            ? t.GetString()
            : null;

    public static bool Is(JsonElement frame, string type) => Type(frame) == type;

    public static bool IsMessageIn(JsonElement frame, string room) =>
        Is(frame, "message") && frame.GetProperty("room").GetString() == room;

    public static bool HasId(JsonElement frame, int id) =>
        frame.ValueKind == JsonValueKind.Object
        && frame.TryGetProperty("id", out var got)
        && got.ValueKind == JsonValueKind.Number
        && got.TryGetInt32(out var value)
        && value == id;

    public static bool HasId(JsonElement frame, string id) =>
        frame.ValueKind == JsonValueKind.Object
        && frame.TryGetProperty("id", out var got)
        && got.ValueKind == JsonValueKind.String
        && got.GetString() == id;

    public static string? Code(JsonElement frame) =>
        Is(frame, "error") && frame.TryGetProperty("code", out var c) ? c.GetString() : null;

    public static string Describe(IEnumerable<JsonElement> frames) =>
        string.Join(", ", frames.GroupBy(f => Type(f) ?? "?").Select(g => $"{g.Key}×{g.Count()}"));
}

internal static class TestClientExtensions
{
    /// <summary>
    /// Reads JSON frames until <paramref name="complete"/> says the collection is complete,
    /// within <paramref name="timeout"/>; fails with a summary of what did arrive.
    /// </summary>
    public static async Task<List<JsonElement>> CollectAsync(this TestClient client, Func<List<JsonElement>, bool> complete, TimeSpan timeout, string who = "client")
    {
        var frames = new List<JsonElement>();
        var deadline = Stopwatch.StartNew();
        while (!complete(frames))
        {
            var left = timeout - deadline.Elapsed;
            if (left <= TimeSpan.Zero)
            {
                throw new TimeoutException($"{who}: incomplete after {timeout}; got {frames.Count} frames ({Frame.Describe(frames)}).");
            }

            ReceivedFrame next;
            try
            {
                next = await client.NextRawAsync(left);
            }
            catch (Exception ex) when (ex is TimeoutException or InvalidOperationException)
            {
                var closed = client.Closed.IsCompleted ? $"closed with {await client.Closed}" : "open";
                throw new TimeoutException($"{who} ({closed}): incomplete after {deadline.Elapsed}; got {frames.Count} frames ({Frame.Describe(frames)}). {ex.Message}", ex);
            }

            if (next.IsJson)
            {
                frames.Add(next.Json);
            }
        }

        return frames;
    }

    /// <summary>After the connection closed: every JSON frame still queued.</summary>
    public static async Task<List<JsonElement>> DrainAsync(this TestClient client)
    {
        await client.Closed.WaitAsync(TestClient.DefaultTimeout);
        var frames = new List<JsonElement>();
        while (true)
        {
            try
            {
                var next = await client.NextRawAsync(TestClient.DefaultTimeout);
                if (next.IsJson)
                {
                    frames.Add(next.Json);
                }
            }
            catch (InvalidOperationException)
            {
                return frames;
            }
        }
    }

    /// <summary>Reads JSON frames up to and including the first that matches.</summary>
    public static Task<List<JsonElement>> CollectUntilAsync(this TestClient client, Func<JsonElement, bool> last, TimeSpan timeout, string who = "client") =>
        client.CollectAsync(frames => frames.Count > 0 && last(frames[^1]), timeout, who);

    /// <summary>
    /// Sends {"type":"ping"} until a pong comes back. A rate_limited reply is retried after a short
    /// pause (waiting for the token bucket to refill); anything else fails. Bounded by <paramref name="timeout"/>.
    /// </summary>
    public static async Task<JsonElement> PingUntilPongAsync(this TestClient client, TimeSpan timeout)
    {
        var clock = Stopwatch.StartNew();
        while (true)
        {
            var reply = await client.RequestAsync(new Dictionary<string, object?> { ["type"] = "ping" }, timeout);
            if (Frame.Is(reply, "pong"))
            {
                return reply;
            }

            Assert.Equal("rate_limited", Frame.Code(reply));
            Assert.True(clock.Elapsed < timeout, $"Still rate limited after {clock.Elapsed}.");

            // The only wait that is not on an event: the token bucket refills with time.
            await Task.Delay(50);
        }
    }
}

/// <summary>A WebSocket client made of a bare TCP socket: it upgrades by hand and then does only what the test says.</summary>
internal sealed class RawWebSocket : IDisposable
{
    private const string AcceptGuid = "258EAFA5-E914-47DA-95CA-C5AB0DC85B11";

    private RawWebSocket(TcpClient tcp, string responseHead)
    {
        Tcp = tcp;
        ResponseHead = responseHead;
    }

    public TcpClient Tcp { get; }

    public NetworkStream Stream => Tcp.GetStream();

    public string ResponseHead { get; }

    public static async Task<RawWebSocket> ConnectAsync(Uri httpBase, string pathAndQuery)
    {
        var tcp = new TcpClient();
        try
        {
            using var timeout = new CancellationTokenSource(TestClient.DefaultTimeout);
            await tcp.ConnectAsync(IPAddress.Loopback, httpBase.Port, timeout.Token);
            var key = Convert.ToBase64String(RandomNumberGenerator.GetBytes(16));
            var request =
                $"GET {pathAndQuery} HTTP/1.1\r\n" +
                $"Host: 127.0.0.1:{httpBase.Port}\r\n" +
                "Upgrade: websocket\r\n" +
                "Connection: Upgrade\r\n" +
                $"Sec-WebSocket-Key: {key}\r\n" +
                "Sec-WebSocket-Version: 13\r\n\r\n";
            var stream = tcp.GetStream();
            await stream.WriteAsync(Encoding.ASCII.GetBytes(request), timeout.Token);

            // Reads the response head byte by byte, so that not a byte of the WebSocket stream is consumed.
            var head = new StringBuilder();
            var one = new byte[1];
            while (!head.ToString().EndsWith("\r\n\r\n", StringComparison.Ordinal))
            {
                if (await stream.ReadAsync(one, timeout.Token) == 0)
                {
                    throw new IOException($"The server closed during the handshake; got: {head}");
                }

                head.Append((char)one[0]);
            }

            var text = head.ToString();
            Assert.StartsWith("HTTP/1.1 101", text, StringComparison.Ordinal);
            var accept = Convert.ToBase64String(SHA1.HashData(Encoding.ASCII.GetBytes(key + AcceptGuid)));
            Assert.Contains($"Sec-WebSocket-Accept: {accept}", text, StringComparison.OrdinalIgnoreCase);
            return new RawWebSocket(tcp, text);
        }
        catch
        {
            tcp.Dispose();
            throw;
        }
    }

    /// <summary>Writes the given text frames (masked, as a client must) in one write, so they reach the server together.</summary>
    public async Task SendTextFramesAsync(IEnumerable<string> texts)
    {
        using var buffer = new MemoryStream();
        var mask = new byte[4];
        foreach (var text in texts)
        {
            var payload = Encoding.UTF8.GetBytes(text);
            buffer.WriteByte(0x81); // FIN + text
            if (payload.Length < 126)
            {
                buffer.WriteByte((byte)(0x80 | payload.Length));
            }
            else if (payload.Length <= ushort.MaxValue)
            {
                buffer.WriteByte(0x80 | 126);
                buffer.WriteByte((byte)(payload.Length >> 8));
                buffer.WriteByte((byte)payload.Length);
            }
            else
            {
                throw new ArgumentException("Frames over 64 KiB are not needed here.", nameof(texts));
            }

            RandomNumberGenerator.Fill(mask);
            buffer.Write(mask);
            for (var i = 0; i < payload.Length; i++)
            {
                payload[i] ^= mask[i % 4];
            }

            buffer.Write(payload);
        }

        using var timeout = new CancellationTokenSource(TestClient.DefaultTimeout);
        await Stream.WriteAsync(buffer.GetBuffer().AsMemory(0, (int)buffer.Length), timeout.Token);
    }

    /// <summary>
    /// The next text frame from the server as text; null when the server closed (then
    /// <see cref="CloseStatus"/> holds its status). Control frames other than close are skipped.
    /// </summary>
    public async Task<string?> ReadTextAsync(TimeSpan timeout)
    {
        using var cts = new CancellationTokenSource(timeout);
        while (true)
        {
            var head = await ReadExactlyAsync(2, cts.Token);
            var opcode = head[0] & 0x0F;
            long length = head[1] & 0x7F;
            if (length == 126)
            {
                var ext = await ReadExactlyAsync(2, cts.Token);
                length = (ext[0] << 8) | ext[1];
            }
            else if (length == 127)
            {
                var ext = await ReadExactlyAsync(8, cts.Token);
                length = 0;
                foreach (var b in ext)
                {
                    length = (length << 8) | b;
                }
            }

            var payload = await ReadExactlyAsync((int)length, cts.Token);
            switch (opcode)
            {
                case 0x1:
                    Assert.True((head[0] & 0x80) != 0, "This reader does not join fragmented frames.");
                    return Encoding.UTF8.GetString(payload);
                case 0x8:
                    CloseStatus = payload.Length >= 2 ? (WebSocketCloseStatus)((payload[0] << 8) | payload[1]) : WebSocketCloseStatus.Empty;
                    return null;
                default:
                    continue;
            }
        }
    }

    /// <summary>Reads <paramref name="count"/> JSON text frames; fails, saying how far it got, if the server closes first.</summary>
    public async Task<List<JsonElement>> ReadJsonFramesAsync(int count, TimeSpan timeout)
    {
        var clock = Stopwatch.StartNew();
        var frames = new List<JsonElement>(count);
        while (frames.Count < count)
        {
            var left = timeout - clock.Elapsed;
            Assert.True(left > TimeSpan.Zero, $"Only {frames.Count} of {count} frames within {timeout}.");
            var text = await ReadTextAsync(left);
            Assert.True(text is not null, $"The server closed with {CloseStatus} after {frames.Count} of {count} frames ({Frame.Describe(frames)}).");
            frames.Add(ReceivedFrame.Parse(text).Json);
        }

        return frames;
    }

    /// <summary>The status of the server's close frame, once <see cref="ReadTextAsync"/> met it.</summary>
    public WebSocketCloseStatus? CloseStatus { get; private set; }

    private async Task<byte[]> ReadExactlyAsync(int count, CancellationToken cancellationToken)
    {
        var bytes = new byte[count];
        await Stream.ReadExactlyAsync(bytes, cancellationToken);
        return bytes;
    }

    /// <summary>Reads (and discards) until the server ends the TCP connection: true on EOF or reset, false on timeout.</summary>
    public async Task<bool> ReadsToEndAsync(TimeSpan timeout)
    {
        using var cts = new CancellationTokenSource(timeout);
        var buffer = new byte[16 * 1024];
        try
        {
            while (await Stream.ReadAsync(buffer, cts.Token) > 0)
            {
            }

            return true;
        }
        catch (OperationCanceledException)
        {
            return false;
        }
        catch (IOException)
        {
            return true;
        }
    }

    public void Dispose() => Tcp.Dispose();
}
