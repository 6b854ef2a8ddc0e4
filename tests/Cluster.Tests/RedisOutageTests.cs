using System.Diagnostics;
using Broker.Cluster.Tests.Infrastructure;

namespace Broker.Cluster.Tests;

/// <summary>Redis (the membership table) briefly away: running nodes keep delivering, nothing crashes.</summary>
public sealed class RedisOutageTests(ITestOutputHelper output)
{
    private static readonly TimeSpan Outage = TimeSpan.FromSeconds(5);

    [Fact]
    public async Task PauseRedis_FiveSeconds_DeliveriesContinueAndEveryNodeStaysHealthy()
    {
        await using var cluster = await BrokerCluster.StartAsync(silos: 2, frontends: 2);
        await cluster.GuardAsync(output, async () =>
        {
            var (feA, feB) = (cluster.Frontends[0], cluster.Frontends[1]);
            var room = Names.Unique("room");
            await using var a = await WsClient.ConnectAsync(feA.WsBase, Names.Unique("alice"));
            await using var b = await WsClient.ConnectAsync(feB.WsBase, Names.Unique("bob"));
            await a.JoinAsync(room);
            await b.JoinAsync(room);

            var loop = PublishLoop.Start(a, room, "p", TimeSpan.FromMilliseconds(100), TimeSpan.FromSeconds(8));
            await loop.WaitUntilAsync(o => o.Count(x => x.IsAck) >= 5, TimeSpan.FromSeconds(10));

            await cluster.Redis.PauseAsync();
            var paused = Stopwatch.StartNew();
            var directs = 0;
            var freshRooms = 0;
            try
            {
                // While Redis is frozen: direct messages across front-ends, and a brand-new room
                // (a new activation, a new connection), besides the publish loop.
                await using var c = await WsClient.ConnectAsync(feB.WsBase, Names.Unique("carol"));
                while (paused.Elapsed < Outage)
                {
                    Assert.Equal(1, (await b.SendToAsync(a.User, "direct " + directs)).GetProperty("delivered").GetInt32());
                    await a.WaitForAsync(f => f.Type == "direct" && f.DataString == "direct " + directs, TimeSpan.FromSeconds(5));
                    directs++;
                    if (freshRooms == 0)
                    {
                        var fresh = Names.Unique("fresh");
                        await c.JoinAsync(fresh);
                        await a.JoinAsync(fresh);
                        await a.PublishAsync(fresh, "during the outage");
                        await c.WaitForMessageAsync(fresh, "during the outage", TimeSpan.FromSeconds(5));
                        freshRooms++;
                    }

                    await Task.Delay(200); // pace, not synchronisation
                }
            }
            finally
            {
                await cluster.Redis.ResumeAsync();
            }

            output.WriteLine($"Redis paused {Ms.Format(paused.Elapsed)}; {directs} direct messages and {freshRooms} new room meanwhile");

            // A little more traffic after Redis is back, then check everything.
            var atResume = loop.Outcomes.Count;
            await loop.WaitUntilAsync(o => o.Count >= atResume + 10, TimeSpan.FromSeconds(15));
            var outcomes = await loop.StopAsync();
            output.WriteLine($"{outcomes.Count} publishes, worst ack latency {Ms.Format(outcomes.Max(o => o.Latency))}");
            Assert.All(outcomes, o => Assert.True(o.IsAck, $"publish {o} was not acked around the Redis outage"));

            await b.WaitForMessageAsync(room, outcomes[^1].Data);
            var received = b.Messages(room);
            Assert.Equal(outcomes.Select(o => o.Data), received.Select(m => m.DataString));
            Assert.Equal(Enumerable.Range(1, outcomes.Count).Select(i => (long)i), received.Select(m => m.Seq));

            // Nothing crashed; every node is (or becomes again) healthy.
            foreach (var process in cluster.Processes)
            {
                Assert.False(process.HasExited, $"{process.Name} exited.\n{process.Tail()}");
            }

            foreach (var process in cluster.Silos.Cast<ChildProcess>().Concat(cluster.Frontends))
            {
                var healthz = process is SiloProcess silo ? silo.Healthz : ((FrontendProcess)process).Healthz;
                var status = await Health.StatusAsync(healthz);
                var healthyAfter = await Health.WaitHealthyAsync(process, healthz, TimeSpan.FromSeconds(20));
                output.WriteLine($"{process.Name} /healthz after Redis came back: {status?.ToString(System.Globalization.CultureInfo.InvariantCulture) ?? "no answer"}" +
                                 (status == 200 ? string.Empty : $", 200 after {Ms.Format(healthyAfter)}"));
            }

            Assert.True(a.IsOpen && b.IsOpen, "A client was disconnected by the Redis outage.");
            await a.PublishAsync(room, "after");
            await b.WaitForMessageAsync(room, "after");
        });
    }
}
