using System.Diagnostics;
using System.Text.Json;
using Broker.Frontend.Tests.Infrastructure;

namespace Broker.Frontend.Tests.Robustness;

public sealed class SlowConsumerTests
{
    private const int Messages = 250;
    private const int PayloadChars = 60 * 1024;

    [Fact]
    public async Task Publish_MemberNeverReads_OthersGetEverythingAndSlowMemberIsClosed1013()
    {
        await using var server = await BrokerServer.StartAsync(new Dictionary<string, string?>
        {
            // Room for a reader that lags a few frames on a loaded machine (the publisher gets its
            // own 60 KB copies too), far below what the slow member is sent.
            ["Broker:OutboxFrames"] = "32",
            ["Broker:CloseTimeout"] = "00:00:30",
        });
        var room = BrokerFixture.UniqueRoom("slow");
        await using var publisher = await server.ConnectAsync("/chat?user=publisher");
        await using var fast1 = await server.ConnectAsync("/chat?user=fast1");
        await using var fast2 = await server.ConnectAsync("/chat?user=fast2");
        await publisher.JoinAsync(room);
        await fast1.JoinAsync(room);
        await fast2.JoinAsync(room);

        // The slow member joins but never reads a byte; its arrival is seen by the others.
        await using var slow = await server.ConnectAsync("/chat?user=slow", autoRead: false);
        await slow.SendAsync(new { type = "join", id = 1, room });
        await fast1.WaitForAsync(f => Frame.Is(f, "member_joined") && f.GetProperty("user").GetString() == "slow");

        // ~15 MB in 60 KB messages: far more than the kernel's socket buffers plus 32 outbox frames.
        // One publish at a time (each waits for its ack), so that the readers are never the slow ones.
        var padding = new string('x', PayloadChars);
        var timeout = TimeSpan.FromSeconds(15);
        var clock = Stopwatch.StartNew();
        var atFast1 = fast1.CollectAsync(frames => frames.Count(f => Frame.IsMessageIn(f, room)) >= Messages, timeout, "fast1");
        var atFast2 = fast2.CollectAsync(frames => frames.Count(f => Frame.IsMessageIn(f, room)) >= Messages, timeout, "fast2");
        var atPublisher = new List<JsonElement>();
        for (var n = 0; n < Messages; n++)
        {
            await publisher.SendAsync(new { type = "publish", id = n, room, data = new { n, padding } });
            var id = n;
            atPublisher.AddRange(await publisher.CollectUntilAsync(f => Frame.Is(f, "ack") && Frame.HasId(f, id), TimeSpan.FromSeconds(5), $"publisher, ack {n}"));
        }

        var left = Messages - atPublisher.Count(f => Frame.IsMessageIn(f, room));
        atPublisher.AddRange(await publisher.CollectAsync(frames => frames.Count(f => Frame.IsMessageIn(f, room)) >= left, timeout, "publisher"));
        var received = new[] { atPublisher, await atFast1, await atFast2 };
        var elapsed = clock.Elapsed;

        foreach (var frames in received)
        {
            var messages = frames.Where(f => Frame.IsMessageIn(f, room)).ToList();
            Assert.Equal(Enumerable.Range(0, Messages), messages.Select(m => m.GetProperty("data").GetProperty("n").GetInt32()));
            Assert.Equal(Enumerable.Range(1, Messages).Select(i => (long)i), messages.Select(m => m.GetProperty("seq").GetInt64()));
        }

        var acks = received[0].Where(f => Frame.Is(f, "ack")).ToList();
        Assert.Equal(Enumerable.Range(1, Messages).Select(i => (long)i), acks.Select(a => a.GetProperty("seq").GetInt64()).Order());
        Assert.False(publisher.Closed.IsCompleted || fast1.Closed.IsCompleted || fast2.Closed.IsCompleted, "a reading member was closed");
        Assert.True(elapsed < TimeSpan.FromSeconds(10), $"Delivery to the reading members took {elapsed}: the room waited for the slow one.");

        // Now the slow member reads: whatever was already in flight, then close 1013.
        slow.StartReading();
        var status = await slow.WaitForCloseAsync(TimeSpan.FromSeconds(15));
        Assert.Equal(Frame.TryAgainLater, status);
        var atSlow = await slow.DrainAsync();
        Assert.True(atSlow.Count(f => Frame.IsMessageIn(f, room)) < Messages, "The slow member got every message, so it was never behind.");
    }
}
