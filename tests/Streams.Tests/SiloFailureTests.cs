using Broker.Streams.Tests.Infrastructure;
using Orleans.TestingHost;

namespace Broker.Streams.Tests;

/// <summary>
/// What a silo failure does to stream delivery with the memory provider (docs/streams.md, "When
/// a silo fails"): two silos, a client producing numbered items to 16 room streams, the recorder grain
/// of each room recording them; the silo that is not the test cluster's primary (which holds its
/// membership table) is killed without shutdown, and producing goes on.
/// </summary>
public sealed class SiloFailureTests(ITestOutputHelper output)
{
    private const int Rooms = 16;
    private static readonly TimeSpan Interval = TimeSpan.FromMilliseconds(20);

    [Fact]
    public async Task Memory_SiloKilled_LaterItemsArrive()
    {
        var cluster = await StreamCluster.StartAsync(new BrokerStreamOptions(), silos: 2);
        try
        {
            var report = await KillDuringDeliveryAsync(cluster.Client, () => cluster.KillSiloAsync(cluster.SecondarySilos[0]), output);

            // Memory streams lose what the killed silo held; what is produced after it is gone arrives.
            Assert.Equal(0, report.Reordered);
            Assert.Equal(0, report.Duplicates);
        }
        finally
        {
            await cluster.DisposeAsync();
        }
    }

    internal static async Task<DeliveryReport> KillDuringDeliveryAsync(IClusterClient client, Func<Task> kill, ITestOutputHelper output, bool subscribeExplicitly = false)
    {
        var run = new DeliveryRun(client, Rooms, Interval, subscribeExplicitly);
        await run.SubscribeAsync();
        var started = DateTime.UtcNow;
        run.Start();
        Assert.True(await StreamRecorder.WaitAsync(() => run.EveryRoomHeard(50, started), TimeSpan.FromSeconds(60)), "Every room's subscriber hears items before the kill.");

        var killedAt = DateTime.UtcNow;
        await kill();
        output.WriteLine($"killed a silo at +{(killedAt - started).TotalSeconds:F1} s");

        var resumed = await StreamRecorder.WaitAsync(() => run.EveryRoomHeard(100, killedAt), TimeSpan.FromSeconds(90));
        await run.StopAsync();
        var drained = await StreamRecorder.WaitAsync(run.EveryRoomHeardItsLast, TimeSpan.FromSeconds(60));
        var report = run.Report(killedAt);
        output.WriteLine(report.ToString());
        Assert.True(resumed, $"Every room's subscriber hears 100 items produced after the kill. {report}");
        Assert.True(drained, $"Every room's subscriber hears the last item produced. {report}");
        return report;
    }
}
