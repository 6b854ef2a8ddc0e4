using System.Diagnostics;
using Broker.Frontend.Connections;
using Broker.Frontend.Tests.Infrastructure;
using Broker.Grains;

namespace Broker.Frontend.Tests.Robustness;

/// <summary>
/// A join hands over to the live stream only once the outbox has drained; meanwhile the room's
/// traffic waits in the membership. What waits there is bounded by the outbox budgets, and a
/// client that does not read is closed with 1013 (protocol.md "Bounds").
/// </summary>
public sealed class JoinCatchUpTests
{
    private static readonly TimeSpan Timeout = TimeSpan.FromSeconds(20);

    [Fact]
    public async Task Join_OutboxNotEmptyAndClientNeverReads_RoomTrafficHeldToTheBudgetThenClosed1013()
    {
        const long outboxBytes = 256 * 1024;
        const int messages = 100;
        await using var server = await BrokerServer.StartAsync(new Dictionary<string, string?>
        {
            ["Broker:OutboxBytes"] = outboxBytes.ToString(System.Globalization.CultureInfo.InvariantCulture),
            ["Broker:CloseTimeout"] = "00:00:30",
        });
        var busy = BrokerFixture.UniqueRoom("busy");
        var joined = BrokerFixture.UniqueRoom("joined");
        var epoch = (await server.PublishAsync(busy, "first")).Epoch;
        using var attacker = await RawWebSocket.ConnectAsync(server.HttpBase, "/chat?user=catch-up");
        await attacker.SendTextFramesAsync([$$"""{"type":"join","id":1,"room":"{{busy}}"}"""]);
        var first = await MembershipAsync(server, busy, "catch-up");
        await Eventually.WaitUntilAsync(() => first.LastSeqIn(epoch) is not null, Timeout, "the first join to go live");
        var connection = first.Connection;

        // Fill the kernel's buffers until the outbox holds a frame (well below its budget): the
        // join that follows finds an outbox that will not drain.
        var padding = new string('x', 60 * 1024);
        var n = 0;
        while (connection.QueuedFrames == 0)
        {
            Assert.True(n < 500 && !connection.IsClosing, $"The outbox never held a frame (closed: {connection.CloseStatus}).");
            var seq = (await server.PublishAsync(busy, new { n = n++, padding })).Seq;

            // One delivery at a time: a batch of several could overflow the outbox at once.
            await Eventually.WaitUntilAsync(() => first.LastSeqIn(epoch) >= seq, Timeout, $"message {seq} to be delivered");
        }

        Assert.InRange(connection.QueuedBytes, 1, outboxBytes);
        await attacker.SendTextFramesAsync([$$"""{"type":"join","id":2,"room":"{{joined}}"}"""]);
        var membership = await MembershipAsync(server, joined, "catch-up");

        // Traffic from before the room took the join is not the connection's: wait for the room.
        var room = server.Services.GetRequiredService<IGrainFactory>().GetGrain<IRoomGrain>(GrainKeys.Of("chat", joined));
        await Eventually.WaitUntilAsync(async () => (await room.GetPresence()).Any(p => p.User == "catch-up"), Timeout, "the room to take the join");

        // 6 MB into the joined room, 24 times the budget. Deliveries follow the acks on their own
        // time, so the close is waited for after publishing, watching what waits meanwhile.
        for (var sent = 0; sent < messages; sent++)
        {
            await server.PublishAsync(joined, new { n = sent, padding });
        }

        long mostWaiting = 0;
        var clock = Stopwatch.StartNew();
        while (!connection.IsClosing)
        {
            mostWaiting = Math.Max(mostWaiting, membership.WaitingBytes);
            Assert.True(clock.Elapsed < Timeout, $"Still open {Timeout} after {messages} messages of 60 KB into the room being joined; {membership.WaitingBytes} bytes wait in the membership.");
            await Task.Delay(10); // nothing raises an event for a close the server decides
        }

        Assert.Equal(Frame.TryAgainLater, connection.CloseStatus);
        Assert.InRange(mostWaiting, 0, outboxBytes);
        Assert.Equal(0, membership.WaitingBytes);
    }

    [Fact]
    public async Task Join_ClientReadsWhileTheRoomIsBusy_CatchesUpWithEveryMessageInOrder()
    {
        const int messages = 60;
        // The default budget (1 MiB). What waits while a join catches up is held to it, so a
        // reader slower than the room's traffic during its catch-up is closed 1013 (and recovers
        // on reconnect): with 256 KiB the 40 live messages below (400 KB) did that under the full
        // suite's load. Here the live traffic fits, and the test is about order and completeness.
        await using var server = await BrokerServer.StartAsync();
        var room = BrokerFixture.UniqueRoom("catch-up-ok");

        // 60 × 10 KB stays within the room's default HistoryBytes (1 MiB), so a join that lands
        // after the last publish still recovers everything.
        var padding = new string('p', 10 * 1024);
        var epoch = string.Empty;
        for (var n = 0; n < 20; n++)
        {
            epoch = (await server.PublishAsync(room, new { n, padding })).Epoch;
        }

        // Joins with since=0 (20 messages to recover) while the room goes on publishing.
        await using var reader = await server.ConnectAsync("/chat?user=reader");
        await reader.SendAsync(new { type = "join", id = "j", room, since = 0, epoch });
        for (var n = 20; n < messages; n++)
        {
            await server.PublishAsync(room, new { n, padding });
        }

        var frames = await reader.CollectAsync(f => f.Count(m => Frame.IsMessageIn(m, room)) >= messages && f.Any(m => Frame.Is(m, "joined")), Timeout, "reader");
        Assert.Equal(Enumerable.Range(1, messages).Select(i => (long)i), frames.Where(f => Frame.IsMessageIn(f, room)).Select(f => f.GetProperty("seq").GetInt64()));
        Assert.True(frames.Single(f => Frame.Is(f, "joined")).GetProperty("recovered").GetBoolean());
        Assert.False(reader.Closed.IsCompleted);
    }

    private static async Task<RoomMembership> MembershipAsync(BrokerServer server, string room, string user)
    {
        RoomMembership? found = null;
        await Eventually.WaitUntilAsync(
            () => (found = server.Node.Rooms.Get(GrainKeys.Of("chat", room)).FirstOrDefault(m => m.Connection.User == user)) is not null,
            Timeout,
            $"{user}'s membership of {room}");
        return found!;
    }
}
