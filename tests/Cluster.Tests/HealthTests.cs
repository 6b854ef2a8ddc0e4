using System.Text.Json;
using Broker.Cluster.Tests.Infrastructure;

namespace Broker.Cluster.Tests;

[Collection(SharedClusterCollection.Name)]
public sealed class SharedClusterHealthTests(SharedClusterFixture fixture, ITestOutputHelper output)
{
    [Fact]
    public Task Healthz_RunningSilosAndFrontends_AnswerOk() => fixture.Cluster.GuardAsync(output, async () =>
    {
        foreach (var silo in fixture.Cluster.Silos)
        {
            Assert.Equal(200, await Health.StatusAsync(silo.Healthz));
            using var body = JsonDocument.Parse(await Health.BodyAsync(silo.Healthz));
            Assert.Equal("ok", body.RootElement.GetProperty("status").GetString());
            Assert.Equal(200, await Health.StatusAsync(new Uri(silo.Healthz, "/health/live")));
            Assert.Equal(200, await Health.StatusAsync(new Uri(silo.Healthz, "/health/ready")));
            output.WriteLine($"{silo.Name} healthy {Ms.Format(silo.StartupTime)} after start");
        }

        foreach (var frontend in fixture.Cluster.Frontends)
        {
            Assert.Equal(200, await Health.StatusAsync(frontend.Healthz));
            Assert.Equal(200, await Health.StatusAsync(new Uri(frontend.Healthz, "/health/live")));
            Assert.Equal(200, await Health.StatusAsync(new Uri(frontend.Healthz, "/health/ready")));
            output.WriteLine($"{frontend.Name} healthy {Ms.Format(frontend.StartupTime)} after start");
        }
    });
}

/// <summary>Readiness: a front-end started before any silo is not ready, then serves once a silo is there.</summary>
public sealed class StartupOrderTests(ITestOutputHelper output)
{
    [Fact]
    public async Task Healthz_FrontendStartedBeforeAnySilo_NotReadyUntilSiloJoinsThenServes()
    {
        await using var cluster = await BrokerCluster.StartAsync(silos: 0, frontends: 0);
        await cluster.GuardAsync(output, async () =>
        {
            var frontend = await cluster.AddFrontendAsync(waitHealthy: false);

            // The front-end keeps trying to reach the cluster (it says so) and is not ready meanwhile.
            await frontend.WaitForOutputAsync("Waiting for the cluster", TimeSpan.FromSeconds(30));
            var before = await Health.StatusAsync(frontend.Healthz);
            output.WriteLine($"fe-1 /healthz with no silo: {before?.ToString(System.Globalization.CultureInfo.InvariantCulture) ?? "no answer"}");
            Assert.NotEqual(200, before);
            Assert.False(frontend.HasExited, "The front-end gave up instead of waiting for a silo.\n" + frontend.Tail());

            // Not ready. (Not live either yet: a cluster-mode front-end serves no HTTP until its
            // cluster client has connected once — issue 16 moves that, so that /health/live answers.)
            Assert.NotEqual(200, await Health.StatusAsync(new Uri(frontend.Healthz, "/health/ready")));

            var silo = await cluster.AddSiloAsync();
            var ready = System.Diagnostics.Stopwatch.StartNew();
            await frontend.WaitHealthyAsync(TimeSpan.FromSeconds(30));
            output.WriteLine($"fe-1 ready {Ms.Format(ready.Elapsed)} after the silo was");
            Assert.Equal(200, await Health.StatusAsync(new Uri(frontend.Healthz, "/health/ready")));

            await using var client = await WsClient.ConnectAsync(frontend.WsBase, Names.Unique("early"));
            var room = Names.Unique("room");
            await client.JoinAsync(room);
            await client.PublishAsync(room, "first");
            await client.WaitForMessageAsync(room, "first");
        });
    }
}
