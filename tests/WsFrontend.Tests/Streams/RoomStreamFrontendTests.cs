using Broker.Frontend.Tests.Infrastructure;
using Broker.Grains.Streams;
using Orleans.Streams;

namespace Broker.Frontend.Tests.Streams;

/// <summary>
/// A real front-end (embedded silo, memory streams) with <c>Broker:Namespaces:chat:Stream=true</c>:
/// what WebSocket clients publish reaches a stream subscriber exactly as the clients receive it.
/// </summary>
public sealed class RoomStreamFrontendTests
{
    [Fact]
    public async Task Publish_StreamOnInConfiguration_SubscriberSeesWhatClientsSee()
    {
        const int PerClient = 25;
        await using var server = await BrokerServer.StartAsync(new Dictionary<string, string?> { ["Broker:Namespaces:chat:Stream"] = "true" });
        var room = BrokerFixture.UniqueRoom();

        // An explicit subscriber in the broker's own process: its silo's client.
        var heard = new List<RoomStreamItem>();
        var lastSeq = new TaskCompletionSource<long>(TaskCreationOptions.RunContinuationsAsynchronously);
        long expectedLast = long.MaxValue;
        var stream = server.Services.GetRequiredService<IClusterClient>()
            .GetStreamProvider(BrokerStreams.ProviderName)
            .GetStream<RoomStreamItem>(BrokerStreams.RoomStream("chat", room));
        var subscription = await stream.SubscribeAsync((item, _) =>
        {
            lock (heard)
            {
                heard.Add(item);
                if (item.Kind == RoomStreamItemKind.Message && item.Seq >= Volatile.Read(ref expectedLast))
                {
                    lastSeq.TrySetResult(item.Seq);
                }
            }

            return Task.CompletedTask;
        });

        await using var watcher = await server.ConnectAsync("/chat?user=watcher");
        await using var alice = await server.ConnectAsync("/chat?user=alice");
        await using var bob = await server.ConnectAsync("/chat?user=bob");
        await watcher.JoinAsync(room);
        await alice.JoinAsync(room);
        await bob.JoinAsync(room);

        async Task<List<long>> PublishAll(TestClient client, string name)
        {
            var seqs = new List<long>();
            for (var i = 0; i < PerClient; i++)
            {
                var ack = await client.PublishAsync(room, new { from = name, i });
                seqs.Add(ack.GetProperty("seq").GetInt64());
            }

            return seqs;
        }

        var acked = (await Task.WhenAll(PublishAll(alice, "alice"), PublishAll(bob, "bob"))).SelectMany(s => s).ToList();
        var last = acked.Max();
        Volatile.Write(ref expectedLast, last);
        lock (heard)
        {
            if (heard.Any(i => i.Kind == RoomStreamItemKind.Message && i.Seq >= last))
            {
                lastSeq.TrySetResult(last);
            }
        }

        // What a client received, in order.
        var received = new List<(long Seq, string From, long Ts, string Data)>();
        while (received.Count == 0 || received[^1].Seq < last)
        {
            var frame = await watcher.WaitForTypeAsync("message");
            received.Add((frame.GetProperty("seq").GetInt64(), frame.GetProperty("from").GetString()!, frame.GetProperty("ts").GetInt64(), frame.GetProperty("data").GetRawText()));
        }

        await lastSeq.Task.WaitAsync(TimeSpan.FromSeconds(30));
        await subscription.UnsubscribeAsync();
        List<RoomStreamItem> items;
        lock (heard)
        {
            items = [.. heard];
        }

        var messages = items.Where(i => i.Kind == RoomStreamItemKind.Message).ToList();
        Assert.Equal(acked.Order(), messages.Select(m => m.Seq));
        Assert.Equal(received, messages.Select(m => (m.Seq, m.User, m.Timestamp, m.DataJson!)));

        // The three joins came before any message, in the order the clients joined.
        Assert.Equal(
            new[] { "watcher", "alice", "bob" },
            items.TakeWhile(i => i.Kind == RoomStreamItemKind.MemberJoined).Select(i => i.User));
    }

    [Fact]
    public void NamespaceOptions_Stream_IsCarriedInTheRoomPolicy()
    {
        Assert.False(new Broker.Frontend.Options.NamespaceOptions().ToRoomPolicy().Stream);
        Assert.True(new Broker.Frontend.Options.NamespaceOptions { Stream = true }.ToRoomPolicy().Stream);
    }
}
