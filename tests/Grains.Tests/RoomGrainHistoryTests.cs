using Broker.Grains.Tests.Infrastructure;

namespace Broker.Grains.Tests;

[Collection(ClusterCollection.Name)]
public sealed class RoomGrainHistoryTests(ClusterFixture fixture) : GrainTestBase(fixture)
{
    [Fact]
    public async Task Publish_BeyondHistoryLimit_KeepsLatestN()
    {
        var room = Room(NewKey());
        var policy = Policy(history: 5);
        var join = await room.Join(JoinOf("c1", "alice", NewFrontend("a"), policy));
        await PublishManyAsync(room, 12, policy);

        var page = await room.GetHistory(null, 100, int.MaxValue);

        Assert.Equal(join.Epoch, page.Epoch);
        Assert.Equal([8L, 9, 10, 11, 12], page.Messages.Select(m => m.Seq));
        Assert.Equal(Json("{\"n\":12}"), page.Messages[^1].Payload);
    }

    [Fact]
    public async Task Publish_BeyondHistoryBytes_KeepsNewestThatFit()
    {
        var room = Room(NewKey());
        var payload = new string('x', 1000);
        var perMessage = Json($"{{\"n\":1,\"p\":\"{payload}\"}}").Length + HistoryWindow.MessageOverheadBytes;
        var policy = Policy(history: 100, historyBytes: 4 * perMessage);
        await room.Join(JoinOf("c1", "alice", NewFrontend("a"), policy));
        for (var i = 1; i <= 9; i++)
        {
            await room.Publish(PublishOf("alice", $"{{\"n\":{i},\"p\":\"{payload}\"}}", policy));
        }

        var page = await room.GetHistory(null, 100, int.MaxValue);

        Assert.Equal([6L, 7, 8, 9], page.Messages.Select(m => m.Seq));
    }

    [Fact]
    public async Task Join_SinceOlderThanByteWindow_NotRecovered()
    {
        var room = Room(NewKey());
        var payload = new string('x', 1000);
        var perMessage = Json($"{{\"n\":1,\"p\":\"{payload}\"}}").Length + HistoryWindow.MessageOverheadBytes;
        var policy = Policy(history: 100, historyBytes: 3 * perMessage);
        var first = await room.Join(JoinOf("c1", "alice", NewFrontend("a"), policy));
        for (var i = 1; i <= 9; i++)
        {
            await room.Publish(PublishOf("alice", $"{{\"n\":{i},\"p\":\"{payload}\"}}", policy));
        }

        var inside = await room.Join(JoinOf("c2", "alice", NewFrontend("b"), policy, since: 6, epoch: first.Epoch));
        var outside = await room.Join(JoinOf("c3", "alice", NewFrontend("c"), policy, since: 5, epoch: first.Epoch));

        Assert.True(inside.Recovered);
        Assert.Equal([7L, 8, 9], inside.Missed.Select(m => m.Seq));
        Assert.False(outside.Recovered);
        Assert.Empty(outside.Missed);
    }

    [Fact]
    public async Task Publish_HistoryLimitZero_KeepsNothing()
    {
        var room = Room(NewKey());
        var policy = Policy(history: 0);
        await room.Join(JoinOf("c1", "alice", NewFrontend("a"), policy));
        await PublishManyAsync(room, 3, policy);

        Assert.Empty((await room.GetHistory(null, 100, int.MaxValue)).Messages);
        Assert.Empty((await room.GetHistory(0, 100, int.MaxValue)).Messages);
    }

    [Fact]
    public async Task GetHistory_Since_ReturnsMessagesAfterSinceOldestFirst()
    {
        var room = Room(NewKey());
        await room.Join(JoinOf("c1", "alice", NewFrontend("a")));
        await PublishManyAsync(room, 10, Policy());

        var limited = await room.GetHistory(4, 3, int.MaxValue);
        var all = await room.GetHistory(4, 100, int.MaxValue);
        var none = await room.GetHistory(10, 100, int.MaxValue);

        Assert.Equal([5L, 6, 7], limited.Messages.Select(m => m.Seq));
        Assert.Equal([5L, 6, 7, 8, 9, 10], all.Messages.Select(m => m.Seq));
        Assert.Empty(none.Messages);
        Assert.Equal(Json("{\"n\":5}"), all.Messages[0].Payload);
        Assert.Equal("alice", all.Messages[0].From);
    }

    [Fact]
    public async Task GetHistory_ByteBound_CutsShortWithMoreAndPagingWithSinceGetsEverything()
    {
        var room = Room(NewKey());
        var payload = new string('x', 1000);
        await room.Join(JoinOf("c1", "alice", NewFrontend("a")));
        for (var i = 1; i <= 10; i++)
        {
            await room.Publish(PublishOf("alice", $"{{\"n\":{i},\"p\":\"{payload}\"}}", Policy()));
        }

        var perMessage = Json($"{{\"n\":1,\"p\":\"{payload}\"}}").Length + HistoryWindow.MessageOverheadBytes;
        var pages = new List<Models.HistoryPage>();
        long? since = null;
        do
        {
            var page = await room.GetHistory(since, 100, 3 * perMessage + 10);
            pages.Add(page);
            since = page.Messages[^1].Seq;
        }
        while (pages[^1].More && pages.Count < 10);

        Assert.Equal(Enumerable.Range(1, 10).Select(i => (long)i), pages.SelectMany(p => p.Messages).Select(m => m.Seq));
        Assert.Equal([3, 3, 3, 1], pages.Select(p => p.Messages.Length));
        Assert.Equal([true, true, true, false], pages.Select(p => p.More));
    }

    [Fact]
    public async Task GetHistory_LimitCutsShort_MoreOnlyWhileLaterMessagesExist()
    {
        var room = Room(NewKey());
        await room.Join(JoinOf("c1", "alice", NewFrontend("a")));
        await PublishManyAsync(room, 6, Policy());

        var first = await room.GetHistory(0, 4, int.MaxValue);
        var last = await room.GetHistory(4, 4, int.MaxValue);
        var latest = await room.GetHistory(null, 4, int.MaxValue);

        Assert.True(first.More);
        Assert.Equal([5L, 6], last.Messages.Select(m => m.Seq));
        Assert.False(last.More);

        // Without since: the latest four; the older ones are not "more" (paging goes forward).
        Assert.Equal([3L, 4, 5, 6], latest.Messages.Select(m => m.Seq));
        Assert.False(latest.More);
    }

    [Fact]
    public async Task GetHistory_PreviousVersionOverload_UnboundedInBytes()
    {
        var room = Room(NewKey());
        await room.Join(JoinOf("c1", "alice", NewFrontend("a")));
        for (var i = 1; i <= 5; i++)
        {
            await room.Publish(PublishOf("alice", $"{{\"p\":\"{new string('x', 100_000)}\"}}", Policy()));
        }

        var page = await room.GetHistory(0, 100);

        Assert.Equal([1L, 2, 3, 4, 5], page.Messages.Select(m => m.Seq));
        Assert.False(page.More);
    }

    [Fact]
    public async Task GetHistory_NullSince_ReturnsLatestOldestFirst()
    {
        var room = Room(NewKey());
        await room.Join(JoinOf("c1", "alice", NewFrontend("a")));
        await PublishManyAsync(room, 10, Policy());

        var page = await room.GetHistory(null, 3, int.MaxValue);

        Assert.Equal([8L, 9, 10], page.Messages.Select(m => m.Seq));
        Assert.Empty((await room.GetHistory(null, 0, int.MaxValue)).Messages);
    }

    [Fact]
    public async Task Join_SinceInsideWindow_RecoversExactlyMissedMessages()
    {
        var room = Room(NewKey());
        var first = await room.Join(JoinOf("c1", "alice", NewFrontend("a")));
        await PublishManyAsync(room, 10, Policy());

        var rejoin = await room.Join(JoinOf("c2", "alice", NewFrontend("b"), since: 6, epoch: first.Epoch));

        Assert.True(rejoin.Recovered);
        Assert.Equal(10, rejoin.Seq);
        Assert.Equal([7L, 8, 9, 10], rejoin.Missed.Select(m => m.Seq));
        Assert.Equal(Json("{\"n\":7}"), rejoin.Missed[0].Payload);
    }

    [Fact]
    public async Task Join_SinceIsLatest_RecoveredWithNoMessages()
    {
        var room = Room(NewKey());
        var first = await room.Join(JoinOf("c1", "alice", NewFrontend("a")));
        await PublishManyAsync(room, 4, Policy());

        var rejoin = await room.Join(JoinOf("c2", "alice", NewFrontend("b"), since: 4, epoch: first.Epoch));

        Assert.True(rejoin.Recovered);
        Assert.Empty(rejoin.Missed);
    }

    [Fact]
    public async Task Join_SinceJustBeforeWindow_RecoversWholeWindow()
    {
        var room = Room(NewKey());
        var policy = Policy(history: 5);
        var first = await room.Join(JoinOf("c1", "alice", NewFrontend("a"), policy));
        await PublishManyAsync(room, 12, policy);

        // The window holds 8..12, so since=7 misses nothing that was lost.
        var rejoin = await room.Join(JoinOf("c2", "alice", NewFrontend("b"), policy, since: 7, epoch: first.Epoch));

        Assert.True(rejoin.Recovered);
        Assert.Equal([8L, 9, 10, 11, 12], rejoin.Missed.Select(m => m.Seq));
    }

    [Fact]
    public async Task Join_SinceOlderThanWindow_NotRecoveredAndNoMessages()
    {
        var room = Room(NewKey());
        var policy = Policy(history: 5);
        var first = await room.Join(JoinOf("c1", "alice", NewFrontend("a"), policy));
        await PublishManyAsync(room, 12, policy);

        // The window holds 8..12: since=6 lost message 7 (the tightest miss), since=3 lost more.
        var justOutside = await room.Join(JoinOf("c2", "alice", NewFrontend("b"), policy, since: 6, epoch: first.Epoch));
        var farOutside = await room.Join(JoinOf("c3", "alice", NewFrontend("c"), policy, since: 3, epoch: first.Epoch));

        foreach (var rejoin in new[] { justOutside, farOutside })
        {
            Assert.False(rejoin.Recovered);
            Assert.Empty(rejoin.Missed);
            Assert.Equal(12, rejoin.Seq);
        }
    }

    [Fact]
    public async Task Join_WrongEpoch_NotRecoveredAndNoMessages()
    {
        var room = Room(NewKey());
        await room.Join(JoinOf("c1", "alice", NewFrontend("a")));
        await PublishManyAsync(room, 5, Policy());

        var rejoin = await room.Join(JoinOf("c2", "alice", NewFrontend("b"), since: 2, epoch: "not-the-epoch"));

        Assert.False(rejoin.Recovered);
        Assert.Empty(rejoin.Missed);
        Assert.Equal(5, rejoin.Seq);
    }

    private static async Task PublishManyAsync(IRoomGrain room, int count, Models.RoomPolicy policy)
    {
        for (var i = 1; i <= count; i++)
        {
            var result = await room.Publish(PublishOf("alice", $"{{\"n\":{i}}}", policy));
            Assert.False(result.Duplicate);
        }
    }
}
