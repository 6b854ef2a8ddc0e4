using Broker.Grains.Tests.Infrastructure;

namespace Broker.Grains.Tests;

/// <summary>
/// Memory store: a room that went before it ever had a message resumes its epoch in its next
/// activation on the same silo (clients that come back with since=0 recover); a room that
/// numbered a message never does (one silo, so that the next activation is on the same silo).
/// </summary>
public sealed class RoomGrainEpochResumeTests(OneSiloClusterFixture fixture) : GrainTestBase(fixture.Client), IClassFixture<OneSiloClusterFixture>
{
    [Fact]
    public async Task Join_AgainAfterRoomWithoutMessagesWentAway_SameEpochAndRecovered()
    {
        var frontend = NewFrontend("a");
        var room = Room(NewKey());
        var first = await room.Join(JoinOf("c1", "alice", frontend));
        await room.Join(JoinOf("c2", "bob", frontend));

        // As when a front-end shuts down: its members are gone, the room holds nothing and goes at once.
        await room.FrontendLost(frontend.Id);
        await Activations.WaitUntilGoneAsync(Client, room, "the room whose members all went");
        var back = await room.Join(JoinOf("c3", "alice", NewFrontend("b"), since: 0, epoch: first.Epoch));

        Assert.Equal(first.Epoch, back.Epoch);
        Assert.True(back.Recovered, "Nothing was ever published: a client that saw seq 0 missed nothing.");
        Assert.Equal(0, back.Seq);
        Assert.NotEqual(first.Activation, back.Activation);
    }

    [Fact]
    public async Task Join_AgainAfterRoomWithHistoryZeroAndMessagesWentAway_NewEpoch()
    {
        var frontend = NewFrontend("a");
        var room = Room(NewKey());
        var policy = Policy(history: 0);
        var first = await room.Join(JoinOf("c1", "alice", frontend, policy));
        await room.Publish(PublishOf("alice", "1", policy));

        // Nothing held (History=0, no msgId), so it goes at once; but seq 1 was handed out in its epoch.
        await room.Leave("c1");
        await Activations.WaitUntilGoneAsync(Client, room, "the room without history");
        var back = await room.Join(JoinOf("c2", "alice", frontend, policy, since: 1, epoch: first.Epoch));

        Assert.NotEqual(first.Epoch, back.Epoch);
        Assert.False(back.Recovered);
        Assert.Equal(0, back.Seq);
    }

    [Fact]
    public async Task Join_ResumedEpochThenPublishedAndWentAway_NewEpochAndSeqNeverReused()
    {
        var frontend = NewFrontend("a");
        var room = Room(NewKey());
        var policy = Policy(history: 0);
        var first = await room.Join(JoinOf("c1", "alice", frontend, policy));
        await room.Leave("c1");
        await Activations.WaitUntilGoneAsync(Client, room, "the room that never had a message");
        var resumed = await room.Join(JoinOf("c2", "alice", frontend, policy, since: 0, epoch: first.Epoch));
        Assert.Equal(first.Epoch, resumed.Epoch);
        var published = await room.Publish(PublishOf("alice", "1", policy));
        Assert.Equal((1L, first.Epoch), (published.Seq, published.Epoch));

        await room.Leave("c2");
        await Activations.WaitUntilGoneAsync(Client, room, "the resumed room after its publish");
        var back = await room.Join(JoinOf("c3", "alice", frontend, policy, since: 0, epoch: first.Epoch));
        var again = await room.Publish(PublishOf("alice", "2", policy));

        Assert.NotEqual(first.Epoch, back.Epoch);
        Assert.False(back.Recovered, "Seq 1 was handed out in the old epoch: a client at since=0 missed it.");
        Assert.NotEqual(first.Epoch, again.Epoch);
    }
}
