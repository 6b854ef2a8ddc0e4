using System.Collections.Immutable;
using Broker.Grains.Models;
using Broker.Grains.Tests.Infrastructure;

namespace Broker.Grains.Tests;

[Collection(ClusterCollection.Name)]
public sealed class RoomGrainMembershipTests(ClusterFixture fixture) : GrainTestBase(fixture)
{
    [Fact]
    public async Task Join_SecondConnectionOfSameUser_MemberJoinedOnlyOnce()
    {
        var key = NewKey();
        var room = Room(key);
        var watcher = NewFrontend("watcher");
        var a = NewFrontend("a");
        var b = NewFrontend("b");
        await room.Join(JoinOf("w1", "watcher", watcher));

        await room.Join(JoinOf("c1", "alice", a));
        await room.Join(JoinOf("c2", "alice", b));
        await BarrierAsync(room, key, Policy(), watcher, a, b);

        var joined = watcher.MemberEvents(key).Where(e => e.User == "alice").ToList();
        Assert.Equal(RoomEventKind.MemberJoined, Assert.Single(joined).Kind);
        // b joined after alice's first connection: it sees no MemberJoined for her at all.
        Assert.DoesNotContain(b.MemberEvents(key), e => e.User == "alice");
    }

    [Fact]
    public async Task Leave_NotLastConnection_NoMemberLeft()
    {
        var key = NewKey();
        var room = Room(key);
        var watcher = NewFrontend("watcher");
        var a = NewFrontend("a");
        await room.Join(JoinOf("w1", "watcher", watcher));
        await room.Join(JoinOf("c1", "alice", a));
        await room.Join(JoinOf("c2", "alice", a));

        Assert.True(await room.Leave("c1"));
        await BarrierAsync(room, key, Policy(), watcher);

        Assert.DoesNotContain(watcher.MemberEvents(key), e => e.Kind == RoomEventKind.MemberLeft);
    }

    [Fact]
    public async Task Leave_LastConnection_MemberLeftOnce()
    {
        var key = NewKey();
        var room = Room(key);
        var watcher = NewFrontend("watcher");
        var a = NewFrontend("a");
        var b = NewFrontend("b");
        await room.Join(JoinOf("w1", "watcher", watcher));
        await room.Join(JoinOf("c1", "alice", a));
        await room.Join(JoinOf("c2", "alice", b));

        Assert.True(await room.Leave("c1"));
        Assert.True(await room.Leave("c2"));
        await watcher.WaitForMemberEventAsync(key, RoomEventKind.MemberLeft, "alice");
        await BarrierAsync(room, key, Policy(), watcher);

        var aliceEvents = watcher.MemberEvents(key).Where(e => e.User == "alice").Select(e => e.Kind);
        Assert.Equal([RoomEventKind.MemberJoined, RoomEventKind.MemberLeft], aliceEvents);
    }

    [Fact]
    public async Task Leave_UnknownConnection_ReturnsFalse()
    {
        var room = Room(NewKey());
        await room.Join(JoinOf("c1", "alice", NewFrontend("a")));

        Assert.False(await room.Leave("nobody"));
        Assert.True(await room.Leave("c1"));
        Assert.False(await room.Leave("c1"));
    }

    [Fact]
    public async Task Join_PresenceDisabled_NoMemberEvents()
    {
        var key = NewKey();
        var room = Room(key);
        var noPresence = Policy(presence: false);
        var watcher = NewFrontend("watcher");
        var a = NewFrontend("a");
        await room.Join(JoinOf("w1", "watcher", watcher, noPresence));
        await room.Join(JoinOf("c1", "alice", a, noPresence));
        await room.Join(JoinOf("c2", "bob", a, noPresence));
        Assert.True(await room.Leave("c1"));

        await BarrierAsync(room, key, noPresence, watcher, a);

        Assert.Empty(watcher.MemberEvents(key));
        Assert.Empty(a.MemberEvents(key));
    }

    [Fact]
    public async Task Leave_LastMemberOfFrontend_FrontendStopsReceiving()
    {
        var key = NewKey();
        var room = Room(key);
        var a = NewFrontend("a");
        var b = NewFrontend("b");
        await room.Join(JoinOf("c1", "alice", a));
        await room.Join(JoinOf("c2", "bob", b));

        Assert.True(await room.Leave("c1"));
        var afterLeave = await room.Publish(PublishOf("bob", "{\"after\":\"leave\"}"));
        await b.WaitForSeqAsync(key, afterLeave.Seq);
        await room.Join(JoinOf("c3", "alice", a));
        var afterRejoin = await room.Publish(PublishOf("bob", "{\"after\":\"rejoin\"}"));
        await a.WaitForSeqAsync(key, afterRejoin.Seq);

        Assert.Equal([afterRejoin.Seq], a.RoomMessages(key).Select(m => m.Seq));
    }

    [Fact]
    public async Task GetPresence_SeveralConnections_CountsConnectionsPerUser()
    {
        var room = Room(NewKey());
        var a = NewFrontend("a");
        var b = NewFrontend("b");
        await room.Join(JoinOf("c1", "alice", a));
        await room.Join(JoinOf("c2", "alice", b));
        await room.Join(JoinOf("c3", "alice", b));
        await room.Join(JoinOf("c4", "bob", a));
        await room.Join(JoinOf("c4", "bob", a)); // the same connection again counts once

        Assert.Equal(Presence(("alice", 3), ("bob", 1)), Sorted(await room.GetPresence()));

        await room.Leave("c2");
        Assert.Equal(Presence(("alice", 2), ("bob", 1)), Sorted(await room.GetPresence()));

        await room.Leave("c1");
        await room.Leave("c3");
        Assert.Equal(Presence(("bob", 1)), Sorted(await room.GetPresence()));
    }

    [Fact]
    public async Task SyncFrontend_MissingMembers_AddsThemToPresence()
    {
        var key = NewKey();
        var room = Room(key);
        var a = NewFrontend("a");
        var watcher = NewFrontend("watcher");
        await room.Join(JoinOf("w1", "watcher", watcher));
        await room.Join(JoinOf("c1", "alice", a));

        await room.SyncFrontend(new FrontendRoomSync(a.Id, a.Reference, Policy(),
            [new RoomMemberRef("c1", "alice"), new RoomMemberRef("c2", "bob"), new RoomMemberRef("c3", "bob")]));

        Assert.Equal(Presence(("alice", 1), ("bob", 2), ("watcher", 1)), Sorted(await room.GetPresence()));
        await watcher.WaitForMemberEventAsync(key, RoomEventKind.MemberJoined, "bob");
    }

    [Fact]
    public async Task SyncFrontend_OmitsExistingMember_DoesNotRemoveIt()
    {
        var room = Room(NewKey());
        var a = NewFrontend("a");
        await room.Join(JoinOf("c1", "alice", a));

        await room.SyncFrontend(new FrontendRoomSync(a.Id, a.Reference, Policy(), [new RoomMemberRef("c2", "bob")]));
        await room.SyncFrontend(new FrontendRoomSync(a.Id, a.Reference, Policy(), []));

        Assert.Equal(Presence(("alice", 1), ("bob", 1)), Sorted(await room.GetPresence()));
    }

    [Fact]
    public async Task SyncFrontend_SnapshotTakenBeforeLeave_DoesNotBringTheMemberBack()
    {
        var key = NewKey();
        var room = Room(key);
        var watcher = NewFrontend("watcher");
        var a = NewFrontend("a");
        await room.Join(JoinOf("w1", "watcher", watcher));
        await room.Join(JoinOf("c1", "alice", a));

        // The heartbeat's restatement listed c1 just before it left, and arrives after the Leave.
        Assert.True(await room.Leave("c1"));
        await room.SyncFrontend(new FrontendRoomSync(a.Id, a.Reference, Policy(), [new RoomMemberRef("c1", "alice")]));
        await BarrierAsync(room, key, Policy(), watcher);

        Assert.Equal(Presence(("watcher", 1)), Sorted(await room.GetPresence()));
        var aliceEvents = watcher.MemberEvents(key).Where(e => e.User == "alice").Select(e => e.Kind);
        Assert.Equal([RoomEventKind.MemberJoined, RoomEventKind.MemberLeft], aliceEvents);
        Assert.False(await room.Leave("c1"));
    }

    [Fact]
    public async Task SyncFrontend_AfterLeaveAndJoinAgain_KeepsTheMember()
    {
        var room = Room(NewKey());
        var a = NewFrontend("a");
        await room.Join(JoinOf("c1", "alice", a));
        Assert.True(await room.Leave("c1"));
        await room.Join(JoinOf("c1", "alice", a));

        await room.SyncFrontend(new FrontendRoomSync(a.Id, a.Reference, Policy(), [new RoomMemberRef("c1", "alice")]));

        Assert.Equal(Presence(("alice", 1)), Sorted(await room.GetPresence()));
        Assert.True(await room.Leave("c1"));
        Assert.Empty(await room.GetPresence());
    }

    [Fact]
    public async Task SyncFrontend_UnknownFrontend_ReceivesLaterMessages()
    {
        var key = NewKey();
        var room = Room(key);
        var synced = NewFrontend("synced");

        await room.SyncFrontend(new FrontendRoomSync(synced.Id, synced.Reference, Policy(), [new RoomMemberRef("c1", "dave")]));
        var published = await room.Publish(PublishOf("eve", "{\"hello\":\"dave\"}"));

        await synced.WaitForSeqAsync(key, published.Seq);
        Assert.Equal(Json("{\"hello\":\"dave\"}"), Assert.Single(synced.RoomMessages(key)).Payload);
    }

    private static PresenceEntry[] Presence(params (string User, int Connections)[] entries) =>
        [.. entries.Select(e => new PresenceEntry(e.User, e.Connections))];

    private static PresenceEntry[] Sorted(ImmutableArray<PresenceEntry> entries) =>
        [.. entries.OrderBy(e => e.User, StringComparer.Ordinal)];
}
