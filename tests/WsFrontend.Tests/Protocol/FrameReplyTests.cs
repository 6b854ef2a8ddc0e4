using System.Text.Json;
using Broker.Frontend.Tests.Infrastructure;

namespace Broker.Frontend.Tests.Protocol;

/// <summary>protocol.md "Frames": every client frame and its reply, and the pushed frames.</summary>
[Collection(BrokerCollection.Name)]
public sealed class FrameReplyTests(BrokerFixture fixture)
{
    private BrokerServer Server => fixture.Server;

    // ---- join ----

    [Fact]
    public async Task Join_NewRoom_JoinedWithSeqZero()
    {
        var room = BrokerFixture.UniqueRoom();
        await using var alice = await Peer.ConnectAsync(Server, "/chat?user=alice");

        var raw = await alice.RequestRawAsync(new() { ["type"] = "join", ["room"] = room });
        var joined = raw.Json;

        Assert.Equal("joined", Wire.TypeOf(joined));
        Assert.Equal(JsonValueKind.Number, joined.GetProperty("id").ValueKind);
        Assert.Equal(room, joined.GetProperty("room").GetString());
        Assert.Equal(0, joined.GetProperty("seq").GetInt64());
        Assert.Equal(JsonValueKind.String, joined.GetProperty("epoch").ValueKind);
        Assert.False(string.IsNullOrEmpty(joined.GetProperty("epoch").GetString()));
        Assert.Equal(JsonValueKind.False, joined.GetProperty("recovered").ValueKind);
    }

    [Fact]
    public async Task Join_RoomWithMessages_JoinedSeqIsLatest()
    {
        var room = BrokerFixture.UniqueRoom();
        await using var alice = await Peer.ConnectAsync(Server, "/chat?user=alice");
        var first = await alice.JoinAsync(room);
        for (var i = 0; i < 3; i++)
        {
            await alice.PublishAsync(room, i);
        }

        await using var bob = await Peer.ConnectAsync(Server, "/chat?user=bob");
        var joined = await bob.JoinAsync(room);

        Assert.Equal(3, joined.GetProperty("seq").GetInt64());
        Assert.Equal(first.GetProperty("epoch").GetString(), joined.GetProperty("epoch").GetString());
        Assert.False(joined.GetProperty("recovered").GetBoolean());
    }

    [Fact]
    public async Task Join_NewMember_NoOldMessagesPushed()
    {
        var room = BrokerFixture.UniqueRoom();
        await using var alice = await Peer.ConnectAsync(Server, "/chat?user=alice");
        await alice.JoinAsync(room);
        await alice.PublishAsync(room, "old");
        await using var bob = await Peer.ConnectAsync(Server, "/chat?user=bob");

        await bob.JoinAsync(room);
        var token = Wire.NewToken();
        await alice.PublishAsync(room, Wire.Marker(token));
        var before = await bob.FramesBeforeMarkerAsync(token);

        Assert.DoesNotContain(before, f => Wire.TypeOf(f) == "message");
    }

    [Fact]
    public async Task Join_SameRoomTwice_JoinedAgainAndMessagesNotDuplicated()
    {
        var room = BrokerFixture.UniqueRoom();
        await using var alice = await Peer.ConnectAsync(Server, "/chat?user=alice");
        await alice.JoinAsync(room);
        await alice.PublishAsync(room, 1);

        var again = await alice.JoinAsync(room);
        Assert.Equal("joined", Wire.TypeOf(again));
        Assert.Equal(1, again.GetProperty("seq").GetInt64());

        var token = Wire.NewToken();
        await alice.PublishAsync(room, Wire.Marker(token));
        var before = await alice.FramesBeforeMarkerAsync(token);
        Assert.Single(before, f => Wire.TypeOf(f) == "message");
        var sync = await alice.SyncAsync();
        Assert.DoesNotContain(sync, f => Peer.IsMarker(f, token));
    }

    // ---- leave ----

    [Fact]
    public async Task Leave_JoinedRoom_LeftWithRoom()
    {
        var room = BrokerFixture.UniqueRoom();
        await using var alice = await Peer.ConnectAsync(Server, "/chat?user=alice");
        await alice.JoinAsync(room);

        var left = await alice.LeaveAsync(room);

        Assert.Equal("left", Wire.TypeOf(left));
        Assert.Equal(JsonValueKind.Number, left.GetProperty("id").ValueKind);
        Assert.Equal(room, left.GetProperty("room").GetString());
    }

    [Fact]
    public async Task Leave_JoinedRoom_NoLongerReceivesMessagesNorMayPublish()
    {
        var room = BrokerFixture.UniqueRoom();
        await using var alice = await Peer.ConnectAsync(Server, "/chat?user=alice");
        await using var bob = await Peer.ConnectAsync(Server, "/chat?user=bob");
        await alice.JoinAsync(room);
        await bob.JoinAsync(room);
        await alice.LeaveAsync(room);

        await bob.PublishAsync(room, "after-leave");
        var refused = await alice.PublishAsync(room, "me too");

        Wire.AssertError(refused, "not_member", refused.GetProperty("id").GetRawText());
        var sync = await alice.SyncAsync();
        Assert.DoesNotContain(sync, f => Wire.TypeOf(f) == "message");
    }

    // ---- publish ----

    [Fact]
    public async Task Publish_ThreeMessages_AcksSeqOneTwoThree()
    {
        var room = BrokerFixture.UniqueRoom();
        await using var alice = await Peer.ConnectAsync(Server, "/chat?user=alice");
        await alice.JoinAsync(room);

        var seqs = new List<long>();
        for (var i = 0; i < 3; i++)
        {
            var ack = await alice.PublishAsync(room, i);
            Assert.Equal("ack", Wire.TypeOf(ack));
            Assert.Equal(room, ack.GetProperty("room").GetString());
            seqs.Add(ack.GetProperty("seq").GetInt64());
        }

        Assert.Equal([1L, 2L, 3L], seqs);
    }

    [Fact]
    public async Task Publish_Publisher_ReceivesOwnMessageFrame()
    {
        var room = BrokerFixture.UniqueRoom();
        await using var alice = await Peer.ConnectAsync(Server, "/chat?user=alice");
        var joined = await alice.JoinAsync(room);

        var ack = await alice.PublishAsync(room, new { text = "hello", n = 1 });
        var message = await alice.TakeTypeAsync("message");

        Wire.AssertMessage(message, room, ack.GetProperty("seq").GetInt64(), joined.GetProperty("epoch").GetString()!, "alice", Wire.Json("{\"text\":\"hello\",\"n\":1}"));
    }

    [Fact]
    public async Task Publish_OtherMembers_ReceiveCompleteMessageFrame()
    {
        var room = BrokerFixture.UniqueRoom();
        await using var alice = await Peer.ConnectAsync(Server, "/chat?user=alice");
        await using var bob = await Peer.ConnectAsync(Server, "/chat?user=bob");
        await using var carol = await Peer.ConnectAsync(Server, "/chat?user=carol");
        var joined = await alice.JoinAsync(room);
        await bob.JoinAsync(room);
        await carol.JoinAsync(room);

        var ack = await alice.PublishAsync(room, new[] { 1, 2, 3 });

        var seq = ack.GetProperty("seq").GetInt64();
        var epoch = joined.GetProperty("epoch").GetString()!;
        Wire.AssertMessage(await bob.TakeTypeAsync("message"), room, seq, epoch, "alice", Wire.Json("[1,2,3]"));
        Wire.AssertMessage(await carol.TakeTypeAsync("message"), room, seq, epoch, "alice", Wire.Json("[1,2,3]"));
    }

    [Theory]
    [InlineData("{\"a\":{\"b\":[1,null,true]}}")]
    [InlineData("[1,\"two\",3.5,{}]")]
    [InlineData("\"just text ✓\"")]
    [InlineData("42")]
    [InlineData("-0.125")]
    [InlineData("null")]
    [InlineData("false")]
    public async Task Publish_AnyJsonData_DeliveredUnchanged(string data)
    {
        var room = BrokerFixture.UniqueRoom();
        await using var alice = await Peer.ConnectAsync(Server, "/chat?user=alice");
        await using var bob = await Peer.ConnectAsync(Server, "/chat?user=bob");
        var joined = await alice.JoinAsync(room);
        await bob.JoinAsync(room);

        await alice.SendRawAsync("{\"type\":\"publish\",\"id\":\"p\",\"room\":\"" + room + "\",\"data\":" + data + "}");
        var ack = (await alice.ReplyRawAsync("\"p\"")).Json;

        Assert.Equal("ack", Wire.TypeOf(ack));
        Wire.AssertMessage(await bob.TakeTypeAsync("message"), room, ack.GetProperty("seq").GetInt64(), joined.GetProperty("epoch").GetString()!, "alice", Wire.Json(data));
    }

    [Fact]
    public async Task Publish_TwoConcurrentPublishers_EveryMemberGetsSeqOrderNoDuplicates()
    {
        const int each = 40;
        var room = BrokerFixture.UniqueRoom();
        await using var alice = await Peer.ConnectAsync(Server, "/chat?user=alice");
        await using var bob = await Peer.ConnectAsync(Server, "/chat?user=bob");
        await using var carol = await Peer.ConnectAsync(Server, "/chat?user=carol");
        await alice.JoinAsync(room);
        await bob.JoinAsync(room);
        await carol.JoinAsync(room);

        async Task Blast(Peer peer)
        {
            for (var i = 0; i < each; i++)
            {
                await peer.SendRawAsync("{\"type\":\"publish\",\"room\":\"" + room + "\",\"data\":" + i + "}");
            }
        }

        await Task.WhenAll(Blast(alice), Blast(bob));

        foreach (var peer in new[] { alice, bob, carol })
        {
            var seqs = new List<long>();
            while (seqs.Count < 2 * each)
            {
                seqs.Add((await peer.TakeTypeAsync("message")).GetProperty("seq").GetInt64());
            }

            Assert.Equal(Enumerable.Range(1, 2 * each).Select(i => (long)i), seqs);
        }
    }

    [Fact]
    public async Task Publish_SameMsgIdTwice_AckedWithFirstSeqDeliveredOnce()
    {
        var room = BrokerFixture.UniqueRoom();
        await using var alice = await Peer.ConnectAsync(Server, "/chat?user=alice");
        await using var bob = await Peer.ConnectAsync(Server, "/chat?user=bob");
        await alice.JoinAsync(room);
        await bob.JoinAsync(room);

        var first = await alice.RequestAsync(new() { ["type"] = "publish", ["room"] = room, ["data"] = "once", ["msgId"] = "m-1" });
        var retry = await alice.RequestAsync(new() { ["type"] = "publish", ["room"] = room, ["data"] = "once", ["msgId"] = "m-1" });
        var token = Wire.NewToken();
        var marker = await alice.PublishAsync(room, Wire.Marker(token));

        Assert.Equal("ack", Wire.TypeOf(retry));
        Assert.Equal(first.GetProperty("seq").GetInt64(), retry.GetProperty("seq").GetInt64());
        Assert.Equal(first.GetProperty("seq").GetInt64() + 1, marker.GetProperty("seq").GetInt64());
        var atBob = await bob.FramesBeforeMarkerAsync(token);
        Assert.Single(atBob, f => Wire.TypeOf(f) == "message");
    }

    // ---- send ----

    [Fact]
    public async Task Send_UserWithTwoConnections_DeliveredTwoBothReceiveDirect()
    {
        var bobName = "bob-" + Wire.NewToken();
        await using var alice = await Peer.ConnectAsync(Server, "/chat?user=alice");
        await using var bob1 = await Peer.ConnectAsync(Server, "/chat?user=" + bobName);
        await using var bob2 = await Peer.ConnectAsync(Server, "/chat?user=" + bobName);

        var ack = await alice.SendToAsync(bobName, new { text = "psst" });

        Assert.Equal("ack", Wire.TypeOf(ack));
        Assert.Equal(JsonValueKind.Number, ack.GetProperty("id").ValueKind);
        Assert.Equal(2, ack.GetProperty("delivered").GetInt32());
        foreach (var bob in new[] { bob1, bob2 })
        {
            var direct = await bob.TakeTypeAsync("direct");
            Assert.Equal("alice", direct.GetProperty("from").GetString());
            Assert.True(JsonElement.DeepEquals(Wire.Json("{\"text\":\"psst\"}"), direct.GetProperty("data")), direct.GetRawText());
            Wire.AssertRecentUnixMs(direct.GetProperty("ts"));
        }
    }

    [Fact]
    public async Task Send_UserWithoutConnection_AckDeliveredZero()
    {
        await using var alice = await Peer.ConnectAsync(Server, "/chat?user=alice");

        var ack = await alice.SendToAsync("nobody-" + Wire.NewToken(), 1);

        Assert.Equal("ack", Wire.TypeOf(ack));
        Assert.Equal(0, ack.GetProperty("delivered").GetInt32());
    }

    [Fact]
    public async Task Send_UserConnectedInOtherNamespace_CountsOnlyThisNamespace()
    {
        var bobName = "bob-" + Wire.NewToken();
        await using var alice = await Peer.ConnectAsync(Server, "/chat?user=alice");
        await using var bobChat = await Peer.ConnectAsync(Server, "/chat?user=" + bobName);
        await using var bobDefault = await Peer.ConnectAsync(Server, "/?user=" + bobName);

        var ack = await alice.SendToAsync(bobName, "x");

        Assert.Equal(1, ack.GetProperty("delivered").GetInt32());
        await bobChat.TakeTypeAsync("direct");
        var atDefault = await bobDefault.SyncAsync();
        Assert.DoesNotContain(atDefault, f => Wire.TypeOf(f) == "direct");
    }

    // ---- presence ----

    [Fact]
    public async Task Presence_MembersWithConnectionCounts()
    {
        var room = BrokerFixture.UniqueRoom();
        await using var alice1 = await Peer.ConnectAsync(Server, "/chat?user=alice");
        await using var alice2 = await Peer.ConnectAsync(Server, "/chat?user=alice");
        await using var bob = await Peer.ConnectAsync(Server, "/chat?user=bob");
        await alice1.JoinAsync(room);
        await alice2.JoinAsync(room);
        await bob.JoinAsync(room);

        var presence = await bob.PresenceAsync(room);

        Assert.Equal("presence", Wire.TypeOf(presence));
        Assert.Equal(JsonValueKind.Number, presence.GetProperty("id").ValueKind);
        Assert.Equal(room, presence.GetProperty("room").GetString());
        Assert.Equal(
            [("alice", 2), ("bob", 1)],
            Members(presence));

        await alice1.LeaveAsync(room);
        Assert.Equal([("alice", 1), ("bob", 1)], Members(await bob.PresenceAsync(room)));
    }

    [Fact]
    public async Task Presence_OnlyMember_ListsItself()
    {
        // A room nobody else is in (an empty room's presence, asked by a non-member, is in
        // MembershipNotRequiredTests: by default only members may ask).
        var room = BrokerFixture.UniqueRoom();
        await using var alice = await Peer.ConnectAsync(Server, "/chat?user=alice");
        await alice.JoinAsync(room);

        var presence = await alice.PresenceAsync(room);

        Assert.Equal("presence", Wire.TypeOf(presence));
        Assert.Equal([("alice", 1)], Members(presence));
    }

    // ---- history ----

    [Fact]
    public async Task History_FiveMessages_CompleteMessageFramesInSeqOrder()
    {
        var room = BrokerFixture.UniqueRoom();
        await using var alice = await Peer.ConnectAsync(Server, "/chat?user=alice");
        var epoch = (await alice.JoinAsync(room)).GetProperty("epoch").GetString()!;
        for (var i = 1; i <= 5; i++)
        {
            await alice.PublishAsync(room, new { n = i });
        }

        var history = await alice.HistoryAsync(room);

        Assert.Equal("history", Wire.TypeOf(history));
        Assert.Equal(JsonValueKind.Number, history.GetProperty("id").ValueKind);
        Assert.Equal(room, history.GetProperty("room").GetString());
        Assert.Equal(epoch, history.GetProperty("epoch").GetString());
        var messages = history.GetProperty("messages").EnumerateArray().ToList();
        Assert.Equal(5, messages.Count);
        for (var i = 0; i < 5; i++)
        {
            Wire.AssertMessage(messages[i], room, i + 1, epoch, "alice", Wire.Json("{\"n\":" + (i + 1) + "}"));
        }
    }

    [Fact]
    public async Task History_Since_OnlyLaterMessages()
    {
        var room = BrokerFixture.UniqueRoom();
        await using var alice = await Peer.ConnectAsync(Server, "/chat?user=alice");
        await alice.JoinAsync(room);
        for (var i = 1; i <= 5; i++)
        {
            await alice.PublishAsync(room, i);
        }

        var history = await alice.HistoryAsync(room, since: 2);

        Assert.Equal([3L, 4L, 5L], Seqs(history));
    }

    [Fact]
    public async Task History_SinceLatest_Empty()
    {
        var room = BrokerFixture.UniqueRoom();
        await using var alice = await Peer.ConnectAsync(Server, "/chat?user=alice");
        await alice.JoinAsync(room);
        await alice.PublishAsync(room, 1);
        await alice.PublishAsync(room, 2);

        var history = await alice.HistoryAsync(room, since: 2);

        Assert.Empty(Seqs(history));
    }

    [Fact]
    public async Task History_Limit_AtMostLimitConsecutiveMessages()
    {
        var room = BrokerFixture.UniqueRoom();
        await using var alice = await Peer.ConnectAsync(Server, "/chat?user=alice");
        await alice.JoinAsync(room);
        for (var i = 1; i <= 5; i++)
        {
            await alice.PublishAsync(room, i);
        }

        var seqs = Seqs(await alice.HistoryAsync(room, limit: 2));

        Assert.Equal(2, seqs.Count);
        Assert.Equal(seqs[0] + 1, seqs[1]);
        Assert.InRange(seqs[0], 1, 4);
    }

    [Fact]
    public async Task History_SinceAndLimit_PageAfterSince()
    {
        var room = BrokerFixture.UniqueRoom();
        await using var alice = await Peer.ConnectAsync(Server, "/chat?user=alice");
        await alice.JoinAsync(room);
        for (var i = 1; i <= 5; i++)
        {
            await alice.PublishAsync(room, i);
        }

        var seqs = Seqs(await alice.HistoryAsync(room, since: 1, limit: 2));

        Assert.Equal([2L, 3L], seqs);
    }

    [Fact]
    public async Task History_RoomWithoutMessages_EmptyWithEpoch()
    {
        var room = BrokerFixture.UniqueRoom();
        await using var alice = await Peer.ConnectAsync(Server, "/chat?user=alice");
        await alice.JoinAsync(room);

        var history = await alice.HistoryAsync(room);

        Assert.Equal("history", Wire.TypeOf(history));
        Assert.False(string.IsNullOrEmpty(history.GetProperty("epoch").GetString()));
        Assert.Empty(history.GetProperty("messages").EnumerateArray());
    }

    // ---- echo ----

    [Theory]
    [InlineData("{\"k\":\"v\",\"nested\":{\"a\":[1,2]}}")]
    [InlineData("[1,\"x\",null]")]
    [InlineData("\"a string\"")]
    [InlineData("12345")]
    [InlineData("6.02e23")]
    [InlineData("null")]
    [InlineData("true")]
    [InlineData("{}")]
    [InlineData("[]")]
    public async Task Echo_AnyJsonData_ComesBackAsSent(string data)
    {
        await using var alice = await Peer.ConnectAsync(Server, "/chat?user=alice");

        await alice.SendRawAsync("{\"type\":\"echo\",\"id\":\"e1\",\"data\":" + data + "}");
        var reply = (await alice.ReplyRawAsync("\"e1\"")).Json;

        Assert.Equal("echo", Wire.TypeOf(reply));
        Assert.True(reply.TryGetProperty("data", out var got), reply.GetRawText());
        Assert.True(JsonElement.DeepEquals(Wire.Json(data), got), $"{got.GetRawText()} != {data}");
    }

    // ---- ping ----

    [Fact]
    public async Task Ping_JsonWithId_PongWithId()
    {
        await using var alice = await Peer.ConnectAsync(Server, "/chat?user=alice");

        var pong = await alice.RequestAsync(new() { ["type"] = "ping" });

        Assert.Equal("pong", Wire.TypeOf(pong));
    }

    [Fact]
    public async Task Ping_JsonWithoutId_PongWithoutId()
    {
        await using var alice = await Peer.ConnectAsync(Server, "/chat?user=alice");

        await alice.SendRawAsync("{\"type\":\"ping\"}");
        var pong = await alice.Client.NextAsync();

        Assert.Equal("pong", Wire.TypeOf(pong));
        Assert.False(pong.TryGetProperty("id", out _));
    }

    [Theory]
    [InlineData("/")]
    [InlineData("/chat")]
    [InlineData("/notifications")]
    public async Task Ping_TextFrame_TextPong(string path)
    {
        await using var alice = await Peer.ConnectAsync(Server, path);

        await alice.SendRawAsync("ping");
        var reply = await alice.Client.NextRawAsync();

        Assert.False(reply.IsJson, $"expected the text frame pong, got {reply.Text}");
        Assert.Equal("pong", reply.Text);
    }

    private static List<(string User, int Connections)> Members(JsonElement presence) =>
        presence.GetProperty("members").EnumerateArray()
            .Select(m => (m.GetProperty("user").GetString()!, m.GetProperty("connections").GetInt32()))
            .OrderBy(m => m.Item1, StringComparer.Ordinal)
            .ToList();

    private static List<long> Seqs(JsonElement history)
    {
        Assert.Equal("history", Wire.TypeOf(history));
        return history.GetProperty("messages").EnumerateArray().Select(m =>
        {
            Assert.Equal("message", Wire.TypeOf(m));
            return m.GetProperty("seq").GetInt64();
        }).ToList();
    }
}
