using System.Diagnostics;
using System.Text;
using Broker.Grains.Streams;
using Broker.Streams.Tests.Infrastructure;
using Orleans.Streams;

namespace Broker.Streams.Tests;

/// <summary>
/// Silo:Streams:Subscriptions (docs/streams.md, "Providers"): "any" serves explicit and implicit
/// subscriptions, and the first item of every new stream registers the silo pulling it with
/// the stream's pub-sub grain (an activation and a write to the subscription storage);
/// "implicit" serves implicit subscriptions only and needs neither.
/// </summary>
public sealed class SubscriptionsTests(ITestOutputHelper output)
{
    private const int NewStreams = 500;

    [Theory]
    [InlineData(BrokerStreamOptions.AnySubscriptions)]
    [InlineData(BrokerStreamOptions.ImplicitSubscriptions)]
    public async Task NewStreams_ImplicitSubscribersHearEach_PubSubGrainsOnlyWithAny(string subscriptions)
    {
        var cluster = await StreamCluster.StartAsync(new BrokerStreamOptions { Subscriptions = subscriptions }, silos: 1);
        try
        {
            var provider = cluster.Client.GetStreamProvider(BrokerStreams.ProviderName);

            // Warm-up: the first stream activates the recorder grain type and the queues' agents.
            var warm = $"warm-{Guid.NewGuid():N}";
            await Produce(provider, warm, 1);
            Assert.True(await StreamRecorder.WaitAsync(() => StreamRecorder.Room(warm).Count == 1, TimeSpan.FromSeconds(30)));

            var rooms = Enumerable.Range(0, NewStreams).Select(i => $"new{i}-{Guid.NewGuid():N}").ToList();
            var clock = Stopwatch.StartNew();
            await Parallel.ForEachAsync(rooms, new ParallelOptions { MaxDegreeOfParallelism = 32 }, async (room, _) => await Produce(provider, room, 1));
            var produced = clock.Elapsed;
            var heard = await StreamRecorder.WaitAsync(() => rooms.All(r => StreamRecorder.Room(r).Count > 0), TimeSpan.FromSeconds(60));
            var all = clock.Elapsed;

            var stats = await cluster.Client.GetGrain<IManagementGrain>(0).GetSimpleGrainStatistics();
            var pubSubGrains = stats.Where(s => s.GrainType.Contains("PubSubRendezvousGrain", StringComparison.Ordinal)).Sum(s => s.ActivationCount);
            output.WriteLine($"subscriptions={subscriptions}: {NewStreams} new streams, one item each: produced in {produced.TotalMilliseconds:F0} ms, all heard after {all.TotalMilliseconds:F0} ms; pub-sub grain activations {pubSubGrains}");

            Assert.True(heard, $"Every new stream's implicit subscriber hears its item ({rooms.Count(r => StreamRecorder.Room(r).Count == 0)} did not).");
            if (subscriptions == BrokerStreamOptions.ImplicitSubscriptions)
            {
                Assert.Equal(0, pubSubGrains);
            }
            else
            {
                Assert.True(pubSubGrains >= NewStreams, $"Each new stream has a pub-sub grain with \"any\" ({pubSubGrains}).");
            }
        }
        finally
        {
            await cluster.DisposeAsync();
        }
    }

    private static Task Produce(IStreamProvider provider, string room, long seq) =>
        provider.GetStream<RoomStreamItem>(BrokerStreams.RoomStream(StreamRecorder.Namespace, room)).OnNextAsync(
            new RoomStreamItem(RoomStreamItemKind.Message, StreamRecorder.Namespace, room, "e1", seq, "server:test", 0, Encoding.UTF8.GetBytes("1")));
}
