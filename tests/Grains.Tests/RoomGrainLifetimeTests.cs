using Broker.Grains.Tests.Infrastructure;

namespace Broker.Grains.Tests;

/// <summary>Rooms with no members are let go: at once when they hold nothing, after EmptyRoomTimeout when they hold history.</summary>
[Collection(ClusterCollection.Name)]
public sealed class RoomGrainLifetimeTests(ClusterFixture fixture) : GrainTestBase(fixture)
{
    [Fact]
    public async Task Leave_LastMemberOfRoomWithoutHistory_DeactivatesAtOnceWhileRoomWithHistoryStays()
    {
        var frontend = NewFrontend("a");
        var bare = Room(NewKey("bare"));
        var kept = Room(NewKey("kept"));
        var noHistory = Policy(history: 0, emptyRoomTimeout: TimeSpan.FromHours(1));
        var withHistory = Policy(history: 100, emptyRoomTimeout: TimeSpan.FromHours(1));
        await bare.Join(JoinOf("c1", "alice", frontend, noHistory));
        await bare.Publish(PublishOf("alice", "1", noHistory));
        await kept.Join(JoinOf("c2", "alice", frontend, withHistory));
        await kept.Publish(PublishOf("alice", "1", withHistory));

        Assert.True(await kept.Leave("c2"));
        Assert.True(await bare.Leave("c1"));

        await Activations.WaitUntilGoneAsync(Client, bare, "the room without history");
        Assert.True(await Activations.IsActiveAsync(Client, kept), "A room holding history must wait for its EmptyRoomTimeout.");
    }

    [Fact]
    public async Task Leave_LastMemberOfRoomWithHistory_DeactivatesAfterEmptyRoomTimeoutAndMemoryStoreStartsNewEpoch()
    {
        var frontend = NewFrontend("a");
        var room = Room(NewKey());
        var policy = Policy(history: 100, emptyRoomTimeout: TimeSpan.FromMilliseconds(300));
        var first = await room.Join(JoinOf("c1", "alice", frontend, policy));
        await room.Publish(PublishOf("alice", "1", policy));
        await room.Publish(PublishOf("alice", "2", policy));

        await room.Leave("c1");
        await Activations.WaitUntilGoneAsync(Client, room, "the emptied room");
        var back = await room.Join(JoinOf("c2", "alice", frontend, policy, since: 1, epoch: first.Epoch));

        Assert.False(back.Recovered);
        Assert.NotEqual(first.Epoch, back.Epoch);
        Assert.Equal(0, back.Seq);
    }

    [Fact]
    public async Task GetHistory_RoomNobodyJoined_DoesNotStayActive()
    {
        var rooms = Enumerable.Range(0, 20).Select(_ => Room(NewKey("probe"))).ToList();

        var pages = await Task.WhenAll(rooms.Select(r => r.GetHistory(null, 100, int.MaxValue)));
        await Task.WhenAll(rooms.Select(r => r.GetPresence()));

        Assert.All(pages, p => Assert.Empty(p.Messages));
        foreach (var room in rooms)
        {
            await Activations.WaitUntilGoneAsync(Client, room, "a room only asked for its history and presence");
        }
    }

    [Fact]
    public async Task FrontendLost_LastFrontendOfRoom_RoomWithoutHistoryDeactivates()
    {
        var frontend = NewFrontend("a");
        var room = Room(NewKey());
        var policy = Policy(history: 0);
        await room.Join(JoinOf("c1", "alice", frontend, policy));
        await room.Join(JoinOf("c2", "bob", frontend, policy));

        await room.FrontendLost(frontend.Id);

        await Activations.WaitUntilGoneAsync(Client, room, "the room whose only front-end was lost");
    }

    [Fact]
    public async Task SyncFrontend_RoomWithMembers_StaysWhileEmptiedRoomGoes()
    {
        var frontend = NewFrontend("a");
        var busy = Room(NewKey("busy"));
        var emptied = Room(NewKey("emptied"));
        var policy = Policy(history: 100, emptyRoomTimeout: TimeSpan.FromMilliseconds(200));
        await busy.Join(JoinOf("c1", "alice", frontend, policy));
        await busy.Publish(PublishOf("alice", "1", policy));
        await emptied.Join(JoinOf("c2", "alice", frontend, policy));
        await emptied.Publish(PublishOf("alice", "1", policy));

        await emptied.Leave("c2");

        // A restatement that still lists the member who left must not bring it back or keep the room.
        await emptied.SyncFrontend(new Models.FrontendRoomSync(frontend.Id, frontend.Reference, policy, [new Models.RoomMemberRef("c2", "alice")]));
        await busy.SyncFrontend(new Models.FrontendRoomSync(frontend.Id, frontend.Reference, policy, [new Models.RoomMemberRef("c1", "alice")]));
        await Activations.WaitUntilGoneAsync(Client, emptied, "the emptied room");
        Assert.True(await Activations.IsActiveAsync(Client, busy), "A room with a member must stay active.");
    }
}
