using System.Text;
using Broker.Grains.Models;
using Broker.Grains.Streams;
using Broker.Grains.Tests.Infrastructure;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Logging;

namespace Broker.Grains.Tests.Streams;

/// <summary>
/// Rooms with Stream on, heard by real subscriber grains over the real memory stream provider
/// (docs/streams.md, "Ordering and delivery guarantees"): every committed message once, in seq
/// order, as the front-ends received it; member events between them; nothing with Stream off.
/// </summary>
[Collection(StreamClusterCollection.Name)]
public sealed class RoomStreamTests(StreamClusterFixture fixture) : GrainTestBase(fixture.Client)
{
    private static RoomPolicy StreamPolicy(bool presence = true, bool stream = true) => new(100, presence, Stream: stream);

    private static string NewRoom() => $"room-{Guid.NewGuid():N}";

    [Fact]
    public async Task Publish_StreamOn_ImplicitSubscriberHearsEveryCommittedMessageOnceInOrder()
    {
        var room = NewRoom();
        var key = GrainKeys.Of(StreamRecordings.Namespace, room);
        var grain = Room(key);
        var frontend = NewFrontend("a");
        var policy = StreamPolicy();
        await grain.Join(JoinOf("c1", "alice", frontend, policy));

        var results = new List<PublishResult>();
        for (var i = 1; i <= 30; i++)
        {
            results.Add(await grain.Publish(PublishOf("alice", $"{{\"n\":{i}}}", policy, msgId: $"m{i}")));
        }

        var heard = StreamRecordings.Implicit(StreamRecordings.Namespace, room);
        await heard.WaitForSeqAsync(results[^1].Seq);
        await frontend.WaitForSeqAsync(key, results[^1].Seq);

        var messages = heard.Messages;
        Assert.Equal(results.Select(r => r.Seq), messages.Select(m => m.Seq));
        var delivered = frontend.RoomMessages(key);
        for (var i = 0; i < results.Count; i++)
        {
            var item = messages[i];
            Assert.Equal(results[i].Epoch, item.Epoch);
            Assert.Equal(StreamRecordings.Namespace, item.Namespace);
            Assert.Equal(room, item.Room);
            Assert.Equal("alice", item.User);
            Assert.Equal($"{{\"n\":{i + 1}}}", item.DataJson);
            Assert.Equal($"m{i + 1}", item.MsgId);

            // As the clients saw it: same seq, sender, timestamp and bytes.
            Assert.Equal(delivered[i].Seq, item.Seq);
            Assert.Equal(delivered[i].From, item.User);
            Assert.Equal(delivered[i].Timestamp, item.Timestamp);
            Assert.Equal(delivered[i].Payload, item.Data);
        }

        // The join came first: nothing else was produced.
        var first = Assert.Single(heard.Items, i => i.Kind != RoomStreamItemKind.Message);
        Assert.Equal(RoomStreamItemKind.MemberJoined, first.Kind);
        Assert.Same(first, heard.Items[0]);
    }

    [Fact]
    public async Task Publish_ConcurrentlyFromTwoFrontends_BothSubscribersHearEachCommitOnceInSeqOrderAsFrontendsDid()
    {
        const int PerFrontend = 150;
        var room = NewRoom();
        var key = GrainKeys.Of(StreamRecordings.Namespace, room);
        var policy = StreamPolicy();
        await Client.GetGrain<IExplicitRoomRecorderGrain>(key).Subscribe();

        // Two front-end processes: two Orleans clients, each with its own delivery observer and member.
        using var secondHost = await fixture.NewClientAsync();
        var secondClient = secondHost.Services.GetRequiredService<IClusterClient>();
        var frontendA = NewFrontend("a");
        var frontendB = new RecordingFrontend($"fe-b-{Guid.NewGuid():N}");
        frontendB.Reference = secondClient.CreateObjectReference<IFrontendObserver>(frontendB);
        await secondClient.GetGrain<IFrontendRegistryGrain>(IFrontendRegistryGrain.Key).Renew(new FrontendLease(frontendB.Id, frontendB.Reference, TimeSpan.FromHours(1), KnownFrontends: 0));
        try
        {
            var roomA = Client.GetGrain<IRoomGrain>(key);
            var roomB = secondClient.GetGrain<IRoomGrain>(key);
            await roomA.Join(JoinOf("ca", "alice", frontendA, policy));
            await roomB.Join(JoinOf("cb", "bob", frontendB, policy));

            var sent = new List<(string From, string Data, string MsgId)>();
            var pending = new List<Task<PublishResult>>();
            for (var i = 0; i < PerFrontend; i++)
            {
                var a = $"{{\"from\":\"a\",\"i\":{i}}}";
                var b = $"{{\"from\":\"b\",\"i\":{i}}}";
                sent.Add(("alice", a, $"a{i}"));
                pending.Add(roomA.Publish(PublishOf("alice", a, policy, $"a{i}")));
                sent.Add(("bob", b, $"b{i}"));
                pending.Add(roomB.Publish(PublishOf("bob", b, policy, $"b{i}")));
            }

            var results = await Task.WhenAll(pending);
            Assert.Equal(Enumerable.Range(1, 2 * PerFrontend).Select(i => (long)i), results.Select(r => r.Seq).Order());
            var last = results.Max(r => r.Seq);

            var implicitHeard = StreamRecordings.Implicit(StreamRecordings.Namespace, room);
            var explicitHeard = StreamRecordings.Explicit(StreamRecordings.Namespace, room);
            await implicitHeard.WaitForSeqAsync(last);
            await explicitHeard.WaitForSeqAsync(last);
            await frontendA.WaitForSeqAsync(key, last);
            await frontendB.WaitForSeqAsync(key, last);

            var bySeq = results.Select((r, i) => (Result: r, Sent: sent[i])).ToDictionary(p => p.Result.Seq);
            foreach (var heard in new[] { implicitHeard, explicitHeard })
            {
                var messages = heard.Messages;

                // Exactly once each, in seq order: 1, 2, … 300.
                Assert.Equal(Enumerable.Range(1, 2 * PerFrontend).Select(i => (long)i), messages.Select(m => m.Seq));
                foreach (var item in messages)
                {
                    var publish = bySeq[item.Seq];
                    Assert.Equal(publish.Result.Epoch, item.Epoch);
                    Assert.Equal(publish.Sent.From, item.User);
                    Assert.Equal(publish.Sent.Data, item.DataJson);
                    Assert.Equal(publish.Sent.MsgId, item.MsgId);
                }

                // The subscribers' view is each front-end's view.
                foreach (var frontend in new[] { frontendA, frontendB })
                {
                    var delivered = frontend.RoomMessages(key);
                    Assert.Equal(delivered.Select(m => (m.Seq, m.From, m.Timestamp, Encoding.UTF8.GetString(m.Payload))), messages.Select(m => (m.Seq, m.User, m.Timestamp, m.DataJson!)));
                }
            }

            Assert.Equal(implicitHeard.Items.Select(i => (i.Kind, i.Seq, i.User)), explicitHeard.Items.Select(i => (i.Kind, i.Seq, i.User)));
        }
        finally
        {
            await secondClient.GetGrain<IFrontendRegistryGrain>(IFrontendRegistryGrain.Key).Leave(frontendB.Id);
            await secondHost.StopAsync();
        }
    }

    [Theory]
    [InlineData(true)]
    [InlineData(false)]
    public async Task Members_JoinAndLeave_ProducedInOrderBetweenMessagesWhateverPresence(bool presence)
    {
        using var produced = new BrokerCounter("broker.stream.items.produced", "kind");
        var room = NewRoom();
        var key = GrainKeys.Of(StreamRecordings.Namespace, room);
        var grain = Room(key);
        var frontend = NewFrontend("a");
        var policy = StreamPolicy(presence);

        await grain.Join(JoinOf("alice-1", "alice", frontend, policy));
        await grain.Publish(PublishOf("alice", "1", policy));
        await grain.Join(JoinOf("alice-2", "alice", frontend, policy)); // a second tab: no join
        await grain.Join(JoinOf("bob-1", "bob", frontend, policy));
        await grain.Publish(PublishOf("bob", "2", policy));
        await grain.Leave("alice-1"); // alice is still there
        await grain.Leave("alice-2");
        var last = await grain.Publish(PublishOf("bob", "3", policy));

        var heard = StreamRecordings.Implicit(StreamRecordings.Namespace, room);
        await heard.WaitForSeqAsync(last.Seq);
        var expected = new[]
        {
            (RoomStreamItemKind.MemberJoined, 0L, "alice"),
            (RoomStreamItemKind.Message, 1L, "alice"),
            (RoomStreamItemKind.MemberJoined, 1L, "bob"),
            (RoomStreamItemKind.Message, 2L, "bob"),
            (RoomStreamItemKind.MemberLeft, 2L, "alice"),
            (RoomStreamItemKind.Message, 3L, "bob"),
        };
        Assert.Equal(expected, heard.Items.Select(i => (i.Kind, i.Seq, i.User)));

        // Counted by kind (other tests' rooms count too: at least these).
        await produced.WaitForAsync("message", 3);
        await produced.WaitForAsync("member_joined", 2);
        await produced.WaitForAsync("member_left", 1);
        Assert.All(heard.Items.Where(i => i.Kind != RoomStreamItemKind.Message), i =>
        {
            Assert.Null(i.Data);
            Assert.Equal(last.Epoch, i.Epoch);
            Assert.True(i.Timestamp > 0);
        });

        if (presence)
        {
            // The clients saw the same events in the same order.
            await frontend.WaitForSeqAsync(key, last.Seq);
            Assert.Equal(
                expected.Select(e => (e.Item1.ToString(), e.Item3)),
                frontend.RoomEvents(key).Select(e => (e.Kind.ToString(), e.User)));
        }
    }

    [Fact]
    public async Task Join_ThatActivatesTheRoom_ProducedThoughTheRebuildFoundItButRebuiltMembersAreNot()
    {
        var room = NewRoom();
        var key = GrainKeys.Of(StreamRecordings.Namespace, room);
        var frontend = NewFrontend("a");
        await Client.GetGrain<IFrontendRegistryGrain>(IFrontendRegistryGrain.Key).Renew(new FrontendLease(frontend.Id, frontend.Reference, TimeSpan.FromHours(1), KnownFrontends: 0));

        // As a real front-end does, the joining connection is registered before the room is
        // asked, so the new activation finds it among the members; carol was there all along.
        frontend.RoomMembers[key] = [new RoomMemberRef("alice-1", "alice"), new RoomMemberRef("carol-1", "carol")];
        var policy = StreamPolicy();
        await Room(key).Join(JoinOf("alice-1", "alice", frontend, policy));
        var last = await Room(key).Publish(PublishOf("alice", "1", policy));

        var heard = StreamRecordings.Implicit(StreamRecordings.Namespace, room);
        await heard.WaitForSeqAsync(last.Seq);
        Assert.Equal(
            new[] { (RoomStreamItemKind.MemberJoined, "alice"), (RoomStreamItemKind.Message, "alice") },
            heard.Items.Select(i => (i.Kind, i.User)));
    }

    [Fact]
    public async Task Publish_StreamOff_ProducesNothing()
    {
        var room = NewRoom();
        var key = GrainKeys.Of(StreamRecordings.Namespace, room);
        var grain = Room(key);
        var frontend = NewFrontend("a");
        var off = StreamPolicy(stream: false);
        await grain.Join(JoinOf("c1", "alice", frontend, off));
        for (var i = 0; i < 3; i++)
        {
            await grain.Publish(PublishOf("alice", "\"off\"", off));
        }

        // A front-end that turns Stream on: its publish is the first item. Items of a room come
        // in the room's order, so had anything been produced before, it would be heard first.
        var on = await grain.Publish(PublishOf("alice", "\"on\"", StreamPolicy()));
        var heard = StreamRecordings.Implicit(StreamRecordings.Namespace, room);
        await heard.WaitForSeqAsync(on.Seq);

        var item = Assert.Single(heard.Items);
        Assert.Equal(4, item.Seq);
        Assert.Equal("\"on\"", item.DataJson);
    }

    [Fact]
    public async Task Publish_DuplicateMsgId_ProducedOnce()
    {
        var room = NewRoom();
        var key = GrainKeys.Of(StreamRecordings.Namespace, room);
        var grain = Room(key);
        var policy = StreamPolicy();

        var first = await grain.Publish(PublishOf("server:test", "\"once\"", policy, "same"));
        var retry = await grain.Publish(PublishOf("server:test", "\"once\"", policy, "same"));
        var next = await grain.Publish(PublishOf("server:test", "\"next\"", policy, "other"));

        Assert.True(retry.Duplicate);
        Assert.Equal(first.Seq, retry.Seq);
        var heard = StreamRecordings.Implicit(StreamRecordings.Namespace, room);
        await heard.WaitForSeqAsync(next.Seq);
        Assert.Equal(new[] { (first.Seq, "same"), (next.Seq, "other") }, heard.Items.Select(i => (i.Seq, i.MsgId!)));
    }

    [Fact]
    public async Task Publish_RoomThatLetsGoAtOnce_ProducesItsItemsBeforeItGoes()
    {
        var room = NewRoom();
        var key = GrainKeys.Of(StreamRecordings.Namespace, room);

        // No members, no history, no msgId: the room holds nothing and lets go after the call.
        var policy = new RoomPolicy(0, true, EmptyRoomTimeout: TimeSpan.Zero, Stream: true);
        var results = new List<PublishResult>();
        for (var i = 0; i < 5; i++)
        {
            results.Add(await Room(key).Publish(PublishOf("server:test", $"{i}", policy)));
        }

        var heard = StreamRecordings.Implicit(StreamRecordings.Namespace, room);
        await heard.WaitUntilAsync(items => items.Count >= results.Count, $"{results.Count} items");
        Assert.Equal(results.Select(r => (r.Epoch, r.Seq)), heard.Items.Select(i => (i.Epoch, i.Seq)));
        await Activations.WaitUntilGoneAsync(Client, Room(key), "the room");
    }

    [Fact]
    public async Task Outbox_MoreItemsThanItsBound_DropsTheRestAndCountsThem()
    {
        using var dropped = new BrokerCounter("broker.stream.items.dropped", "reason");
        var room = NewRoom();
        const int Extra = 7;

        var count = await Client.GetGrain<IStreamOutboxProbeGrain>(GrainKeys.Of(StreamRecordings.Namespace, room)).Burst(RoomStreamOutbox.MaxItems + Extra, dataBytes: 1);

        Assert.Equal(Extra, count);
        await dropped.WaitForAsync("full", Extra);
        var heard = StreamRecordings.Implicit(StreamRecordings.Namespace, room);
        await heard.WaitForSeqAsync(RoomStreamOutbox.MaxItems);
        Assert.Equal(Enumerable.Range(1, RoomStreamOutbox.MaxItems).Select(i => (long)i), heard.Items.Select(i => i.Seq));
    }

    [Fact]
    public async Task Outbox_MoreBytesThanItsBound_DropsTheRestAndCountsThem()
    {
        using var dropped = new BrokerCounter("broker.stream.items.dropped", "reason");
        var room = NewRoom();
        const int DataBytes = 64 * 1024;
        var size = RoomStreamOutbox.SizeOf(StreamOutboxProbeGrain.Item(StreamRecordings.Namespace, room, 1, new byte[DataBytes]));
        var fits = (int)(RoomStreamOutbox.MaxBytes / size);

        var count = await Client.GetGrain<IStreamOutboxProbeGrain>(GrainKeys.Of(StreamRecordings.Namespace, room)).Burst(fits + 10, DataBytes);

        Assert.Equal(10, count);
        await dropped.WaitForAsync("full", 10);
        var heard = StreamRecordings.Implicit(StreamRecordings.Namespace, room);
        await heard.WaitForSeqAsync(fits);
        Assert.Equal(Enumerable.Range(1, fits).Select(i => (long)i), heard.Items.Select(i => i.Seq));
        Assert.All(heard.Items, i => Assert.Equal(DataBytes, i.Data!.Length));
    }

    [Fact]
    public async Task Outbox_ProducingKeepsFailing_DropsEveryItemWithOneWarning()
    {
        var room = NewRoom();
        var probe = Client.GetGrain<IStreamOutboxProbeGrain>(GrainKeys.Of(StreamRecordings.Namespace, room));

        // Three separate bursts, the outbox empty in between: still one episode, as nothing got through.
        Assert.Equal(2, await probe.BurstToMissingProvider(2));
        Assert.Equal(4, await probe.BurstToMissingProvider(2));
        Assert.Equal(6, await probe.BurstToMissingProvider(2));

        var logs = StreamOutboxProbeGrain.Logs[room].ToList();
        Assert.Equal(new[] { (2010, LogLevel.Warning) }, logs.Where(l => l.Level >= LogLevel.Information));
    }

    [Fact]
    public async Task Outbox_ItemLargerThanAStreamMessage_DroppedAndCounted()
    {
        using var dropped = new BrokerCounter("broker.stream.items.dropped", "reason");
        var room = NewRoom();

        var count = await Client.GetGrain<IStreamOutboxProbeGrain>(GrainKeys.Of(StreamRecordings.Namespace, room)).Burst(1, RoomStreamOutbox.MaxItemBytes);

        Assert.Equal(1, count);
        await dropped.WaitForAsync("too_large", 1);
    }
}
