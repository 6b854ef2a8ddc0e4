using System.Text.Json;
using Broker.Frontend.Tests.Infrastructure;

namespace Broker.Frontend.Tests.Protocol;

/// <summary>protocol.md "Ordering and recovery" and the join row's since+epoch.</summary>
[Collection(BrokerCollection.Name)]
public sealed class RecoveryTests(BrokerFixture fixture)
{
    private BrokerServer Server => fixture.Server;

    [Fact]
    public async Task Join_SinceAndEpochAfterMissedMessages_ReplaysMissedInOrderThenJoinedRecovered()
    {
        var room = BrokerFixture.UniqueRoom();
        await using var alice = await Peer.ConnectAsync(Server, "/chat?user=alice");
        var epoch = (await alice.JoinAsync(room)).GetProperty("epoch").GetString()!;
        var bob = await Peer.ConnectAsync(Server, "/chat?user=bob");
        await bob.JoinAsync(room);
        await alice.PublishAsync(room, "seen");
        var seen = await bob.TakeTypeAsync("message");
        Assert.Equal(1, seen.GetProperty("seq").GetInt64());
        await bob.DisposeAsync();

        for (var i = 2; i <= 4; i++)
        {
            await alice.PublishAsync(room, new { missed = i });
        }

        await using var back = await Peer.ConnectAsync(Server, "/chat?user=bob");
        await back.SendRawAsync(JsonSerializer.Serialize(new { type = "join", id = "rejoin", room, since = 1, epoch }));
        var (before, joinedFrame) = await back.TakeUntilAsync(f => Wire.TypeOf(f) == "joined");

        Assert.Equal(3, before.Count);
        for (var i = 0; i < 3; i++)
        {
            Wire.AssertMessage(before[i].Json, room, i + 2, epoch, "alice", Wire.Json("{\"missed\":" + (i + 2) + "}"));
        }

        var joined = joinedFrame.Json;
        Assert.Equal("\"rejoin\"", joined.GetProperty("id").GetRawText());
        Assert.True(joined.GetProperty("recovered").GetBoolean());
        Assert.Equal(4, joined.GetProperty("seq").GetInt64());
        Assert.Equal(epoch, joined.GetProperty("epoch").GetString());

        // Live messages continue after the replay, with no duplicates.
        var token = Wire.NewToken();
        var marker = await alice.PublishAsync(room, Wire.Marker(token));
        Assert.Equal(5, marker.GetProperty("seq").GetInt64());
        var afterJoin = await back.FramesBeforeMarkerAsync(token);
        Assert.DoesNotContain(afterJoin, f => Wire.TypeOf(f) == "message");
    }

    [Fact]
    public async Task Join_SinceLatestAndEpoch_RecoveredWithNothingReplayed()
    {
        var room = BrokerFixture.UniqueRoom();
        await using var alice = await Peer.ConnectAsync(Server, "/chat?user=alice");
        var epoch = (await alice.JoinAsync(room)).GetProperty("epoch").GetString()!;
        await alice.PublishAsync(room, 1);
        await alice.PublishAsync(room, 2);

        await using var bob = await Peer.ConnectAsync(Server, "/chat?user=bob");
        await bob.SendRawAsync(JsonSerializer.Serialize(new { type = "join", id = 1, room, since = 2, epoch }));
        var (before, joined) = await bob.TakeUntilAsync(f => Wire.TypeOf(f) == "joined");

        Assert.Empty(before);
        Assert.True(joined.Json.GetProperty("recovered").GetBoolean());
        Assert.Equal(2, joined.Json.GetProperty("seq").GetInt64());
    }

    [Fact]
    public async Task Join_SinceZeroAndEpoch_ReplaysWholeHistory()
    {
        var room = BrokerFixture.UniqueRoom();
        await using var alice = await Peer.ConnectAsync(Server, "/chat?user=alice");
        var epoch = (await alice.JoinAsync(room)).GetProperty("epoch").GetString()!;
        await alice.PublishAsync(room, 1);
        await alice.PublishAsync(room, 2);

        await using var bob = await Peer.ConnectAsync(Server, "/chat?user=bob");
        await bob.SendRawAsync(JsonSerializer.Serialize(new { type = "join", id = 1, room, since = 0, epoch }));
        var (before, joined) = await bob.TakeUntilAsync(f => Wire.TypeOf(f) == "joined");

        Assert.Equal([1L, 2L], before.Select(f => f.Json.GetProperty("seq").GetInt64()));
        Assert.True(joined.Json.GetProperty("recovered").GetBoolean());
    }

    [Fact]
    public async Task Join_SinceWithWrongEpoch_NotRecoveredNoReplay()
    {
        var room = BrokerFixture.UniqueRoom();
        await using var alice = await Peer.ConnectAsync(Server, "/chat?user=alice");
        var epoch = (await alice.JoinAsync(room)).GetProperty("epoch").GetString()!;
        for (var i = 1; i <= 3; i++)
        {
            await alice.PublishAsync(room, i);
        }

        await using var bob = await Peer.ConnectAsync(Server, "/chat?user=bob");
        await bob.SendRawAsync(JsonSerializer.Serialize(new { type = "join", id = 1, room, since = 1, epoch = "not-" + epoch }));
        var (before, joinedFrame) = await bob.TakeUntilAsync(f => Wire.TypeOf(f) == "joined");

        Assert.DoesNotContain(before, f => Wire.TypeOf(f) == "message");
        var joined = joinedFrame.Json;
        Assert.False(joined.GetProperty("recovered").GetBoolean());
        Assert.Equal(epoch, joined.GetProperty("epoch").GetString());
        Assert.Equal(3, joined.GetProperty("seq").GetInt64());
    }

    [Fact]
    public async Task Join_SinceWithoutEpoch_NotRecovered()
    {
        var room = BrokerFixture.UniqueRoom();
        await using var alice = await Peer.ConnectAsync(Server, "/chat?user=alice");
        await alice.JoinAsync(room);
        await alice.PublishAsync(room, 1);
        await alice.PublishAsync(room, 2);

        await using var bob = await Peer.ConnectAsync(Server, "/chat?user=bob");
        await bob.SendRawAsync(JsonSerializer.Serialize(new { type = "join", id = 1, room, since = 1 }));
        var (before, joined) = await bob.TakeUntilAsync(f => Wire.TypeOf(f) == "joined");

        Assert.DoesNotContain(before, f => Wire.TypeOf(f) == "message");
        Assert.False(joined.Json.GetProperty("recovered").GetBoolean());
    }
}

/// <summary>Recovery when the history window no longer holds the gap.</summary>
public sealed class RecoveryWindowTests
{
    [Fact]
    public async Task Join_GapOlderThanHistoryWindow_NotRecoveredNoReplay()
    {
        await using var server = await BrokerServer.StartAsync(new Dictionary<string, string?> { ["Broker:Namespaces:chat:History"] = "2" });
        var room = BrokerFixture.UniqueRoom();
        await using var alice = await Peer.ConnectAsync(server, "/chat?user=alice");
        var epoch = (await alice.JoinAsync(room)).GetProperty("epoch").GetString()!;
        for (var i = 1; i <= 5; i++)
        {
            await alice.PublishAsync(room, i);
        }

        await using var bob = await Peer.ConnectAsync(server, "/chat?user=bob");
        await bob.SendRawAsync(JsonSerializer.Serialize(new { type = "join", id = 1, room, since = 1, epoch }));
        var (before, joined) = await bob.TakeUntilAsync(f => Wire.TypeOf(f) == "joined");

        Assert.DoesNotContain(before, f => Wire.TypeOf(f) == "message");
        Assert.False(joined.Json.GetProperty("recovered").GetBoolean());

        // Inside the window it still recovers.
        await using var carol = await Peer.ConnectAsync(server, "/chat?user=carol");
        await carol.SendRawAsync(JsonSerializer.Serialize(new { type = "join", id = 1, room, since = 3, epoch }));
        var (replayed, recovered) = await carol.TakeUntilAsync(f => Wire.TypeOf(f) == "joined");
        Assert.Equal([4L, 5L], replayed.Select(f => f.Json.GetProperty("seq").GetInt64()));
        Assert.True(recovered.Json.GetProperty("recovered").GetBoolean());
    }
}
