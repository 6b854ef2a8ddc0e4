using Broker.Frontend.Tests.Infrastructure;

namespace Broker.Frontend.Tests.Protocol;

/// <summary>
/// protocol.md: member_joined / member_left "only when a user's first connection joins or last
/// one leaves". The broker's documented choice: a user is not told about itself. Absence is
/// proven with a marker message published into the same room after the action: room events
/// are delivered in the room's order, so anything the action caused arrives before the marker.
/// </summary>
[Collection(BrokerCollection.Name)]
public sealed class MemberEventTests(BrokerFixture fixture)
{
    private BrokerServer Server => fixture.Server;

    [Fact]
    public async Task Join_FirstConnectionOfUser_OthersGetMemberJoined()
    {
        var room = BrokerFixture.UniqueRoom();
        await using var carol = await Peer.ConnectAsync(Server, "/chat?user=carol");
        await using var dave = await Peer.ConnectAsync(Server, "/chat?user=dave");
        await using var alice = await Peer.ConnectAsync(Server, "/chat?user=alice");
        await carol.JoinAsync(room);
        await dave.JoinAsync(room);

        await alice.JoinAsync(room);

        foreach (var observer in new[] { carol, dave })
        {
            var joined = await observer.TakeTypeAsync("member_joined", f => f.GetProperty("user").GetString() == "alice");
            Assert.Equal(room, joined.GetProperty("room").GetString());
        }
    }

    [Fact]
    public async Task Join_SecondConnectionOfSameUser_NoMemberJoined()
    {
        var room = BrokerFixture.UniqueRoom();
        await using var carol = await Peer.ConnectAsync(Server, "/chat?user=carol");
        await using var alice1 = await Peer.ConnectAsync(Server, "/chat?user=alice");
        await using var alice2 = await Peer.ConnectAsync(Server, "/chat?user=alice");
        await carol.JoinAsync(room);
        await alice1.JoinAsync(room);
        await carol.TakeTypeAsync("member_joined", f => f.GetProperty("user").GetString() == "alice");

        await alice2.JoinAsync(room);
        var token = Wire.NewToken();
        await alice2.PublishAsync(room, Wire.Marker(token));

        var before = await carol.FramesBeforeMarkerAsync(token);
        Assert.False(before.Any(Wire.IsMemberEvent), "unexpected member event: " + Wire.Describe(before));
    }

    [Fact]
    public async Task Leave_FirstOfTwoConnections_NoMemberLeftThenLastLeave_MemberLeft()
    {
        var room = BrokerFixture.UniqueRoom();
        await using var carol = await Peer.ConnectAsync(Server, "/chat?user=carol");
        await using var alice1 = await Peer.ConnectAsync(Server, "/chat?user=alice");
        await using var alice2 = await Peer.ConnectAsync(Server, "/chat?user=alice");
        await carol.JoinAsync(room);
        await alice1.JoinAsync(room);
        await alice2.JoinAsync(room);

        await alice1.LeaveAsync(room);
        var token = Wire.NewToken();
        await alice2.PublishAsync(room, Wire.Marker(token));
        var before = await carol.FramesBeforeMarkerAsync(token);
        Assert.DoesNotContain(before, f => Wire.TypeOf(f) == "member_left");

        await alice2.LeaveAsync(room);
        var left = await carol.TakeTypeAsync("member_left");
        Assert.Equal("alice", left.GetProperty("user").GetString());
        Assert.Equal(room, left.GetProperty("room").GetString());
    }

    [Fact]
    public async Task Leave_OnlyConnection_OthersGetMemberLeft()
    {
        var room = BrokerFixture.UniqueRoom();
        await using var carol = await Peer.ConnectAsync(Server, "/chat?user=carol");
        await using var alice = await Peer.ConnectAsync(Server, "/chat?user=alice");
        await carol.JoinAsync(room);
        await alice.JoinAsync(room);

        await alice.LeaveAsync(room);

        var left = await carol.TakeTypeAsync("member_left", f => f.GetProperty("user").GetString() == "alice");
        Assert.Equal(room, left.GetProperty("room").GetString());
    }

    [Fact]
    public async Task Disconnect_ClosedSocket_OthersGetMemberLeft()
    {
        var room = BrokerFixture.UniqueRoom();
        await using var carol = await Peer.ConnectAsync(Server, "/chat?user=carol");
        var alice = await Peer.ConnectAsync(Server, "/chat?user=alice");
        await carol.JoinAsync(room);
        await alice.JoinAsync(room);
        await carol.TakeTypeAsync("member_joined", f => f.GetProperty("user").GetString() == "alice");

        await alice.DisposeAsync();

        var left = await carol.TakeTypeAsync("member_left", f => f.GetProperty("user").GetString() == "alice");
        Assert.Equal(room, left.GetProperty("room").GetString());
    }

    [Fact]
    public async Task Disconnect_AbortedSocket_OthersGetMemberLeft()
    {
        var room = BrokerFixture.UniqueRoom();
        await using var carol = await Peer.ConnectAsync(Server, "/chat?user=carol");
        var alice = await Peer.ConnectAsync(Server, "/chat?user=alice");
        await carol.JoinAsync(room);
        await alice.JoinAsync(room);
        await carol.TakeTypeAsync("member_joined", f => f.GetProperty("user").GetString() == "alice");

        alice.Client.Socket.Abort();
        await alice.DisposeAsync();

        await carol.TakeTypeAsync("member_left", f => f.GetProperty("user").GetString() == "alice");
    }

    [Fact]
    public async Task Disconnect_OneOfTwoConnections_NoMemberLeft()
    {
        var room = BrokerFixture.UniqueRoom();
        await using var carol = await Peer.ConnectAsync(Server, "/chat?user=carol");
        var alice1 = await Peer.ConnectAsync(Server, "/chat?user=alice");
        await using var alice2 = await Peer.ConnectAsync(Server, "/chat?user=alice");
        await carol.JoinAsync(room);
        await alice1.JoinAsync(room);
        await alice2.JoinAsync(room);

        await alice1.DisposeAsync();

        // Wait until the room has dropped the closed connection, then publish a marker.
        await WaitForPresenceAsync(carol, room, "alice", 1);
        var token = Wire.NewToken();
        await alice2.PublishAsync(room, Wire.Marker(token));
        var before = await carol.FramesBeforeMarkerAsync(token);
        Assert.DoesNotContain(before, f => Wire.TypeOf(f) == "member_left");
    }

    [Fact]
    public async Task Join_Self_NotToldAboutOwnArrivalOrOthersEarlierArrival()
    {
        var room = BrokerFixture.UniqueRoom();
        await using var carol = await Peer.ConnectAsync(Server, "/chat?user=carol");
        await using var alice = await Peer.ConnectAsync(Server, "/chat?user=alice");
        await carol.JoinAsync(room);

        await alice.JoinAsync(room);
        var token = Wire.NewToken();
        await alice.PublishAsync(room, Wire.Marker(token));

        var atAlice = await alice.FramesBeforeMarkerAsync(token);
        Assert.False(atAlice.Any(Wire.IsMemberEvent), "unexpected member event: " + Wire.Describe(atAlice));
        var atCarol = await carol.FramesBeforeMarkerAsync(token);
        Assert.Single(atCarol, f => Wire.TypeOf(f) == "member_joined" && f.Json.GetProperty("user").GetString() == "alice");
    }

    [Fact]
    public async Task Join_SecondConnectionOfSameUser_FirstConnectionNotToldAboutItself()
    {
        var room = BrokerFixture.UniqueRoom();
        await using var alice1 = await Peer.ConnectAsync(Server, "/chat?user=alice");
        await using var alice2 = await Peer.ConnectAsync(Server, "/chat?user=alice");
        await alice1.JoinAsync(room);

        await alice2.JoinAsync(room);
        await alice2.LeaveAsync(room);
        var token = Wire.NewToken();
        await alice1.PublishAsync(room, Wire.Marker(token));

        var before = await alice1.FramesBeforeMarkerAsync(token);
        Assert.False(before.Any(Wire.IsMemberEvent), "unexpected member event: " + Wire.Describe(before));
    }

    [Fact]
    public async Task Join_UserRejoinsAfterLastLeave_MemberJoinedAgain()
    {
        var room = BrokerFixture.UniqueRoom();
        await using var carol = await Peer.ConnectAsync(Server, "/chat?user=carol");
        await using var alice = await Peer.ConnectAsync(Server, "/chat?user=alice");
        await carol.JoinAsync(room);
        await alice.JoinAsync(room);
        await alice.LeaveAsync(room);

        await alice.JoinAsync(room);

        var (before, left) = await carol.TakeUntilAsync(f => Wire.TypeOf(f) == "member_left");
        Assert.Single(before, f => Wire.TypeOf(f) == "member_joined");
        Assert.Equal("alice", left.Json.GetProperty("user").GetString());
        var again = await carol.TakeTypeAsync("member_joined");
        Assert.Equal("alice", again.GetProperty("user").GetString());
    }

    /// <summary>Asks for presence after each reply until the user has the count (no fixed waits).</summary>
    private static async Task WaitForPresenceAsync(Peer peer, string room, string user, int connections)
    {
        var deadline = DateTime.UtcNow + TestClient.DefaultTimeout;
        while (true)
        {
            var presence = await peer.PresenceAsync(room);
            var count = presence.GetProperty("members").EnumerateArray()
                .Where(m => m.GetProperty("user").GetString() == user)
                .Select(m => m.GetProperty("connections").GetInt32())
                .FirstOrDefault();
            if (count == connections)
            {
                return;
            }

            if (DateTime.UtcNow > deadline)
            {
                Assert.Fail($"{user} still has {count} connections in {room}, expected {connections}.");
            }
        }
    }
}
