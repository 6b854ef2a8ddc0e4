using System.Net.WebSockets;
using System.Text;
using Broker.Frontend.Hosting;
using Broker.Frontend.Options;
using Broker.Frontend.Tests.Infrastructure;

namespace Broker.Frontend.Tests.Robustness;

[Collection(BrokerCollection.Name)]
public sealed class BadInputTests(BrokerFixture fixture)
{
    private static readonly TimeSpan Timeout = TimeSpan.FromSeconds(10);

    [Fact]
    public async Task Receive_FrameOverMaxFrameBytes_Closes1009AndOthersKeepReceiving()
    {
        var room = BrokerFixture.UniqueRoom("oversize");
        await using var alice = await fixture.Server.ConnectAsync("/chat?user=alice");
        await using var bob = await fixture.Server.ConnectAsync("/chat?user=bob");
        await using var big = await fixture.Server.ConnectAsync("/chat?user=big");
        await alice.JoinAsync(room);
        await bob.JoinAsync(room);
        await big.JoinAsync(room);

        var frame = $"{{\"type\":\"publish\",\"room\":\"{room}\",\"data\":\"{new string('x', BrokerOptions.DefaultMaxFrameBytes)}\"}}";
        await big.SendTextAsync(frame);

        Assert.Equal(WebSocketCloseStatus.MessageTooBig, await big.WaitForCloseAsync(Timeout));
        var ack = await alice.PublishAsync(room, "after");
        Assert.Equal("ack", Frame.Type(ack));
        var atBob = await bob.CollectUntilAsync(f => Frame.IsMessageIn(f, room), Timeout, "bob");
        Assert.Equal("after", atBob[^1].GetProperty("data").GetString());
        Assert.Equal(1, atBob[^1].GetProperty("seq").GetInt64());
    }

    [Fact]
    public async Task Receive_FrameOfExactlyMaxFrameBytes_IsAccepted()
    {
        await using var client = await fixture.Server.ConnectAsync("/chat");
        const string head = "{\"type\":\"echo\",\"id\":7,\"data\":\"";
        const string tail = "\"}";
        var padding = new string('y', BrokerOptions.DefaultMaxFrameBytes - head.Length - tail.Length);
        var frame = head + padding + tail;
        Assert.Equal(BrokerOptions.DefaultMaxFrameBytes, Encoding.UTF8.GetByteCount(frame));

        await client.SendTextAsync(frame);

        var reply = await client.WaitForAsync(f => Frame.HasId(f, 7), Timeout);
        Assert.Equal("echo", Frame.Type(reply));
        Assert.Equal(padding.Length, reply.GetProperty("data").GetString()!.Length);
        Assert.False(client.Closed.IsCompleted);
    }

    [Fact]
    public async Task Receive_BinaryFrame_Closes1003AndOthersKeepReceiving()
    {
        var room = BrokerFixture.UniqueRoom("binary");
        await using var alice = await fixture.Server.ConnectAsync("/chat?user=alice");
        await using var bob = await fixture.Server.ConnectAsync("/chat?user=bob");
        await using var sender = await fixture.Server.ConnectAsync("/chat?user=binary-sender");
        await alice.JoinAsync(room);
        await bob.JoinAsync(room);
        await sender.JoinAsync(room);

        await sender.SendBytesAsync(Encoding.UTF8.GetBytes($"{{\"type\":\"publish\",\"room\":\"{room}\",\"data\":1}}"), WebSocketMessageType.Binary);

        Assert.Equal(WebSocketCloseStatus.InvalidMessageType, await sender.WaitForCloseAsync(Timeout));
        await alice.PublishAsync(room, "after");
        var atBob = await bob.CollectUntilAsync(f => Frame.IsMessageIn(f, room), Timeout, "bob");
        Assert.Equal("after", atBob[^1].GetProperty("data").GetString());
        Assert.Equal(1, atBob[^1].GetProperty("seq").GetInt64());
    }

    [Fact]
    public async Task Receive_GarbageFlood_OtherMembersKeepExchangingMessages()
    {
        const int count = 100;
        var room = BrokerFixture.UniqueRoom("flood");
        await using var alice = await fixture.Server.ConnectAsync("/chat?user=alice");
        await using var bob = await fixture.Server.ConnectAsync("/chat?user=bob");
        var garbage = Garbage(room);

        // The flood goes on for the whole exchange (at most 20 s); if the server drops the flooder, it comes back.
        using var stop = new CancellationTokenSource(TimeSpan.FromSeconds(20));
        var flood = Task.Run(async () =>
        {
            var sent = 0;
            while (!stop.IsCancellationRequested)
            {
                await using var flooder = await fixture.Server.ConnectAsync("/chat?user=flooder");
                await flooder.JoinAsync(room);
                try
                {
                    while (!stop.IsCancellationRequested)
                    {
                        await flooder.SendTextAsync(garbage[sent % garbage.Length]);
                        sent++;
                    }
                }
                catch (WebSocketException)
                {
                    // Dropped by the server; flood on from a new connection.
                }
            }

            return sent;
        });

        List<System.Text.Json.JsonElement> frames;
        bool floodStillRunning;
        try
        {
            await alice.JoinAsync(room);
            await bob.JoinAsync(room);
            var atBob = bob.CollectAsync(f => f.Count(x => Frame.IsMessageIn(x, room)) >= count, TimeSpan.FromSeconds(15), "bob");
            for (var n = 0; n < count; n++)
            {
                var ack = await alice.RequestAsync(new Dictionary<string, object?> { ["type"] = "publish", ["room"] = room, ["data"] = n }, Timeout);
                Assert.Equal("ack", Frame.Type(ack));
            }

            frames = await atBob;
            floodStillRunning = !flood.IsCompleted;
        }
        finally
        {
            await stop.CancelAsync();
        }

        var sent = await flood.WaitAsync(Timeout);

        Assert.True(floodStillRunning, $"The flood ({sent} frames) ended before the exchange did, so it proves nothing.");
        Assert.True(sent > count, $"Only {sent} garbage frames were sent during the exchange.");
        var messages = frames.Where(f => Frame.IsMessageIn(f, room)).ToList();
        Assert.Equal(Enumerable.Range(0, count), messages.Select(m => m.GetProperty("data").GetInt32()));
        Assert.DoesNotContain(frames, f => Frame.Is(f, "error"));
    }

    [Fact]
    public async Task Receive_BurstOfThreeThousandGarbageFramesWhileReading_EachAnsweredAndConnectionStaysOpen()
    {
        // A small outbox (64) so that a burst far larger than it stays quick to answer.
        const int count = 3000;
        await using var server = await BrokerServer.StartAsync(new Dictionary<string, string?>
        {
            ["Broker:OutboxFrames"] = "64",
        });
        var garbage = Garbage(BrokerFixture.UniqueRoom("garbage"));
        using var raw = await RawWebSocket.ConnectAsync(server.HttpBase, "/chat?user=garbage");
        Assert.Equal("welcome", Frame.Type(Assert.Single(await raw.ReadJsonFramesAsync(1, Timeout))));

        // All in one TCP write; the client reads all the while.
        var reading = raw.ReadJsonFramesAsync(count, TimeSpan.FromSeconds(15));
        await raw.SendTextFramesAsync(Enumerable.Range(0, count).Select(n => garbage[n % garbage.Length]));
        var replies = await reading;

        Assert.All(replies, r => Assert.Contains(Frame.Code(r), new[] { "bad_request", "rate_limited" }));
        Assert.Contains(replies, r => Frame.Code(r) == "bad_request");

        // An error frame never closes the connection: it still answers (once tokens are back).
        var clock = System.Diagnostics.Stopwatch.StartNew();
        while (true)
        {
            await raw.SendTextFramesAsync(["{\"type\":\"ping\",\"id\":\"again\"}"]);
            var reply = Assert.Single(await raw.ReadJsonFramesAsync(1, Timeout));
            if (Frame.Is(reply, "pong"))
            {
                break;
            }

            Assert.Equal("rate_limited", Frame.Code(reply));
            Assert.True(clock.Elapsed < Timeout, "Still rate limited.");
            await Task.Delay(50); // the token bucket refills with time
        }
    }

    /// <summary>Frames that are all refused with bad_request (or rate_limited, past the burst).</summary>
    private static string[] Garbage(string room) =>
    [
        "not json",
        "{",
        "[]",
        "42",
        "null",
        "\"just a string\"",
        "{}",
        "{\"type\":12}",
        "{\"type\":\"publish\"}",
        "{\"type\":\"join\",\"room\":17}",
        "{\"type\":\"ping\"} trailing",
        new string('[', 200) + new string(']', 200),
        "{\"type\":\"publish\",\"room\":\"" + room + "\",\"data\":",
    ];
}
