using Broker.Grains.Models;
using Broker.Grains.Tests.Infrastructure;

namespace Broker.Grains.Tests.Streams;

/// <summary>
/// Rooms with Stream on whose stream cannot take their items: here silos without the stream
/// provider (the shared cluster of the grain tests has none). Publishes are acked and delivered
/// as ever; the items are dropped and counted.
/// </summary>
[Collection(ClusterCollection.Name)]
public sealed class RoomStreamFailureTests(ClusterFixture fixture) : GrainTestBase(fixture)
{
    [Fact]
    public async Task Publish_StreamOnWithoutAProvider_AckedAndDeliveredWhileItemsAreDroppedAsFailed()
    {
        using var dropped = new BrokerCounter("broker.stream.items.dropped", "reason");
        var key = NewKey("nostream");
        var room = Room(key);
        var frontend = NewFrontend("a");
        var policy = new RoomPolicy(100, true, Stream: true);
        await room.Join(JoinOf("c1", "alice", frontend, policy));

        var results = new List<PublishResult>();
        for (var i = 0; i < 3; i++)
        {
            results.Add(await room.Publish(PublishOf("alice", $"{i}", policy)));
        }

        Assert.Equal(new[] { 1L, 2L, 3L }, results.Select(r => r.Seq));
        await frontend.WaitForSeqAsync(key, 3);

        // The join and the three messages.
        await dropped.WaitForAsync("failed", 4);
    }
}
