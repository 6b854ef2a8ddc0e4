using System.Diagnostics;
using Broker.Frontend.Tests.Infrastructure;

namespace Broker.Frontend.Tests.Robustness;

public sealed class KeepAliveTests
{
    private static readonly Dictionary<string, string?> FastKeepAlive = new()
    {
        ["Broker:KeepAliveInterval"] = "00:00:01",
        ["Broker:KeepAliveTimeout"] = "00:00:01",

        // The live client below proves itself with a tight loop of pings; no limit should get in the way.
        ["Broker:RateLimitPerSecond"] = "0",
    };

    [Fact]
    public async Task KeepAlive_PeerNeverAnswersPings_ServerDropsConnection()
    {
        await using var server = await BrokerServer.StartAsync(FastKeepAlive);
        using var raw = await RawWebSocket.ConnectAsync(server.HttpBase, "/chat?user=mute");
        var clock = Stopwatch.StartNew();
        await Eventually.WaitUntilAsync(() => server.Node.ConnectionCount == 1, TimeSpan.FromSeconds(5), "the raw connection to register");

        // It never reads and never answers a ping: the server must give up on it.
        await Eventually.WaitUntilAsync(() => server.Node.ConnectionCount == 0, TimeSpan.FromSeconds(12), "the mute connection to be dropped");
        Assert.True(clock.Elapsed >= TimeSpan.FromSeconds(1), $"Dropped after {clock.Elapsed}, before a keep-alive interval had passed.");

        // And the TCP connection really is gone: reading finds EOF or a reset.
        Assert.True(await raw.ReadsToEndAsync(TimeSpan.FromSeconds(5)), "The server kept the TCP connection open.");
    }

    [Fact]
    public async Task KeepAlive_ClientAnswersPings_StaysConnectedAcrossSeveralIntervals()
    {
        await using var server = await BrokerServer.StartAsync(FastKeepAlive);
        await using var client = await server.ConnectAsync("/chat?user=alive");
        var clock = Stopwatch.StartNew();
        var pings = 0;
        while (clock.Elapsed < TimeSpan.FromSeconds(3.5))
        {
            var reply = await client.RequestAsync(new Dictionary<string, object?> { ["type"] = "ping" }, TimeSpan.FromSeconds(5));
            Assert.Equal("pong", Frame.Type(reply));
            pings++;
        }

        Assert.Equal("pong", Frame.Type(await client.RequestAsync(new Dictionary<string, object?> { ["type"] = "ping" })));
        Assert.False(client.Closed.IsCompleted, "The server closed a client that answers its pings.");
        Assert.Equal(1, server.Node.ConnectionCount);
        Assert.True(pings > 0);
    }
}
