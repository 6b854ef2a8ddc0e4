using System.Text.Json;
using Broker.Frontend.Tests.Infrastructure;

namespace Broker.Frontend.Tests.Protocol;

/// <summary>protocol.md "Namespace options", the shipped defaults.</summary>
[Collection(BrokerCollection.Name)]
public sealed class NamespaceDefaultsTests(BrokerFixture fixture)
{
    private BrokerServer Server => fixture.Server;

    [Fact]
    public async Task Publish_NotificationsNamespace_Forbidden()
    {
        var room = BrokerFixture.UniqueRoom();
        await using var peer = await Peer.ConnectAsync(Server, "/notifications?user=alice");
        var joined = await peer.JoinAsync(room);
        Assert.Equal("joined", Wire.TypeOf(joined));

        await peer.SendRawAsync("{\"type\":\"publish\",\"id\":\"n1\",\"room\":\"" + room + "\",\"data\":1}");
        var (before, reply) = await peer.TakeUntilAsync(f => f.IsJson && f.Json.TryGetProperty("id", out var id) && id.GetRawText() == "\"n1\"");

        Wire.AssertError(reply.Json, "forbidden", "\"n1\"");
        Assert.Empty(await peer.SyncAsync());
        Assert.DoesNotContain(before, f => Wire.TypeOf(f) == "message");
    }

    [Fact]
    public async Task Presence_NotificationsNamespace_Forbidden()
    {
        var room = BrokerFixture.UniqueRoom();
        await using var peer = await Peer.ConnectAsync(Server, "/notifications?user=alice");
        await peer.JoinAsync(room);

        var reply = await peer.PresenceAsync(room);

        Wire.AssertError(reply, "forbidden", reply.GetProperty("id").GetRawText());
        Assert.Empty(await peer.SyncAsync());
    }

    [Theory]
    [InlineData("/")]
    [InlineData("/chat")]
    public async Task Publish_RoomNotJoined_NotMember(string path)
    {
        var room = BrokerFixture.UniqueRoom();
        await using var peer = await Peer.ConnectAsync(Server, path);
        await using var member = await Peer.ConnectAsync(Server, path);
        await member.JoinAsync(room);

        var reply = await peer.PublishAsync(room, "x");

        Wire.AssertError(reply, "not_member", reply.GetProperty("id").GetRawText());
        Assert.Empty(await peer.SyncAsync());
        var token = Wire.NewToken();
        await member.PublishAsync(room, Wire.Marker(token));
        var atMember = await member.FramesBeforeMarkerAsync(token);
        Assert.DoesNotContain(atMember, f => Wire.TypeOf(f) == "message");
    }

    [Theory]
    [InlineData("/")]
    [InlineData("/chat")]
    public async Task History_DefaultAndChat_KeepPublishedMessages(string path)
    {
        var room = BrokerFixture.UniqueRoom();
        await using var peer = await Peer.ConnectAsync(Server, path);
        await peer.JoinAsync(room);
        await peer.PublishAsync(room, "a");
        await peer.PublishAsync(room, "b");

        var history = await peer.HistoryAsync(room);

        Assert.Equal(["a", "b"], history.GetProperty("messages").EnumerateArray().Select(m => m.GetProperty("data").GetString()));
    }

    [Theory]
    [InlineData("/")]
    [InlineData("/chat")]
    public async Task Presence_DefaultAndChat_PresenceOn(string path)
    {
        var room = BrokerFixture.UniqueRoom();
        await using var peer = await Peer.ConnectAsync(Server, path + "?user=present");
        await peer.JoinAsync(room);

        var presence = await peer.PresenceAsync(room);

        Assert.Equal("presence", Wire.TypeOf(presence));
        var member = Assert.Single(presence.GetProperty("members").EnumerateArray());
        Assert.Equal("present", member.GetProperty("user").GetString());
        Assert.Equal(1, member.GetProperty("connections").GetInt32());
    }
}

/// <summary>protocol.md "Namespace options", configured.</summary>
public sealed class NamespaceSettingsTests
{
    [Fact]
    public async Task Publish_RequireMembershipOff_AckedWithoutJoinMembersReceive()
    {
        await using var server = await BrokerServer.StartAsync(new Dictionary<string, string?> { ["Broker:Namespaces:chat:RequireMembership"] = "false" });
        var room = BrokerFixture.UniqueRoom();
        await using var outsider = await Peer.ConnectAsync(server, "/chat?user=outsider");
        await using var member = await Peer.ConnectAsync(server, "/chat?user=member");
        await member.JoinAsync(room);

        var ack = await outsider.PublishAsync(room, "from outside");

        Assert.Equal("ack", Wire.TypeOf(ack));
        Assert.Equal(1, ack.GetProperty("seq").GetInt64());
        var message = await member.TakeTypeAsync("message");
        Assert.Equal("outsider", message.GetProperty("from").GetString());
        Assert.Equal("from outside", message.GetProperty("data").GetString());
        var atOutsider = await outsider.SyncAsync();
        Assert.DoesNotContain(atOutsider, f => Wire.TypeOf(f) == "message");
    }

    [Fact]
    public async Task History_HistoryZero_EmptyWithEpoch()
    {
        await using var server = await BrokerServer.StartAsync(new Dictionary<string, string?> { ["Broker:Namespaces:chat:History"] = "0" });
        var room = BrokerFixture.UniqueRoom();
        await using var alice = await Peer.ConnectAsync(server, "/chat?user=alice");
        var joined = await alice.JoinAsync(room);
        for (var i = 1; i <= 3; i++)
        {
            Assert.Equal(i, (await alice.PublishAsync(room, i)).GetProperty("seq").GetInt64());
        }

        var history = await alice.HistoryAsync(room);
        var since = await alice.HistoryAsync(room, since: 0, limit: 10);

        Assert.Equal("history", Wire.TypeOf(history));
        Assert.Equal(joined.GetProperty("epoch").GetString(), history.GetProperty("epoch").GetString());
        Assert.Empty(history.GetProperty("messages").EnumerateArray());
        Assert.Empty(since.GetProperty("messages").EnumerateArray());
    }

    [Fact]
    public async Task Join_HistoryZeroSinceAndEpoch_NotRecovered()
    {
        await using var server = await BrokerServer.StartAsync(new Dictionary<string, string?> { ["Broker:Namespaces:chat:History"] = "0" });
        var room = BrokerFixture.UniqueRoom();
        await using var alice = await Peer.ConnectAsync(server, "/chat?user=alice");
        var epoch = (await alice.JoinAsync(room)).GetProperty("epoch").GetString()!;
        for (var i = 1; i <= 3; i++)
        {
            await alice.PublishAsync(room, i);
        }

        await using var bob = await Peer.ConnectAsync(server, "/chat?user=bob");
        await bob.SendRawAsync(JsonSerializer.Serialize(new { type = "join", id = 1, room, since = 1, epoch }));
        var (before, joined) = await bob.TakeUntilAsync(f => Wire.TypeOf(f) == "joined");

        Assert.DoesNotContain(before, f => Wire.TypeOf(f) == "message");
        Assert.False(joined.Json.GetProperty("recovered").GetBoolean());
        Assert.Equal(3, joined.Json.GetProperty("seq").GetInt64());
    }

    [Fact]
    public async Task Presence_PresenceOff_ForbiddenAndNoMemberEvents()
    {
        await using var server = await BrokerServer.StartAsync(new Dictionary<string, string?> { ["Broker:Namespaces:chat:Presence"] = "false" });
        var room = BrokerFixture.UniqueRoom();
        await using var carol = await Peer.ConnectAsync(server, "/chat?user=carol");
        await using var alice = await Peer.ConnectAsync(server, "/chat?user=alice");
        await carol.JoinAsync(room);

        await alice.JoinAsync(room);
        await alice.LeaveAsync(room);
        await alice.JoinAsync(room);
        var token = Wire.NewToken();
        await alice.PublishAsync(room, Wire.Marker(token));
        var presence = await carol.PresenceAsync(room);

        var before = await carol.FramesBeforeMarkerAsync(token);
        Assert.False(before.Any(Wire.IsMemberEvent), "unexpected member event: " + Wire.Describe(before));
        Wire.AssertError(presence, "forbidden", presence.GetProperty("id").GetRawText());
    }

    [Fact]
    public async Task Publish_ClientPublishOffInChat_Forbidden()
    {
        await using var server = await BrokerServer.StartAsync(new Dictionary<string, string?> { ["Broker:Namespaces:chat:ClientPublish"] = "false" });
        var room = BrokerFixture.UniqueRoom();
        await using var alice = await Peer.ConnectAsync(server, "/chat?user=alice");
        await alice.JoinAsync(room);

        var reply = await alice.PublishAsync(room, 1);

        Wire.AssertError(reply, "forbidden", reply.GetProperty("id").GetRawText());
        var history = await alice.HistoryAsync(room);
        Assert.Empty(history.GetProperty("messages").EnumerateArray());
    }
}
