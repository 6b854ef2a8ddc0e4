using Broker.Grains.Models;
using Broker.Grains.Tests.Infrastructure;

namespace Broker.Grains.Tests;

[Collection(ClusterCollection.Name)]
public sealed class RoomGrainPublishTests(ClusterFixture fixture) : GrainTestBase(fixture)
{
    [Fact]
    public async Task Join_NewRoom_ReturnsSeqZeroAndEpoch()
    {
        var frontend = NewFrontend("a");

        var result = await Room(NewKey()).Join(JoinOf("c1", "alice", frontend));

        Assert.Equal(0, result.Seq);
        Assert.False(string.IsNullOrWhiteSpace(result.Epoch));
        Assert.False(result.Recovered);
        Assert.Empty(result.Missed);
    }

    [Fact]
    public async Task Publish_Sequential_SeqsStartAtOneAndIncreaseByOne()
    {
        var room = Room(NewKey());
        var join = await room.Join(JoinOf("c1", "alice", NewFrontend("a")));

        var results = new List<PublishResult>();
        for (var i = 0; i < 5; i++)
        {
            results.Add(await room.Publish(PublishOf("alice", $"{{\"n\":{i}}}")));
        }

        Assert.Equal([1L, 2, 3, 4, 5], results.Select(r => r.Seq));
        Assert.All(results, r => Assert.Equal(join.Epoch, r.Epoch));
        Assert.All(results, r => Assert.False(r.Duplicate));
    }

    [Fact]
    public async Task Join_AfterPublishes_ReturnsLatestSeqAndSameEpoch()
    {
        var room = Room(NewKey());
        var first = await room.Join(JoinOf("c1", "alice", NewFrontend("a")));
        for (var i = 0; i < 3; i++)
        {
            await room.Publish(PublishOf("alice", "{}"));
        }

        var second = await room.Join(JoinOf("c2", "bob", NewFrontend("b")));

        Assert.Equal(3, second.Seq);
        Assert.Equal(first.Epoch, second.Epoch);
    }

    [Fact]
    public async Task Publish_MemberFrontend_ReceivesEventsInVersionOrderWithMessageUnchanged()
    {
        var key = NewKey();
        var room = Room(key);
        var frontend = NewFrontend("a");
        var join = await room.Join(JoinOf("c1", "alice", frontend));
        byte[][] payloads =
        [
            Json("{\"text\":\"héllo ✓\",\"n\":1}"),
            Json("[1,2,3]"),
            Json("\"just a string\""),
            Json("{\"nested\":{\"a\":[null,true,false,1.5e3]}}"),
        ];
        string[] senders = ["alice", "bob", "alice", "carol"];
        var seqs = new List<long>();
        for (var i = 0; i < payloads.Length; i++)
        {
            seqs.Add((await room.Publish(new PublishRequest(senders[i], payloads[i], null, Policy()))).Seq);
        }

        await frontend.WaitForMessagesAsync(key, payloads.Length);

        var deliveries = frontend.RoomDeliveries(key);
        Assert.All(deliveries, d =>
        {
            Assert.Equal("chat", d.Namespace);
            Assert.Equal(GrainKeys.Split(key).Name, d.Room);
            Assert.Equal(join.Epoch, d.Epoch);
        });

        // The joiner's own MemberJoined carries the join's version; everything after it follows contiguously.
        var events = frontend.RoomEvents(key);
        Assert.Equal(RoomEventKind.MemberJoined, events[0].Kind);
        Assert.Equal("alice", events[0].User);
        Assert.Equal(join.Version, events[0].Version);
        Assert.Equal(Enumerable.Range(0, events.Count).Select(i => join.Version + i), events.Select(e => e.Version));

        var messages = frontend.RoomMessages(key);
        Assert.Equal(seqs, messages.Select(m => m.Seq));
        for (var i = 0; i < payloads.Length; i++)
        {
            Assert.Equal(senders[i], messages[i].From);
            Assert.Equal(senders[i], events.Single(e => e.Message?.Seq == seqs[i]).User);
            Assert.Equal(payloads[i], messages[i].Payload);
            Assert.True(messages[i].Timestamp > 0);
        }
    }

    [Fact]
    public async Task PublishBatch_WithRepeatedMsgIds_ConsecutiveSeqsInOrderDuplicatesGetTheFirstSeq()
    {
        var key = NewKey();
        var room = Room(key);
        var frontend = NewFrontend("a");
        await room.Join(JoinOf("c1", "alice", frontend));
        var first = await room.Publish(PublishOf("alice", "{\"n\":0}", msgId: "m0"));

        var results = await room.PublishBatch(new PublishBatchRequest(
            "alice",
            [Batched("{\"n\":1}", "m1"), Batched("{\"n\":0}", "m0"), Batched("{\"n\":2}", null), Batched("{\"n\":1}", "m1"), Batched("{\"n\":3}", "m3")],
            Policy()));

        Assert.Equal([2L, first.Seq, 3, 2, 4], results.Select(r => r.Seq));
        Assert.Equal([false, true, false, true, false], results.Select(r => r.Duplicate));
        Assert.All(results, r => Assert.Equal(first.Epoch, r.Epoch));
        await frontend.WaitForSeqAsync(key, 4);
        var messages = frontend.RoomMessages(key);
        Assert.Equal([1L, 2, 3, 4], messages.Select(m => m.Seq));
        Assert.Equal(["{\"n\":0}", "{\"n\":1}", "{\"n\":2}", "{\"n\":3}"], messages.Select(m => System.Text.Encoding.UTF8.GetString(m.Payload)));

        // The same msgIds in a later batch (or alone): the first seqs, nothing new.
        var again = await room.PublishBatch(new PublishBatchRequest("alice", [Batched("{}", "m3"), Batched("{}", "m0")], Policy()));
        Assert.Equal([4L, 1], again.Select(r => r.Seq));
        Assert.All(again, r => Assert.True(r.Duplicate));

        // Another user's msgIds are their own.
        var bob = await room.PublishBatch(new PublishBatchRequest("bob", [Batched("{}", "m0"), Batched("{}", "m0")], Policy()));
        Assert.Equal([5L, 5], bob.Select(r => r.Seq));
        Assert.Equal([false, true], bob.Select(r => r.Duplicate));
    }

    private static BatchedPublish Batched(string json, string? msgId) => new(Json(json), msgId);

    [Fact]
    public async Task Publish_ByMember_PublisherFrontendReceivesOwnMessage()
    {
        var key = NewKey();
        var room = Room(key);
        var publisherFrontend = NewFrontend("publisher");
        var otherFrontend = NewFrontend("other");
        await room.Join(JoinOf("c1", "alice", publisherFrontend));
        await room.Join(JoinOf("c2", "bob", otherFrontend));

        var result = await room.Publish(PublishOf("alice", "{\"mine\":true}"));

        await publisherFrontend.WaitForSeqAsync(key, result.Seq);
        await otherFrontend.WaitForSeqAsync(key, result.Seq);
        var own = Assert.Single(publisherFrontend.RoomMessages(key));
        Assert.Equal("alice", own.From);
        Assert.Equal(Json("{\"mine\":true}"), own.Payload);
    }

    [Fact]
    public async Task Publish_500Concurrent_DistinctSeqsAndEveryFrontendReceivesEachOnceInOrder()
    {
        const int count = 500;
        var key = NewKey();
        var room = Room(key);
        var frontends = new[] { NewFrontend("a"), NewFrontend("b"), NewFrontend("c") };
        for (var i = 0; i < frontends.Length; i++)
        {
            await room.Join(JoinOf($"c{i}", $"member{i}", frontends[i]));
        }

        var payloads = Enumerable.Range(0, count).Select(i => Json($"{{\"i\":{i}}}")).ToArray();
        var results = await Task.WhenAll(payloads.Select((p, i) =>
            room.Publish(new PublishRequest($"user{i % 7}", p, null, Policy()))));

        Assert.Equal(Enumerable.Range(1, count).Select(i => (long)i), results.Select(r => r.Seq).Order());
        Assert.Single(results.Select(r => r.Epoch).Distinct());
        Assert.All(results, r => Assert.False(r.Duplicate));

        var barrier = await BarrierAsync(room, key, Policy(), frontends);
        Assert.Equal(count + 1, barrier);
        foreach (var frontend in frontends)
        {
            var messages = frontend.RoomMessages(key);
            Assert.Equal(Enumerable.Range(1, count + 1).Select(i => (long)i), messages.Select(m => m.Seq));
            for (var i = 0; i < count; i++)
            {
                var message = messages[(int)results[i].Seq - 1];
                Assert.Equal(payloads[i], message.Payload);
                Assert.Equal($"user{i % 7}", message.From);
            }

            var versions = frontend.RoomEvents(key).Select(e => e.Version).ToList();
            Assert.Equal(versions.Order(), versions);
            Assert.Equal(versions.Count, versions.Distinct().Count());
        }
    }

    [Fact]
    public async Task Publish_SameMsgIdSameUser_ReturnsFirstSeqAsDuplicateAndDeliversOnce()
    {
        var key = NewKey();
        var room = Room(key);
        var frontend = NewFrontend("a");
        await room.Join(JoinOf("c1", "alice", frontend));

        var first = await room.Publish(PublishOf("alice", "{\"v\":1}", msgId: "m-1"));
        var retry = await room.Publish(PublishOf("alice", "{\"v\":1}", msgId: "m-1"));
        var barrier = await BarrierAsync(room, key, Policy(), frontend);

        Assert.False(first.Duplicate);
        Assert.True(retry.Duplicate);
        Assert.Equal(first.Seq, retry.Seq);
        Assert.Equal(first.Epoch, retry.Epoch);
        Assert.Equal(first.Seq + 1, barrier);
        Assert.Equal([first.Seq, barrier], frontend.RoomMessages(key).Select(m => m.Seq));
        Assert.Single((await room.GetHistory(null, 100, int.MaxValue)).Messages, m => m.From == "alice");
    }

    [Fact]
    public async Task Publish_SameMsgIdOtherUser_IsADifferentMessage()
    {
        var key = NewKey();
        var room = Room(key);
        var frontend = NewFrontend("a");
        await room.Join(JoinOf("c1", "alice", frontend));

        var fromAlice = await room.Publish(PublishOf("alice", "{\"v\":\"a\"}", msgId: "same"));
        var fromBob = await room.Publish(PublishOf("bob", "{\"v\":\"b\"}", msgId: "same"));
        await frontend.WaitForSeqAsync(key, fromBob.Seq);

        Assert.False(fromAlice.Duplicate);
        Assert.False(fromBob.Duplicate);
        Assert.Equal(fromAlice.Seq + 1, fromBob.Seq);
        Assert.Equal(["alice", "bob"], frontend.RoomMessages(key).Select(m => m.From));
    }

    [Fact]
    public async Task Publish_UserAndMsgIdSplitElsewhere_IsADifferentMessage()
    {
        // "a\nb" + "c" and "a" + "b\nc" joined with a newline are the same string: the dedupe key
        // must tell the two publishers apart, or the second is acked as the first and never sent.
        var key = NewKey();
        var room = Room(key);
        var frontend = NewFrontend("a");
        await room.Join(JoinOf("c1", "alice", frontend));

        var first = await room.Publish(PublishOf("a\nb", "{\"v\":1}", msgId: "c"));
        var second = await room.Publish(PublishOf("a", "{\"v\":2}", msgId: "b\nc"));
        await frontend.WaitForSeqAsync(key, second.Seq);

        Assert.False(second.Duplicate);
        Assert.Equal(first.Seq + 1, second.Seq);
        Assert.Equal(["a\nb", "a"], frontend.RoomMessages(key).Select(m => m.From));
    }
}
