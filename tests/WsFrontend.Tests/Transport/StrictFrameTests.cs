using System.Text;
using Broker.Frontend.Diagnostics;
using Broker.Frontend.Tests.Infrastructure;
using Broker.Frontend.Tests.Robustness;

namespace Broker.Frontend.Tests.Transport;

/// <summary>
/// RFC 6455 rules the transports must enforce as the bytes arrive, on every transport: a text
/// message that is not valid UTF-8 fails with 1007 (§8.1) however its bytes are cut into
/// fragments, and control frames spend the connection's frame budget.
/// </summary>
public sealed class StrictFrameTests(WireTests.Servers servers) : IClassFixture<WireTests.Servers>
{
    private const string Pipe = "Pipe";
    private const string PipeOnKestrel = "PipeOnKestrel";
    private const string AspNetCore = "AspNetCore";
    private const int InvalidPayload = 1007;
    private const int PolicyViolation = 1008;

    [Theory]
    [InlineData(Pipe)]
    [InlineData(PipeOnKestrel)]
    [InlineData(AspNetCore)]
    public async Task Text_InvalidContinuationAcrossFragments_Closes1007(string transport)
    {
        using var client = await WireConnection.OpenAsync(await servers.ForAsync(transport));

        // E2 82 starts a 3-byte sequence; the next fragment goes on with '(' instead of a continuation byte.
        await client.WriteAsync(
            WireFrameBuilder.Frame(WireFrameBuilder.Text, [.. "{\"type\":\"echo\",\"data\":\""u8, 0xE2, 0x82], fin: false),
            WireFrameBuilder.Frame(WireFrameBuilder.Continuation, [(byte)'(', .. "\"}"u8]));

        await client.ExpectCloseAsync("a sequence broken across two fragments", [InvalidPayload]);
    }

    [Theory]
    [InlineData(Pipe)]
    [InlineData(PipeOnKestrel)]
    [InlineData(AspNetCore)]
    public async Task Text_MessageEndsInsideSequence_Closes1007(string transport)
    {
        using var client = await WireConnection.OpenAsync(await servers.ForAsync(transport));

        await client.WriteAsync(WireFrameBuilder.Frame(WireFrameBuilder.Text, [.. "{\"type\":\"ping\"}"u8, 0xF0, 0x9F, 0x98]));

        await client.ExpectCloseAsync("a message ending inside a 4-byte sequence", [InvalidPayload]);
    }

    [Theory]
    [InlineData(Pipe)]
    [InlineData(PipeOnKestrel)]
    [InlineData(AspNetCore)]
    public async Task Text_SequencesSplitAcrossFragmentsAndWrites_Answered(string transport)
    {
        using var client = await WireConnection.OpenAsync(await servers.ForAsync(transport));
        var message = Encoding.UTF8.GetBytes("{\"type\":\"echo\",\"id\":1,\"data\":\"€😀é\"}");
        var euro = Array.IndexOf(message, (byte)0xE2);

        // Cut inside "€" (after its first byte) and inside "😀" (after two of its four), in
        // three fragments; the last fragment's header and payload in separate writes.
        var emoji = euro + 3;
        await client.WriteAsync(WireFrameBuilder.Frame(WireFrameBuilder.Text, message.AsSpan(0, euro + 1), fin: false));
        await client.WriteAsync(WireFrameBuilder.Frame(WireFrameBuilder.Continuation, message.AsSpan(euro + 1, emoji + 2 - euro - 1), fin: false));
        var last = WireFrameBuilder.Frame(WireFrameBuilder.Continuation, message.AsSpan(emoji + 2));
        await client.WriteAsync(last[..3]);
        await client.WriteAsync(last[3..]);

        var echo = await client.ReadJsonAsync("the echo of a message with split sequences");
        Assert.Equal("echo", Frame.Type(echo));
        Assert.Equal("€😀é", echo.GetProperty("data").GetString());
    }

    [Theory]
    [InlineData(Pipe)]
    [InlineData(PipeOnKestrel)]
    public async Task Text_InvalidByteInFirstFragment_Closes1007BeforeTheMessageEnds(string transport)
    {
        using var client = await WireConnection.OpenAsync(await servers.ForAsync(transport));

        // 0xFF is never UTF-8: the connection fails at once, without waiting for the last fragment.
        await client.WriteAsync(WireFrameBuilder.Frame(WireFrameBuilder.Text, [.. "{\"type\":"u8, 0xFF], fin: false));

        await client.ExpectCloseAsync("a first fragment holding 0xFF", [InvalidPayload]);
    }

    [Theory]
    [InlineData(Pipe)]
    [InlineData(PipeOnKestrel)]
    public async Task Ping_OverTheFrameBudget_NotAnsweredThen1008(string transport)
    {
        // A budget of 5 frames and one more per second: five pings spend it.
        await using var server = await BrokerServer.StartAsync(BudgetOfFive(transport));
        using var client = await WireConnection.OpenAsync(server);
        await SpendTheBudgetAsync(client);

        // Five more in one write: dropped unanswered, and the fifth in a row fails the connection.
        await client.WriteAsync([.. Enumerable.Range(6, 5).Select(Ping)]);

        await client.ExpectCloseAsync("five pings over the frame budget (no pong may come first)", [PolicyViolation]);
    }

    [Theory]
    [InlineData(Pipe)]
    [InlineData(PipeOnKestrel)]
    public async Task Ping_OverTheFrameBudgetButFewInARow_DroppedAndConnectionLives(string transport)
    {
        await using var server = await BrokerServer.StartAsync(BudgetOfFive(transport));
        using var client = await WireConnection.OpenAsync(server);
        await SpendTheBudgetAsync(client);

        // Two pings over the budget (fewer than 5 in a row), then a close of our own, which the
        // server reads after them: any pong it sent would come before its answer.
        await client.WriteAsync(Ping(6), Ping(7), WireFrameBuilder.CloseFrame(1000));

        await client.ExpectCloseAsync("two pings over the budget, then our close (no pong may come first)", [1000], echo: false);
    }

    [Fact]
    public async Task Ping_OverTheFrameBudgetOnAnUpgradeLeftToKestrel_Still1008()
    {
        await using var server = await BrokerServer.StartAsync(BudgetOfFive(Pipe));
        using var client = await WireConnection.ConnectAsync(server);

        // A bare LF makes the broker's parser leave the upgrade to Kestrel (it answers 101
        // itself); the socket must still be one with the frame budget, not a laxer one.
        await client.WriteAsync(
            $"GET /chat?user=lf HTTP/1.1\r\nHost: 127.0.0.1:{server.HttpBase.Port}\r\nX-Pad: a\nUpgrade: websocket\r\n" +
            $"Connection: Upgrade\r\nSec-WebSocket-Key: {WireConnection.NewKey()}\r\nSec-WebSocket-Version: 13\r\n\r\n");
        var response = await client.ReadHttpResponseAsync("the answer to an upgrade with a bare LF");
        Assert.Equal(101, response.Status);
        Assert.Equal("Kestrel", response.Header("Server"));
        Assert.Equal("welcome", Frame.Type(await client.ReadJsonAsync("the welcome frame")));
        await SpendTheBudgetAsync(client);

        await client.WriteAsync([.. Enumerable.Range(6, 5).Select(Ping)]);

        await client.ExpectCloseAsync("five pings over the frame budget on Kestrel's upgrade", [PolicyViolation]);
        await Eventually.WaitUntilAsync(
            () => server.Services.GetRequiredService<ClientEventLog>().Total(ClientEvent.ControlFrameFlood) == 1,
            TimeSpan.FromSeconds(10),
            "the flood to be counted");
    }

    [Theory]
    [InlineData(Pipe, WireFrameBuilder.Text)]
    [InlineData(Pipe, WireFrameBuilder.Ping)]
    [InlineData(AspNetCore, WireFrameBuilder.Text)]
    public async Task Echo_FramesOverTheFrameBudget_DroppedThen1008(string transport, int opcode)
    {
        await using var server = await BrokerServer.StartAsync(BudgetOfFive(transport));
        using var client = await WireConnection.ConnectAsync(server);
        await client.WriteAsync(WireConnection.UpgradeRequest(server, "/echo", WireConnection.NewKey()));
        Assert.Equal(101, (await client.ReadHttpResponseAsync("the /echo handshake")).Status);
        for (var i = 1; i <= 5; i++)
        {
            await client.WriteAsync(WireFrameBuilder.Frame(opcode, Encoding.ASCII.GetBytes($"e{i}")));
            var answer = await client.ReadFrameAsync($"the answer to frame {i}");
            Assert.NotNull(answer);
            Assert.Equal(opcode == WireFrameBuilder.Ping ? $"e{i}" : $"Server received: e{i}", answer.TextPayload);
        }

        await client.WriteAsync([.. Enumerable.Range(6, 5).Select(i => WireFrameBuilder.Frame(opcode, Encoding.ASCII.GetBytes($"e{i}")))]);

        await client.ExpectCloseAsync("five echo frames over the frame budget (no answer may come first)", [PolicyViolation]);
    }

    [Fact]
    public async Task Ping_SeveralInOneWrite_EachAnsweredWithItsOwnPayloadInOrder()
    {
        using var client = await WireConnection.OpenAsync(await servers.ForAsync(Pipe));

        await client.WriteAsync(Ping(1), Ping(2), Ping(3));

        // RFC 6455 5.5.3 would allow answering only the latest; clients (and Autobahn's 2.10)
        // expect a pong per ping, and the frame budget is what stops a flood.
        for (var i = 1; i <= 3; i++)
        {
            var pong = await client.ReadFrameAsync($"the pong to ping {i} of three sent at once");
            Assert.NotNull(pong);
            Assert.Equal(WireFrameBuilder.Pong, pong.Opcode);
            Assert.Equal($"p{i}", pong.TextPayload);
        }
    }

    private static Dictionary<string, string?> BudgetOfFive(string transport) =>
        WireTests.Servers.Settings(transport, new()
        {
            ["Broker:RateLimitPerSecond"] = "1",
            ["Broker:RateLimitBurst"] = "5",
        });

    private static byte[] Ping(int i) => WireFrameBuilder.Frame(WireFrameBuilder.Ping, Encoding.ASCII.GetBytes($"p{i}"));

    /// <summary>Five pings, one at a time, each answered by its pong.</summary>
    private static async Task SpendTheBudgetAsync(WireConnection client)
    {
        for (var i = 1; i <= 5; i++)
        {
            await client.WriteAsync(Ping(i));
            var pong = await client.ReadFrameAsync($"the pong to ping {i}");
            Assert.NotNull(pong);
            Assert.Equal(WireFrameBuilder.Pong, pong.Opcode);
            Assert.Equal($"p{i}", pong.TextPayload);
        }
    }
}
