using Broker.Cluster.Tests.Infrastructure;

namespace Broker.Cluster.Tests;

/// <summary>No sticky sessions: nginx round-robins plain WebSocket connections over two front-ends.</summary>
[Collection(SharedClusterCollection.Name)]
public sealed class NginxRoundRobinTests(SharedClusterFixture fixture, ITestOutputHelper output)
{
    [Fact]
    public Task Connect_TenClientsThroughNginx_LandOnBothFrontendsAndEverySeesAll() => fixture.Cluster.GuardAsync(output, async () =>
    {
        var nginx = fixture.Cluster.Nginx!;
        var room = Names.Unique("room");
        var clients = new List<WsClient>();
        try
        {
            for (var i = 0; i < 10; i++)
            {
                clients.Add(await WsClient.ConnectAsync(nginx.WsBase, Names.Unique("u" + i)));
            }

            var nodes = clients.GroupBy(c => c.Node).ToDictionary(g => g.Key, g => g.Count());
            output.WriteLine("Clients per front-end: " + string.Join(", ", nodes.Select(n => $"{n.Key}={n.Value}")));
            Assert.Equal(["fe-1", "fe-2"], nodes.Keys.Order(StringComparer.Ordinal));

            foreach (var client in clients)
            {
                await client.JoinAsync(room);
            }

            await Task.WhenAll(clients.Select((c, i) => c.PublishAsync(room, PublishLoop.Data("rr", i))));

            var expected = Enumerable.Range(0, 10).Select(i => PublishLoop.Data("rr", i)).Order(StringComparer.Ordinal).ToArray();
            foreach (var client in clients)
            {
                await client.WaitUntilAsync(_ => client.Messages(room).Count >= 10, what: "10 messages");
                var messages = client.Messages(room);
                Assert.Equal(expected, messages.Select(m => m.DataString).Order(StringComparer.Ordinal));
                Assert.Equal(Enumerable.Range(1, 10).Select(i => (long)i), messages.Select(m => m.Seq));
            }

            var present = await clients[0].PresentUsersAsync(room);
            Assert.Equal(clients.Select(c => c.User).Order(StringComparer.Ordinal), present);
        }
        finally
        {
            await Task.WhenAll(clients.Select(c => c.DisposeAsync().AsTask()));
        }
    });

    /// <summary>
    /// Metrics are per process: nginx answers /metrics itself (404, pointing at the front-ends' own
    /// ports) instead of handing each scrape to a different front-end. /health/live is nginx's own;
    /// /health/ready asks the front-ends.
    /// </summary>
    [Fact]
    public Task Nginx_MetricsNotForwarded_HealthAnswered() => fixture.Cluster.GuardAsync(output, async () =>
    {
        var nginx = fixture.Cluster.Nginx!;

        var metrics = new Uri(nginx.Healthz, "/metrics");
        Assert.Equal(404, await Health.StatusAsync(metrics));
        Assert.Contains("own port", await Health.BodyAsync(metrics), StringComparison.Ordinal);

        Assert.Equal(200, await Health.StatusAsync(new Uri(nginx.Healthz, "/health/live")));
        Assert.Equal(200, await Health.StatusAsync(new Uri(nginx.Healthz, "/health/ready")));

        // Straight to a front-end, /metrics is not that answer (whatever the front-end serves there).
        var direct = new Uri(fixture.Cluster.Frontends[0].Healthz, "/metrics");
        Assert.DoesNotContain("own port", await Health.BodyAsync(direct), StringComparison.Ordinal);
    });
}
