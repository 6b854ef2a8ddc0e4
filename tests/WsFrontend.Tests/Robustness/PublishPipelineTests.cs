using System.Text.Json;
using Broker.Frontend.Connections;
using Broker.Frontend.Tests.Infrastructure;
using Broker.Grains;
using Broker.Grains.Tests.Infrastructure;

namespace Broker.Frontend.Tests.Robustness;

/// <summary>A broker with the memory store and one with a real Redis store, for <see cref="PublishPipelineTests"/>.</summary>
public sealed class PipelineFixture : IAsyncLifetime
{
    public BrokerServer Memory { get; private set; } = null!;

    public RedisServer Redis { get; private set; } = null!;

    public BrokerServer Durable { get; private set; } = null!;

    public BrokerServer Server(string store) => store == "redis" ? Durable : Memory;

    public async Task InitializeAsync()
    {
        Memory = await BrokerServer.StartAsync();
        Redis = await RedisServer.StartAsync();
        Durable = await BrokerServer.StartAsync(new Dictionary<string, string?> { ["Broker:Embedded:StoreRedis"] = Redis.Endpoint });
    }

    public async Task DisposeAsync()
    {
        await Durable.DisposeAsync();
        await Memory.DisposeAsync();
        await Redis.DisposeAsync();
    }
}

/// <summary>
/// A connection's publishes in flight (Broker:MaxPublishesInFlight, <see cref="PublishPipeline"/>):
/// replies in frame order, each room's messages in the order sent, every other frame after the
/// publishes before it, refusals in their place, msgId duplicates acked with the first seq, and
/// the bound held when the room does not answer.
/// </summary>
public sealed class PublishPipelineTests(PipelineFixture fixture) : IClassFixture<PipelineFixture>
{
    private static readonly TimeSpan Timeout = TimeSpan.FromSeconds(20);

    [Theory]
    [InlineData("memory")]
    [InlineData("redis")]
    public async Task Publish_200WithoutWaiting_AcksInFrameOrderWithConsecutiveSeqsAndMembersSeeThemInOrder(string store)
    {
        const int count = 200;
        var server = fixture.Server(store);
        var room = BrokerFixture.UniqueRoom("pipe-" + store);
        await using var publisher = await server.ConnectAsync("/chat?user=pipe-pub");
        await using var first = await server.ConnectAsync("/chat?user=pipe-m1");
        await using var second = await server.ConnectAsync("/chat?user=pipe-m2");
        foreach (var client in new[] { publisher, first, second })
        {
            Assert.Equal("joined", Frame.Type(await client.JoinAsync(room)));
        }

        var commitsBefore = store == "redis" ? await fixture.Redis.CommitCountAsync() : 0;
        var frames = string.Join('\n', Enumerable.Range(0, count).Select(n => JsonSerializer.Serialize(new { type = "publish", id = n, room, data = n })));
        foreach (var frame in frames.Split('\n'))
        {
            await publisher.SendTextAsync(frame);
        }

        var atPublisher = await publisher.CollectAsync(f => f.Count(x => Frame.Is(x, "ack")) >= count, Timeout, "publisher");
        var acks = atPublisher.Where(f => Frame.Is(f, "ack") || Frame.Is(f, "error")).ToList();

        // The n-th reply answers the n-th frame, with seq n+1.
        Assert.Equal(Enumerable.Range(0, count), acks.Select(a => a.GetProperty("id").GetInt32()));
        Assert.Equal(Enumerable.Range(1, count).Select(i => (long)i), acks.Select(a => a.GetProperty("seq").GetInt64()));
        foreach (var member in new[] { first, second })
        {
            var got = await member.CollectAsync(f => f.Count(x => Frame.IsMessageIn(x, room)) >= count, Timeout, member.User);
            var messages = got.Where(f => Frame.IsMessageIn(f, room)).ToList();
            Assert.Equal(Enumerable.Range(0, count), messages.Select(m => m.GetProperty("data").GetInt32()));
            Assert.Equal(Enumerable.Range(1, count).Select(i => (long)i), messages.Select(m => m.GetProperty("seq").GetInt64()));
        }

        if (store == "redis")
        {
            // Pipelined: the publishes that queued behind a commit went together, far fewer
            // commits than messages (one at a time would take one commit each).
            var commits = await fixture.Redis.CommitCountAsync() - commitsBefore;
            Assert.True(commits < count / 2, $"{commits} commits for {count} pipelined publishes.");
        }
    }

    [Theory]
    [InlineData("memory")]
    [InlineData("redis")]
    public async Task Pipeline_TwoRoomsWithLeaveAndJoinBetween_RepliesInFrameOrderAndTheLeaveAfterThePublishesBeforeIt(string store)
    {
        var server = fixture.Server(store);
        var a = BrokerFixture.UniqueRoom("pipe-a");
        var b = BrokerFixture.UniqueRoom("pipe-b");
        await using var publisher = await server.ConnectAsync("/chat?user=pipe-two");
        await using var watcherA = await server.ConnectAsync("/chat?user=pipe-wa");
        await using var watcherB = await server.ConnectAsync("/chat?user=pipe-wb");
        await publisher.JoinAsync(a);
        await publisher.JoinAsync(b);
        await watcherA.JoinAsync(a);
        await watcherB.JoinAsync(b);

        // Expected replies, in frame order: (id, type, room, seq or error code).
        var sent = new List<(int Id, string Type, string Room, string Expect)>();
        var seqA = 0;
        var seqB = 0;
        var id = 0;
        var inA = true;
        async Task Publish(string room)
        {
            var member = room != a || inA;
            var expect = member ? (room == a ? ++seqA : ++seqB).ToString(System.Globalization.CultureInfo.InvariantCulture) : "not_member";
            sent.Add((id, "publish", room, expect));
            await publisher.SendAsync(new { type = "publish", id = id++, room, data = new { room = room == a ? "a" : "b", n = id } });
        }

        async Task Other(string type, string room)
        {
            sent.Add((id, type, room, type == "leave" ? "left" : "joined"));
            inA = type == "join";
            await publisher.SendAsync(new { type, id = id++, room });
        }

        for (var n = 0; n < 40; n++)
        {
            await Publish(n % 2 == 0 ? a : b);
        }

        await Other("leave", a);
        await Publish(a);
        for (var n = 0; n < 10; n++)
        {
            await Publish(b);
        }

        await Other("join", a);
        for (var n = 0; n < 10; n++)
        {
            await Publish(a);
            await Publish(b);
        }

        var got = await publisher.CollectAsync(f => f.Count(IsReply) >= sent.Count, Timeout, "publisher");
        var replies = got.Where(IsReply).ToList();
        Assert.Equal(sent.Select(s => s.Id), replies.Select(r => r.GetProperty("id").GetInt32()));
        for (var i = 0; i < sent.Count; i++)
        {
            var (_, type, _, expect) = sent[i];
            var reply = replies[i];
            switch (type)
            {
                case "publish" when expect == "not_member":
                    Assert.Equal("not_member", Frame.Code(reply));
                    break;
                case "publish":
                    Assert.Equal("ack", Frame.Type(reply));
                    Assert.Equal(long.Parse(expect, System.Globalization.CultureInfo.InvariantCulture), reply.GetProperty("seq").GetInt64());
                    break;
                default:
                    Assert.Equal(expect, Frame.Type(reply));
                    break;
            }
        }

        // Room a's member saw the publisher's first 20 messages, then it leave, then it come
        // back, then its last 10: the leave was ordered after the publishes sent before it.
        var atA = await watcherA.CollectAsync(f => f.Count(x => Frame.IsMessageIn(x, a)) >= seqA, Timeout, "watcher a");
        var story = atA.Where(f => Frame.IsMessageIn(f, a) || ((Frame.Is(f, "member_left") || Frame.Is(f, "member_joined")) && f.GetProperty("user").GetString() == publisher.User))
            .Select(f => Frame.IsMessageIn(f, a) ? "m" + f.GetProperty("seq").GetInt64() : Frame.Type(f))
            .ToList();
        var expected = Enumerable.Range(1, 20).Select(i => "m" + i).Append("member_left").Append("member_joined").Concat(Enumerable.Range(21, 10).Select(i => "m" + i));
        Assert.Equal(expected, story);

        var atB = await watcherB.CollectAsync(f => f.Count(x => Frame.IsMessageIn(x, b)) >= seqB, Timeout, "watcher b");
        Assert.Equal(Enumerable.Range(1, seqB).Select(i => (long)i), atB.Where(f => Frame.IsMessageIn(f, b)).Select(f => f.GetProperty("seq").GetInt64()));

        static bool IsReply(JsonElement f) => f.TryGetProperty("id", out _) && (Frame.Is(f, "ack") || Frame.Is(f, "error") || Frame.Is(f, "left") || Frame.Is(f, "joined"));
    }

    [Theory]
    [InlineData("memory")]
    [InlineData("redis")]
    public async Task Pipeline_RefusedPublishInTheMiddle_ErrorInItsPlaceAndTheOthersGoThrough(string store)
    {
        var server = fixture.Server(store);
        var joined = BrokerFixture.UniqueRoom("pipe-in");
        var other = BrokerFixture.UniqueRoom("pipe-out");
        await using var publisher = await server.ConnectAsync("/chat?user=pipe-refused");
        await publisher.JoinAsync(joined);

        for (var n = 0; n < 30; n++)
        {
            await publisher.SendAsync(new { type = "publish", id = n, room = n == 15 ? other : joined, data = n });
        }

        var got = await publisher.CollectAsync(f => f.Count(x => x.TryGetProperty("id", out _)) >= 30, Timeout, "publisher");
        var replies = got.Where(f => f.TryGetProperty("id", out _)).ToList();
        Assert.Equal(Enumerable.Range(0, 30), replies.Select(r => r.GetProperty("id").GetInt32()));
        Assert.Equal("not_member", Frame.Code(replies[15]));
        var acks = replies.Where((_, i) => i != 15).ToList();
        Assert.All(acks, ack => Assert.Equal("ack", Frame.Type(ack)));
        Assert.Equal(Enumerable.Range(1, 29).Select(i => (long)i), acks.Select(ack => ack.GetProperty("seq").GetInt64()));
    }

    /// <summary>
    /// Bad frames among pipelined publishes (a publish without a room, a frame that is not JSON,
    /// an unknown type): each gets its error in its place, the publishes around them are acked
    /// in order with consecutive seqs, and the connection stays open.
    /// </summary>
    [Fact]
    public async Task Pipeline_BadFramesInTheMiddle_ErrorsInTheirPlaceAndTheConnectionGoesOn()
    {
        var server = fixture.Server("memory");
        var room = BrokerFixture.UniqueRoom("pipe-bad");
        await using var publisher = await server.ConnectAsync("/chat?user=pipe-bad");
        await publisher.JoinAsync(room);

        for (var n = 0; n < 30; n++)
        {
            switch (n)
            {
                case 10:
                    await publisher.SendAsync(new { type = "publish", id = n, data = n });
                    break;
                case 20:
                    await publisher.SendAsync(new { type = "nonsense", id = n });
                    break;
                default:
                    await publisher.SendAsync(new { type = "publish", id = n, room, data = n });
                    break;
            }
        }

        await publisher.SendTextAsync("{not json");
        await publisher.SendAsync(new { type = "publish", id = 30, room, data = 30 });

        var got = await publisher.CollectAsync(f => f.Any(x => x.TryGetProperty("id", out var id) && id.ValueKind == JsonValueKind.Number && id.GetInt32() == 30), Timeout, "publisher");
        var replies = got.Where(f => Frame.Is(f, "ack") || Frame.Is(f, "error")).ToList();
        Assert.Equal(32, replies.Count);
        Assert.Equal("bad_request", Frame.Code(replies[10]));
        Assert.Equal("unknown_type", Frame.Code(replies[20]));
        Assert.Equal("bad_request", Frame.Code(replies[30]));
        var acks = replies.Where(r => Frame.Is(r, "ack")).ToList();
        Assert.Equal(Enumerable.Range(0, 31).Where(n => n is not 10 and not 20), acks.Select(a => a.GetProperty("id").GetInt32()));
        Assert.Equal(Enumerable.Range(1, 29).Select(i => (long)i), acks.Select(a => a.GetProperty("seq").GetInt64()));
        Assert.False(publisher.Closed.IsCompleted);
    }

    /// <summary>
    /// With Redis frozen the room cannot commit: the first publish's call waits, the next ones
    /// queue behind it in the pipeline, and once MaxPublishesInFlight are unanswered the
    /// connection is not read any more. Once Redis answers, everything is acked in order.
    /// </summary>
    [Fact]
    public async Task Pipeline_RoomDoesNotAnswer_HeldAtMaxPublishesInFlightThenAllAckedInOrder()
    {
        const int bound = 8;
        const int count = 40;
        await using var server = await BrokerServer.StartAsync(new Dictionary<string, string?>
        {
            ["Broker:Embedded:StoreRedis"] = fixture.Redis.Endpoint,
            ["Broker:MaxPublishesInFlight"] = bound.ToString(System.Globalization.CultureInfo.InvariantCulture),
            ["Broker:ClusterCallTimeout"] = "00:01:00",
        });
        var room = BrokerFixture.UniqueRoom("pipe-bound");
        await using var publisher = await server.ConnectAsync("/chat?user=pipe-bound");
        await publisher.JoinAsync(room);
        Assert.Equal("ack", Frame.Type(await publisher.PublishAsync(room, "warm")));
        var connection = server.Node.Users.Get(GrainKeys.Of("chat", publisher.User)).Single();

        fixture.Redis.Pause();
        try
        {
            for (var n = 0; n < count; n++)
            {
                await publisher.SendAsync(new { type = "publish", id = n, room, data = n, msgId = $"m{n}" });
            }

            await Eventually.WaitUntilAsync(() => connection.Publishes?.Unanswered == bound, Timeout, $"{bound} publishes in flight");

            // Not a synchronisation: time for an unbounded pipeline to take the other frames,
            // which arrived long ago. It must still hold exactly the bound.
            await Task.Delay(300);
            Assert.Equal(bound, connection.Publishes!.Unanswered);
        }
        finally
        {
            fixture.Redis.Resume();
        }

        var got = await publisher.CollectAsync(f => f.Count(x => Frame.Is(x, "ack") || Frame.Is(x, "error")) >= count, Timeout, "publisher");
        var replies = got.Where(f => Frame.Is(f, "ack") || Frame.Is(f, "error")).ToList();
        Assert.All(replies, r => Assert.Equal("ack", Frame.Type(r)));
        Assert.Equal(Enumerable.Range(0, count), replies.Select(r => r.GetProperty("id").GetInt32()));
        Assert.Equal(Enumerable.Range(2, count).Select(i => (long)i), replies.Select(r => r.GetProperty("seq").GetInt64()));
    }

    /// <summary>
    /// msgIds repeated inside one batch (queued together behind a commit that waits for a frozen
    /// Redis) and across batches are acked with the first seq and delivered once.
    /// </summary>
    [Fact]
    public async Task Pipeline_MsgIdRepeatedInsideAndAcrossBatches_AckedWithTheFirstSeqDeliveredOnce()
    {
        var server = fixture.Durable;
        var room = BrokerFixture.UniqueRoom("pipe-dup");
        await using var publisher = await server.ConnectAsync("/chat?user=pipe-dup");
        await using var member = await server.ConnectAsync("/chat?user=pipe-dup-m");
        await publisher.JoinAsync(room);
        await member.JoinAsync(room);

        // x goes alone (its commit waits for Redis); the rest queue and leave as one batch.
        string[] msgIds = ["x", "y", "x", "z", "y", "w", "z", "x"];
        long[] expected = [1, 2, 1, 3, 2, 4, 3, 1];
        fixture.Redis.Pause();
        try
        {
            for (var n = 0; n < msgIds.Length; n++)
            {
                await publisher.SendAsync(new { type = "publish", id = n, room, data = n, msgId = msgIds[n] });
            }

            var connection = server.Node.Users.Get(GrainKeys.Of("chat", publisher.User)).Single();
            await Eventually.WaitUntilAsync(() => connection.Publishes?.Unanswered == msgIds.Length, Timeout, "every publish taken");
        }
        finally
        {
            fixture.Redis.Resume();
        }

        var got = await publisher.CollectAsync(f => f.Count(x => Frame.Is(x, "ack")) >= msgIds.Length, Timeout, "publisher");
        var acks = got.Where(f => Frame.Is(f, "ack")).ToList();
        Assert.Equal(Enumerable.Range(0, msgIds.Length), acks.Select(a => a.GetProperty("id").GetInt32()));
        Assert.Equal(expected, acks.Select(a => a.GetProperty("seq").GetInt64()));

        // A later batch repeating them: the first seqs again, nothing new ordered.
        for (var n = 0; n < 4; n++)
        {
            await publisher.SendAsync(new { type = "publish", id = 100 + n, room, data = n, msgId = msgIds[n] });
        }

        await publisher.SendAsync(new { type = "publish", id = 200, room, data = "last", msgId = "v" });
        var later = await publisher.CollectAsync(f => f.Count(x => Frame.Is(x, "ack")) >= 5, Timeout, "publisher");
        Assert.Equal(new long[] { 1, 2, 1, 3, 5 }, later.Where(f => Frame.Is(f, "ack")).Select(a => a.GetProperty("seq").GetInt64()));

        var delivered = await member.CollectAsync(f => f.Count(x => Frame.IsMessageIn(x, room)) >= 5, Timeout, "member");
        Assert.Equal(new long[] { 1, 2, 3, 4, 5 }, delivered.Where(f => Frame.IsMessageIn(f, room)).Select(m => m.GetProperty("seq").GetInt64()));
        Assert.Equal(new[] { 0, 1, 3, 5 }, delivered.Where(f => Frame.IsMessageIn(f, room)).Take(4).Select(m => m.GetProperty("data").GetInt32()));
    }

    /// <summary>1 is one frame at a time, as before pipelining: every publish goes alone (one commit each).</summary>
    [Fact]
    public async Task Pipeline_MaxPublishesInFlightOne_OneCommitPerPublish()
    {
        const int count = 30;
        await using var server = await BrokerServer.StartAsync(new Dictionary<string, string?>
        {
            ["Broker:Embedded:StoreRedis"] = fixture.Redis.Endpoint,
            ["Broker:MaxPublishesInFlight"] = "1",
        });
        var room = BrokerFixture.UniqueRoom("pipe-one");
        await using var publisher = await server.ConnectAsync("/chat?user=pipe-one");
        await publisher.JoinAsync(room);
        var before = await fixture.Redis.CommitCountAsync();
        for (var n = 0; n < count; n++)
        {
            await publisher.SendAsync(new { type = "publish", id = n, room, data = n });
        }

        var got = await publisher.CollectAsync(f => f.Count(x => Frame.Is(x, "ack")) >= count, Timeout, "publisher");
        Assert.Equal(Enumerable.Range(1, count).Select(i => (long)i), got.Where(f => Frame.Is(f, "ack")).Select(a => a.GetProperty("seq").GetInt64()));
        Assert.Equal(count, await fixture.Redis.CommitCountAsync() - before);
    }
}
