using System.Globalization;
using System.Net;
using System.Net.WebSockets;
using System.Text.RegularExpressions;
using Broker.Cluster.Tests.Infrastructure;

namespace Broker.Cluster.Tests;

/// <summary>
/// A cluster-mode front-end sends traffic through its own hot path before it first reports
/// ready (Broker:Warmup, docs/performance.md "Cold start"): at the first 200 of /healthz its
/// deliveries counter already holds the warm-up's deliveries, none of its loopback
/// connections is left, and the warm-up's path cannot be used from outside.
/// </summary>
public sealed class WarmupTests(ITestOutputHelper output)
{
    private static readonly HttpClient s_http = new() { Timeout = TimeSpan.FromSeconds(5) };

    [Theory]
    [InlineData(true)]
    [InlineData(false)]
    public async Task Frontend_AtItsFirstReady_HasWarmedUpUnlessTurnedOff(bool enabled)
    {
        await using var cluster = await BrokerCluster.StartAsync(silos: 1, frontends: 0);
        await cluster.GuardAsync(output, async () =>
        {
            var frontend = await cluster.AddFrontendAsync(
                waitHealthy: false,
                settings: ["--Broker:Warmup:Enabled=" + (enabled ? "true" : "false"), "--Broker:Warmup:Publishes=400", "--Broker:Warmup:MembersPerRoom=10"]);
            await Health.WaitHealthyAsync(frontend, frontend.Healthz);

            // Read at once: the counters of the moment the front-end first answered ready.
            var page = await s_http.GetStringAsync(new Uri(frontend.Healthz, "/metrics"));
            var deliveries = MetricsPage.Sum(page, "broker_deliveries_total");
            var connections = MetricsPage.Sum(page, "broker_connections");
            output.WriteLine($"at the first ready: {deliveries} deliveries, {connections} connections");
            if (enabled)
            {
                // 400 publishes into 2 rooms of 10 members: 4,000 deliveries.
                Assert.True(deliveries >= 4000, $"The front-end reported ready after {deliveries} deliveries; its warm-up makes 4,000 first.");
            }
            else
            {
                Assert.Equal(0, deliveries);
            }

            await frontend.WaitForOutputAsync(enabled ? "Warmed up before reporting ready" : "Connected to the cluster", TimeSpan.FromSeconds(10));

            // The warm-up's loopback connections are gone (closed before ready, or just after).
            var deadline = DateTime.UtcNow + TimeSpan.FromSeconds(10);
            while (MetricsPage.Sum(await s_http.GetStringAsync(new Uri(frontend.Healthz, "/metrics")), "broker_connections") > 0 && DateTime.UtcNow < deadline)
            {
                await Task.Delay(100);
            }

            Assert.Equal(0, MetricsPage.Sum(await s_http.GetStringAsync(new Uri(frontend.Healthz, "/metrics")), "broker_connections"));
        });
    }

    [Fact]
    public async Task WarmupPath_FromOutside_IsNotANamespace()
    {
        await using var cluster = await BrokerCluster.StartAsync(silos: 1, frontends: 1);
        await cluster.GuardAsync(output, async () =>
        {
            var frontend = cluster.Frontends[0];
            foreach (var path in new[] { "$warmup", "$warmup/" + new string('0', 32), "$warmup/x?user=w0" })
            {
                using var socket = new ClientWebSocket();
                socket.Options.CollectHttpResponseDetails = true;
                await Assert.ThrowsAsync<WebSocketException>(() => socket.ConnectAsync(new Uri(frontend.WsBase, path), CancellationToken.None));
                Assert.Equal(HttpStatusCode.NotFound, socket.HttpStatusCode);
            }
        });
    }

}
