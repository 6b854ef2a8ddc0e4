using System.Text;
using Broker.Grains.Models;
using Broker.Grains.Streams;
using Broker.Grains.Tests.Infrastructure;
using Orleans.Core.Internal;

namespace Broker.Grains.Tests.Streams;

/// <summary>
/// Rooms on the Redis store with Stream on: items are produced after the group commit, in seq
/// order, and a room's next activation carries on the same stream in the same epoch.
/// </summary>
[Collection(DurableClusterCollection.Name)]
public sealed class DurableRoomStreamTests(DurableClusterFixture fixture)
{
    private static readonly RoomPolicy Policy = new(HistoryLimit: 500, Presence: true, Stream: true);

    [Fact]
    public async Task Publish_ConcurrentOnRedisStore_HeardOnceInSeqOrderAfterCommit()
    {
        var room = $"durable-{Guid.NewGuid():N}";
        var grain = Room(room);

        var results = await Task.WhenAll(Enumerable.Range(0, 100).Select(i => grain.Publish(Request($"{i}"))));

        var heard = StreamRecordings.Implicit(StreamRecordings.Namespace, room);
        await heard.WaitForSeqAsync(100);
        Assert.Equal(Enumerable.Range(1, 100).Select(i => (long)i), heard.Items.Select(i => i.Seq));
        var bySeq = results.Select((r, i) => (r, i)).ToDictionary(p => p.r.Seq, p => $"\"{p.i}\"");
        Assert.All(heard.Items, item =>
        {
            Assert.Equal(results[0].Epoch, item.Epoch);
            Assert.Equal(bySeq[item.Seq], item.DataJson);
        });

        // Everything heard is committed: the store's history holds it.
        var page = await grain.GetHistory(null, 100, int.MaxValue);
        Assert.Equal(heard.Items.Select(i => (i.Seq, i.Timestamp)), page.Messages.Select(m => (m.Seq, m.Timestamp)));
    }

    [Fact]
    public async Task Publish_AcrossActivations_OneStreamInOrderSameEpoch()
    {
        var room = $"durable-{Guid.NewGuid():N}";
        var first = new List<PublishResult>();
        for (var i = 0; i < 10; i++)
        {
            first.Add(await Room(room).Publish(Request($"a{i}")));
        }

        // Deactivated at once, its items possibly still waiting: they go before the activation does.
        await Room(room).Cast<IGrainManagementExtension>().DeactivateOnIdle();
        var second = new List<PublishResult>();
        for (var i = 0; i < 10; i++)
        {
            second.Add(await Room(room).Publish(Request($"b{i}")));
        }

        var heard = StreamRecordings.Implicit(StreamRecordings.Namespace, room);
        await heard.WaitForSeqAsync(20);
        Assert.Equal(first.Concat(second).Select(r => (r.Epoch, r.Seq)), heard.Items.Select(i => (i.Epoch, i.Seq)));
        Assert.Equal(Enumerable.Range(1, 20).Select(i => (long)i), heard.Items.Select(i => i.Seq));
    }

    private IRoomGrain Room(string room) => fixture.Client.GetGrain<IRoomGrain>(GrainKeys.Of(StreamRecordings.Namespace, room));

    private static PublishRequest Request(string text) => new("alice", Encoding.UTF8.GetBytes($"\"{text}\""), null, Policy);
}
