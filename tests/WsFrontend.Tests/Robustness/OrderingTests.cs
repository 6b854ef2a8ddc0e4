using Broker.Frontend.Tests.Infrastructure;

namespace Broker.Frontend.Tests.Robustness;

[Collection(BrokerCollection.Name)]
public sealed class OrderingTests(BrokerFixture fixture)
{
    private const int Publishers = 4;
    private const int PerPublisher = 200;
    private const int Listeners = 3;
    private const int Total = Publishers * PerPublisher;
    private static readonly TimeSpan CollectTimeout = TimeSpan.FromSeconds(15);

    [Fact]
    public async Task Publish_FourPipelinedPublishers_EveryMemberGetsEveryMessageOnceInSeqAndPublisherOrder()
    {
        var room = BrokerFixture.UniqueRoom("order");
        var tag = Guid.NewGuid().ToString("N")[..6];
        var members = new List<TestClient>();
        try
        {
            for (var p = 0; p < Publishers; p++)
            {
                members.Add(await fixture.Server.ConnectAsync($"/chat?user=pub{p}-{tag}"));
            }

            for (var l = 0; l < Listeners; l++)
            {
                members.Add(await fixture.Server.ConnectAsync($"/chat?user=listener{l}-{tag}"));
            }

            foreach (var member in members)
            {
                var joined = await member.JoinAsync(room);
                Assert.Equal("joined", Frame.Type(joined));
                Assert.Equal(0, joined.GetProperty("seq").GetInt64());
            }

            // Every publisher sends all its frames without waiting for any ack, all publishers at once.
            var sending = Enumerable.Range(0, Publishers).Select(p => Task.Run(async () =>
            {
                for (var n = 0; n < PerPublisher; n++)
                {
                    await members[p].SendAsync(new { type = "publish", id = n, room, data = new { p, n } });
                }
            })).ToArray();

            var collecting = members.Select((member, index) => member.CollectAsync(
                frames => frames.Count(f => Frame.IsMessageIn(f, room)) >= Total
                    && (index >= Publishers || frames.Count(f => Frame.Is(f, "ack")) >= PerPublisher),
                CollectTimeout,
                member.User)).ToArray();
            await Task.WhenAll(sending);
            var received = await Task.WhenAll(collecting);

            var ackSeqs = new List<long>();
            for (var index = 0; index < members.Count; index++)
            {
                var who = members[index].User;
                var messages = received[index].Where(f => Frame.IsMessageIn(f, room)).ToList();
                Assert.DoesNotContain(received[index], f => Frame.Is(f, "error"));

                // seq 1, 2, 3 … with no gap and no duplicate.
                Assert.Equal(Enumerable.Range(1, Total).Select(i => (long)i), messages.Select(m => m.GetProperty("seq").GetInt64()));

                // Each publisher's messages in the order it sent them, from the right user.
                for (var p = 0; p < Publishers; p++)
                {
                    var ofP = messages.Where(m => m.GetProperty("data").GetProperty("p").GetInt32() == p).ToList();
                    Assert.Equal(Enumerable.Range(0, PerPublisher), ofP.Select(m => m.GetProperty("data").GetProperty("n").GetInt32()));
                    Assert.All(ofP, m => Assert.Equal(members[p].User, m.GetProperty("from").GetString()));
                }

                if (index < Publishers)
                {
                    // Each ack carries the seq the room gave exactly that frame.
                    var bySeq = messages.ToDictionary(m => m.GetProperty("seq").GetInt64());
                    var acks = received[index].Where(f => Frame.Is(f, "ack")).ToList();
                    Assert.Equal(PerPublisher, acks.Count);
                    foreach (var ack in acks)
                    {
                        var seq = ack.GetProperty("seq").GetInt64();
                        Assert.Equal(room, ack.GetProperty("room").GetString());
                        Assert.True(bySeq.TryGetValue(seq, out var message), $"{who}: ack seq {seq} has no message");
                        Assert.Equal(index, message.GetProperty("data").GetProperty("p").GetInt32());
                        Assert.Equal(ack.GetProperty("id").GetInt32(), message.GetProperty("data").GetProperty("n").GetInt32());
                        ackSeqs.Add(seq);
                    }
                }
            }

            // Acks carry distinct seqs: together exactly 1..Total.
            Assert.Equal(Enumerable.Range(1, Total).Select(i => (long)i), ackSeqs.Order());

            // A sentinel published last must be the very next message everywhere: nothing was
            // delivered twice after the first Total.
            await members[^1].SendAsync(new { type = "publish", id = "sentinel", room, data = new { sentinel = true } });
            foreach (var member in members)
            {
                var tail = await member.CollectUntilAsync(f => Frame.IsMessageIn(f, room), CollectTimeout, member.User);
                var sentinel = tail[^1];
                Assert.True(sentinel.GetProperty("data").TryGetProperty("sentinel", out _), $"{member.User}: extra message {sentinel}");
                Assert.Equal(Total + 1, sentinel.GetProperty("seq").GetInt64());
            }
        }
        finally
        {
            foreach (var member in members)
            {
                await member.DisposeAsync();
            }
        }
    }

    [Fact]
    public async Task Publish_PipelinedFromOneConnection_AcksAndMessagesFollowSendOrder()
    {
        const int count = 300;
        var room = BrokerFixture.UniqueRoom("order1");
        await using var publisher = await fixture.Server.ConnectAsync("/chat?user=solo-pub");
        await using var listener = await fixture.Server.ConnectAsync("/chat?user=solo-listener");
        await publisher.JoinAsync(room);
        await listener.JoinAsync(room);

        for (var n = 0; n < count; n++)
        {
            await publisher.SendAsync(new { type = "publish", id = n, room, data = n });
        }

        var atPublisher = await publisher.CollectAsync(
            frames => frames.Count(f => Frame.Is(f, "ack")) >= count && frames.Count(f => Frame.IsMessageIn(f, room)) >= count,
            CollectTimeout,
            "publisher");
        var atListener = await listener.CollectAsync(frames => frames.Count(f => Frame.IsMessageIn(f, room)) >= count, CollectTimeout, "listener");

        // The ack for the n-th frame carries seq n+1: the room ordered them as sent.
        var acks = atPublisher.Where(f => Frame.Is(f, "ack")).ToList();
        Assert.All(acks, a => Assert.Equal(a.GetProperty("id").GetInt32() + 1, a.GetProperty("seq").GetInt64()));
        Assert.Equal(Enumerable.Range(0, count), acks.Select(a => a.GetProperty("id").GetInt32()).Order());
        foreach (var frames in new[] { atPublisher, atListener })
        {
            var messages = frames.Where(f => Frame.IsMessageIn(f, room)).ToList();
            Assert.Equal(Enumerable.Range(0, count), messages.Select(m => m.GetProperty("data").GetInt32()));
            Assert.Equal(Enumerable.Range(1, count).Select(i => (long)i), messages.Select(m => m.GetProperty("seq").GetInt64()));
        }
    }
}
