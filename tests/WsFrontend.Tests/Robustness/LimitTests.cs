using Broker.Frontend.Tests.Infrastructure;

namespace Broker.Frontend.Tests.Robustness;

public sealed class LimitTests
{
    private static readonly TimeSpan Timeout = TimeSpan.FromSeconds(10);

    [Fact]
    public async Task Ping_TwentyAtOnceWithLimitFivePerSecond_SomeRateLimitedWithIdAndConnectionRecovers()
    {
        await using var server = await BrokerServer.StartAsync(new Dictionary<string, string?>
        {
            ["Broker:RateLimitPerSecond"] = "5",
            ["Broker:RateLimitBurst"] = "5",
        });
        await using var client = await server.ConnectAsync("/chat");

        for (var id = 1; id <= 20; id++)
        {
            await client.SendTextAsync($"{{\"type\":\"ping\",\"id\":{id}}}");
        }

        var replies = await client.CollectAsync(frames => frames.Count >= 20, Timeout, "client");

        // Every frame is answered once, with its own id: a pong or a rate_limited error.
        Assert.Equal(Enumerable.Range(1, 20), replies.Select(r => r.GetProperty("id").GetInt32()).Order());
        var pongs = replies.Where(r => Frame.Is(r, "pong")).ToList();
        var limited = replies.Where(r => Frame.Code(r) == "rate_limited").ToList();
        Assert.Equal(20, pongs.Count + limited.Count);
        Assert.InRange(pongs.Count, 5, 15);
        Assert.All(Enumerable.Range(1, 5), id => Assert.Contains(pongs, p => Frame.HasId(p, id)));
        Assert.All(limited, e => Assert.False(string.IsNullOrWhiteSpace(e.GetProperty("message").GetString())));

        // Rate limiting never closes the connection; once tokens refill it answers again.
        Assert.False(client.Closed.IsCompleted);
        await client.PingUntilPongAsync(Timeout);
        Assert.False(client.Closed.IsCompleted);
    }

    [Fact]
    public async Task Ping_BurstOfThreeThousandWhileReading_EveryFrameAnsweredAndConnectionStaysOpen()
    {
        // A small outbox (64) so that a burst far larger than it stays quick to answer.
        const int count = 3000;
        await using var server = await BrokerServer.StartAsync(new Dictionary<string, string?>
        {
            ["Broker:OutboxFrames"] = "64",
        });
        using var raw = await RawWebSocket.ConnectAsync(server.HttpBase, "/chat?user=burst");
        Assert.Equal("welcome", Frame.Type(Assert.Single(await raw.ReadJsonFramesAsync(1, Timeout))));

        // More than the default burst (1000), all in one TCP write; the client reads all the while.
        var reading = raw.ReadJsonFramesAsync(count, TimeSpan.FromSeconds(15));
        await raw.SendTextFramesAsync(Enumerable.Range(1, count).Select(id => $"{{\"type\":\"ping\",\"id\":{id}}}"));
        var replies = await reading;

        Assert.Equal(Enumerable.Range(1, count), replies.Select(r => r.GetProperty("id").GetInt32()).Order());
        Assert.All(replies, r => Assert.True(Frame.Is(r, "pong") || Frame.Code(r) == "rate_limited", r.ToString()));
        Assert.Contains(replies, r => Frame.Code(r) == "rate_limited");

        // Still open, and answering once the bucket has refilled a little.
        var clock = System.Diagnostics.Stopwatch.StartNew();
        while (true)
        {
            await raw.SendTextFramesAsync(["{\"type\":\"ping\",\"id\":\"again\"}"]);
            var reply = Assert.Single(await raw.ReadJsonFramesAsync(1, Timeout));
            Assert.True(Frame.HasId(reply, "again"), reply.ToString());
            if (Frame.Is(reply, "pong"))
            {
                break;
            }

            Assert.True(clock.Elapsed < Timeout, "Still rate limited.");
            await Task.Delay(50); // the token bucket refills with time
        }
    }

    [Fact]
    public async Task Ping_TextPingBeyondLimit_RateLimitedErrorWithoutId()
    {
        await using var server = await BrokerServer.StartAsync(new Dictionary<string, string?>
        {
            ["Broker:RateLimitPerSecond"] = "1",
            ["Broker:RateLimitBurst"] = "2",
        });
        await using var client = await server.ConnectAsync("/chat");

        for (var i = 0; i < 10; i++)
        {
            await client.SendTextAsync("ping");
        }

        var texts = new List<string>();
        for (var i = 0; i < 10; i++)
        {
            texts.Add((await client.NextRawAsync(Timeout)).Text);
        }

        // The burst of 2 is answered; at 1 token a second, at most one more can have refilled meanwhile.
        Assert.InRange(texts.Count(t => t == "pong"), 2, 3);
        var errors = texts.Where(t => t != "pong").Select(t => ReceivedFrame.Parse(t).Json).ToList();
        Assert.All(errors, e =>
        {
            Assert.Equal("rate_limited", Frame.Code(e));
            Assert.False(e.TryGetProperty("id", out _));
        });
        Assert.False(client.Closed.IsCompleted);
    }

    [Fact]
    public async Task Join_BeyondMaxRoomsPerConnection_TooLargeThenLeavingOneAllowsJoin()
    {
        await using var server = await BrokerServer.StartAsync(new Dictionary<string, string?>
        {
            ["Broker:MaxRoomsPerConnection"] = "3",
        });
        await using var client = await server.ConnectAsync("/chat?user=roomy");
        var rooms = Enumerable.Range(0, 4).Select(i => BrokerFixture.UniqueRoom($"limit{i}")).ToArray();
        for (var i = 0; i < 3; i++)
        {
            Assert.Equal("joined", Frame.Type(await client.JoinAsync(rooms[i])));
        }

        var refused = await client.JoinAsync(rooms[3]);

        Assert.Equal("too_large", Frame.Code(refused));
        Assert.False(string.IsNullOrWhiteSpace(refused.GetProperty("message").GetString()));
        Assert.Equal("pong", Frame.Type(await client.RequestAsync(new Dictionary<string, object?> { ["type"] = "ping" })));

        // The refused join left no membership behind.
        Assert.Equal("not_member", Frame.Code(await client.PublishAsync(rooms[3], "x")));

        // Joining a room it is already in is not a fourth room.
        Assert.Equal("joined", Frame.Type(await client.JoinAsync(rooms[1])));

        Assert.Equal("left", Frame.Type(await client.RequestAsync(new Dictionary<string, object?> { ["type"] = "leave", ["room"] = rooms[0] })));
        Assert.Equal("joined", Frame.Type(await client.JoinAsync(rooms[3])));
        Assert.Equal("ack", Frame.Type(await client.PublishAsync(rooms[3], "now a member")));
        Assert.Equal("too_large", Frame.Code(await client.JoinAsync(rooms[0])));
        Assert.False(client.Closed.IsCompleted);
    }

    [Fact]
    public async Task Join_LimitIsPerConnection_AnotherConnectionOfSameUserMayJoin()
    {
        await using var server = await BrokerServer.StartAsync(new Dictionary<string, string?>
        {
            ["Broker:MaxRoomsPerConnection"] = "1",
        });
        await using var first = await server.ConnectAsync("/chat?user=twice");
        await using var second = await server.ConnectAsync("/chat?user=twice");

        Assert.Equal("joined", Frame.Type(await first.JoinAsync(BrokerFixture.UniqueRoom())));
        Assert.Equal("too_large", Frame.Code(await first.JoinAsync(BrokerFixture.UniqueRoom())));
        Assert.Equal("joined", Frame.Type(await second.JoinAsync(BrokerFixture.UniqueRoom())));
    }
}
