using System.Collections.Immutable;
using System.Text;
using System.Text.Json;
using Broker.Frontend.Hosting;
using Broker.Frontend.Options;
using Broker.Frontend.Protocol;
using Broker.Frontend.Tests.Infrastructure;
using Broker.Grains;
using Broker.Grains.Models;

namespace Broker.Frontend.Tests.Protocol;

/// <summary>protocol.md "Bounds": history replies capped at limit ≤ 100 and MaxReplyBytes, with "more" and paging by since.</summary>
public sealed class HistoryPagingTests
{
    /// <summary>The smallest reply bound the defaults allow (MaxFrameBytes 64 KiB + headroom).</summary>
    private const int MaxReplyBytes = BrokerOptions.DefaultMaxFrameBytes + BrokerOptions.ReplyHeadroomBytes;

    [Fact]
    public async Task History_RepliesOverMaxReplyBytes_CarryMoreAndPagingWithSinceGetsEverything()
    {
        await using var server = await BrokerServer.StartAsync(new Dictionary<string, string?> { ["Broker:MaxReplyBytes"] = MaxReplyBytes.ToString(System.Globalization.CultureInfo.InvariantCulture) });
        var room = BrokerFixture.UniqueRoom();
        await using var alice = await Peer.ConnectAsync(server, "/chat?user=alice");
        await alice.JoinAsync(room);
        var filler = new string('x', 10_000);
        for (var i = 1; i <= 30; i++)
        {
            await alice.PublishAsync(room, new { n = i, filler });
        }

        var seqs = new List<long>();
        var replies = new List<ReceivedFrame>();
        long? since = null;
        for (var page = 0; page < 30; page++)
        {
            var reply = await HistoryRawAsync(alice, room, since);
            replies.Add(reply);
            var messages = reply.Json.GetProperty("messages").EnumerateArray().Select(m => m.GetProperty("seq").GetInt64()).ToList();
            seqs.AddRange(messages);
            if (!reply.Json.GetProperty("more").GetBoolean())
            {
                break;
            }

            since = messages[^1];
        }

        // The first reply is the latest 30 (the window is larger), from the oldest of them.
        Assert.Equal(Enumerable.Range(1, 30).Select(i => (long)i), seqs);
        Assert.True(replies.Count >= 4, $"300 KB in replies of at most {MaxReplyBytes} bytes takes at least 4 pages; got {replies.Count}");
        Assert.All(replies, r => Assert.InRange(Encoding.UTF8.GetByteCount(r.Text), 1, MaxReplyBytes));
        Assert.All(replies[..^1], r => Assert.Equal(JsonValueKind.True, r.Json.GetProperty("more").ValueKind));
        Assert.Equal(JsonValueKind.False, replies[^1].Json.GetProperty("more").ValueKind);
    }

    [Fact]
    public async Task History_LimitAboveHundred_AtMostHundredWithMore()
    {
        await using var server = await BrokerServer.StartAsync(new Dictionary<string, string?> { ["Broker:Namespaces:chat:History"] = "500" });
        var room = BrokerFixture.UniqueRoom();
        await using var alice = await Peer.ConnectAsync(server, "/chat?user=alice");
        await alice.JoinAsync(room);
        for (var i = 1; i <= 130; i++)
        {
            await alice.PublishAsync(room, i);
        }

        var first = await alice.HistoryAsync(room, since: 0, limit: 500);
        var rest = await alice.HistoryAsync(room, since: 100, limit: 500);

        Assert.Equal(Enumerable.Range(1, 100).Select(i => (long)i), first.GetProperty("messages").EnumerateArray().Select(m => m.GetProperty("seq").GetInt64()));
        Assert.True(first.GetProperty("more").GetBoolean());
        Assert.Equal(Enumerable.Range(101, 30).Select(i => (long)i), rest.GetProperty("messages").EnumerateArray().Select(m => m.GetProperty("seq").GetInt64()));
        Assert.False(rest.GetProperty("more").GetBoolean());
    }

    [Fact]
    public async Task FillGap_GapLargerThanOnePage_PagesThroughHistoryAndDeliversEveryMessageInOrder()
    {
        await using var server = await BrokerServer.StartAsync();
        var room = BrokerFixture.UniqueRoom();
        await using var alice = await Peer.ConnectAsync(server, "/chat?user=alice");
        var epoch = (await alice.JoinAsync(room)).GetProperty("epoch").GetString()!;
        await alice.PublishAsync(room, "seen");
        Assert.Equal(1, (await alice.TakeTypeAsync("message")).GetProperty("seq").GetInt64());

        // The room forgets the member while the front-end keeps it, so what is published next
        // never reaches this front-end: a gap of 400 KB, more than one gap-fill page.
        var grains = server.Services.GetRequiredService<IGrainFactory>();
        var grain = grains.GetGrain<IRoomGrain>(GrainKeys.Of("chat", room));
        var policy = new RoomPolicy(100, Presence: true);
        Assert.True(await grain.Leave(alice.Client.ConnectionId));
        var filler = new string('x', 10_000);
        for (var i = 2; i <= 41; i++)
        {
            await grain.Publish(new PublishRequest("server", Encoding.UTF8.GetBytes($"{{\"n\":{i},\"f\":\"{filler}\"}}"), null, policy));
        }

        // Taken back: the room tells the front-end where its stream stands, and the front-end fills the gap.
        await grain.Join(new JoinRequest(alice.Client.ConnectionId, alice.User, server.Node.Id, server.Node.Reference, policy, null, null));
        var token = Wire.NewToken();
        await alice.PublishAsync(room, Wire.Marker(token));
        var before = await alice.FramesBeforeMarkerAsync(token);

        var filled = before.Where(f => Wire.TypeOf(f.Json) == "message").Select(f => f.Json).ToList();
        Assert.Equal(Enumerable.Range(2, 40).Select(i => (long)i), filled.Select(m => m.GetProperty("seq").GetInt64()));
        Assert.All(filled, m => Assert.Equal(epoch, m.GetProperty("epoch").GetString()));
        Assert.True(40 * 10_000 > FrontendObserverPageBytes, "the gap must span more than one page");
    }

    [Fact]
    public void History_NamesLongerThanTheRoomAssumes_FrameStillWithinMaxBytes()
    {
        var room = new string('r', 200);
        var messages = Enumerable.Range(1, 20).Select(i => new RoomMessage(i, new string('u', 200), 1_700_000_000_000, new byte[1000].Select(_ => (byte)'1').ToArray())).ToImmutableArray();

        var frame = FrameWriter.History("7"u8.ToArray(), room, "epoch", messages, more: false, maxBytes: 8_000);
        var json = JsonDocument.Parse(frame).RootElement;

        Assert.InRange(frame.Length, 1, 8_000);
        var seqs = json.GetProperty("messages").EnumerateArray().Select(m => m.GetProperty("seq").GetInt64()).ToList();
        Assert.Equal(Enumerable.Range(1, seqs.Count).Select(i => (long)i), seqs);
        Assert.InRange(seqs.Count, 1, 19);
        Assert.True(json.GetProperty("more").GetBoolean());
    }

    [Fact]
    public void History_FirstMessageAloneOverMaxBytes_StillSentSoPagingMoves()
    {
        var messages = ImmutableArray.Create(new RoomMessage(5, "alice", 0, new byte[5000].Select(_ => (byte)'1').ToArray()), new RoomMessage(6, "alice", 0, "1"u8.ToArray()));

        var json = JsonDocument.Parse(FrameWriter.History([], "r", "e", messages, more: false, maxBytes: 1000)).RootElement;

        Assert.Equal([5L], json.GetProperty("messages").EnumerateArray().Select(m => m.GetProperty("seq").GetInt64()));
        Assert.True(json.GetProperty("more").GetBoolean());
    }

    private const int FrontendObserverPageBytes = Broker.Frontend.Connections.FrontendObserver.GapFillPageBytes;

    private static async Task<ReceivedFrame> HistoryRawAsync(Peer peer, string room, long? since)
    {
        var frame = new Dictionary<string, object?> { ["type"] = "history", ["room"] = room };
        if (since is not null)
        {
            frame["since"] = since;
        }

        return await peer.RequestRawAsync(frame);
    }
}
