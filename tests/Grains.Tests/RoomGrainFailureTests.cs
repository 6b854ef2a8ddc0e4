using System.Diagnostics;
using Broker.Grains.Models;
using Broker.Grains.Tests.Infrastructure;

namespace Broker.Grains.Tests;

[Collection(ClusterCollection.Name)]
public sealed class RoomGrainFailureTests(ClusterFixture fixture) : GrainTestBase(fixture)
{
    private static readonly TimeSpan s_prompt = TimeSpan.FromSeconds(5);

    [Fact]
    public async Task Publish_StuckFrontend_OtherFrontendReceivesPromptly()
    {
        var key = NewKey();
        var room = Room(key);
        var neverAnswers = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        var stuck = NewFrontend("stuck");
        stuck.OnDeliverRoom = _ => neverAnswers.Task;
        var healthy = NewFrontend("healthy");
        try
        {
            await room.Join(JoinOf("c1", "alice", stuck));
            await stuck.WaitUntilAsync(f => f.RoomDeliveries(key).Count == 1, "its first delivery (now stuck in flight)");
            await room.Join(JoinOf("c2", "bob", healthy));

            var clock = Stopwatch.StartNew();
            var publishing = PublishSequentiallyAsync(room, "bob", 50);
            await publishing.WaitAsync(s_prompt);
            var publishTime = clock.Elapsed;
            await healthy.WaitForMessagesAsync(key, 50, s_prompt - clock.Elapsed);

            Assert.Equal(Enumerable.Range(1, 50).Select(i => (long)i), (await publishing).Order());
            Assert.Equal(Enumerable.Range(1, 50).Select(i => (long)i), healthy.RoomMessages(key).Select(m => m.Seq));
            Assert.True(publishTime < s_prompt, $"50 publishes took {publishTime}");

            // The stuck front-end really was stuck the whole time: still only its first delivery.
            Assert.Single(stuck.RoomDeliveries(key));
        }
        finally
        {
            neverAnswers.TrySetResult();
        }
    }

    [Fact]
    public async Task Publish_StuckFrontendConcurrentPublishes_AllAcknowledgedPromptly()
    {
        var key = NewKey();
        var room = Room(key);
        var neverAnswers = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        var stuck = NewFrontend("stuck");
        stuck.OnDeliverRoom = _ => neverAnswers.Task;
        var healthy = NewFrontend("healthy");
        try
        {
            await room.Join(JoinOf("c1", "alice", stuck));
            await stuck.WaitUntilAsync(f => f.RoomDeliveries(key).Count == 1, "its first delivery (now stuck in flight)");
            await room.Join(JoinOf("c2", "bob", healthy));

            var clock = Stopwatch.StartNew();
            var results = await Task.WhenAll(Enumerable.Range(0, 200)
                .Select(i => room.Publish(PublishOf("bob", $"{{\"i\":{i}}}")))).WaitAsync(s_prompt);
            await healthy.WaitForMessagesAsync(key, 200, s_prompt - clock.Elapsed);

            Assert.Equal(200, results.Select(r => r.Seq).Distinct().Count());
            Assert.Equal(Enumerable.Range(1, 200).Select(i => (long)i), healthy.RoomMessages(key).Select(m => m.Seq));
        }
        finally
        {
            neverAnswers.TrySetResult();
        }
    }

    [Fact]
    public async Task Publish_ObserverFailsThenRecovers_BatchResentInOrderAndMembersKept()
    {
        var key = NewKey();
        var room = Room(key);
        var flaky = NewFrontend("flaky");
        var failuresLeft = 3;
        flaky.OnDeliverRoom = delivery => delivery.Events.Any(e => e.Kind == RoomEventKind.Message) && Interlocked.Decrement(ref failuresLeft) >= 0
            ? Task.FromException(new InvalidOperationException("This front-end is briefly broken."))
            : Task.CompletedTask;
        var healthy = NewFrontend("healthy");
        await room.Join(JoinOf("c1", "alice", flaky));
        await room.Join(JoinOf("c2", "bob", healthy));

        var seqs = await PublishSequentiallyAsync(room, "bob", 5);

        await flaky.WaitUntilAsync(f => f.RoomMessages(key).Select(m => m.Seq).Distinct().Count() == 5, "all 5 messages, resent");
        var delivered = flaky.RoomEvents(key).Where(e => e.Kind == RoomEventKind.Message).Select(e => e.Message!.Seq).ToList();
        Assert.Equal(seqs, delivered.Distinct());
        Assert.Equal(delivered.Order(), delivered);
        Assert.DoesNotContain(healthy.MemberEvents(key), e => e.Kind == RoomEventKind.MemberLeft);
        var presence = (await room.GetPresence()).OrderBy(e => e.User, StringComparer.Ordinal).ToArray();
        Assert.Equal(Presence(("alice", 1), ("bob", 1)), presence);
    }

    [Fact]
    public async Task FrontendLeaseExpires_DropsItsMembersAndOthersGetMemberLeft()
    {
        var key = NewKey();
        var room = Room(key);
        var dying = NewFrontend("dying");
        var healthy = NewFrontend("healthy");
        await room.Join(JoinOf("c1", "alice", dying));
        await room.Join(JoinOf("c2", "carol", dying));
        await room.Join(JoinOf("c3", "alice", healthy));
        await room.Join(JoinOf("c4", "bob", healthy));

        // The front-end's last renewal, then silence: the registry declares it lost.
        await Registry.Renew(new FrontendLease(dying.Id, dying.Reference, TimeSpan.FromMilliseconds(300), KnownFrontends: 0));

        await healthy.WaitForMemberEventAsync(key, RoomEventKind.MemberLeft, "carol");
        await BarrierAsync(room, key, Policy(), healthy);
        Assert.DoesNotContain(healthy.MemberEvents(key), e => e.Kind == RoomEventKind.MemberLeft && e.User == "alice");
        var presence = (await room.GetPresence()).OrderBy(e => e.User, StringComparer.Ordinal).ToArray();
        Assert.Equal(Presence(("alice", 1), ("bob", 1)), presence);

        // It was only a pause: it renews (and is told it was unknown) and joins again.
        var renewed = await Registry.Renew(new FrontendLease(dying.Id, dying.Reference, TimeSpan.FromHours(1), KnownFrontends: 0));
        Assert.True(renewed.Fresh);
        await room.Join(JoinOf("c5", "carol", dying));
        var after = await room.Publish(PublishOf("bob", "{\"x\":2}"));
        await dying.WaitForSeqAsync(key, after.Seq);
    }

    private IFrontendRegistryGrain Registry => Client.GetGrain<IFrontendRegistryGrain>(IFrontendRegistryGrain.Key);

    [Fact]
    public async Task Join_RejoinWhileOldDeliveryInFlight_FrontendReceivesEventsInVersionOrder()
    {
        var key = NewKey();
        var room = Room(key);
        var release = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        var slow = NewFrontend("slow");
        await room.Join(JoinOf("c1", "alice", slow));
        await slow.WaitForMemberEventAsync(key, RoomEventKind.MemberJoined, "alice");
        slow.OnDeliverRoom = d => d.Events.Any(e => e.Message?.Seq == 1) ? release.Task : Task.CompletedTask;
        try
        {
            // m1 is in flight (held by the front-end), m2 waits in the room's queue for it.
            await room.Publish(PublishOf("bob", "{\"m\":1}"));
            await slow.WaitForSeqAsync(key, 1);
            await room.Publish(PublishOf("bob", "{\"m\":2}"));

            // alice's only connection leaves and she comes back on the same front-end at once.
            Assert.True(await room.Leave("c1"));
            var rejoin = await room.Join(JoinOf("c2", "alice", slow));
            await room.GetPresence(); // runs after the room's turn that sends the rejoin's events
        }
        finally
        {
            release.TrySetResult();
        }

        await slow.WaitForSeqAsync(key, 2);
        await BarrierAsync(room, key, Policy(), slow);
        var versions = slow.RoomEvents(key).Select(e => e.Version).ToList();
        Assert.True(versions.SequenceEqual(versions.Order()), $"versions arrived as [{string.Join(", ", versions)}]");
    }

    private static PresenceEntry[] Presence(params (string User, int Connections)[] entries) =>
        [.. entries.Select(e => new PresenceEntry(e.User, e.Connections))];

    private static async Task<List<long>> PublishSequentiallyAsync(IRoomGrain room, string user, int count)
    {
        var seqs = new List<long>();
        for (var i = 0; i < count; i++)
        {
            seqs.Add((await room.Publish(PublishOf(user, $"{{\"i\":{i}}}"))).Seq);
        }

        return seqs;
    }
}
