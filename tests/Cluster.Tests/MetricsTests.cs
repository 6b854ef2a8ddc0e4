using System.Globalization;
using System.Text.RegularExpressions;
using Broker.Cluster.Tests.Infrastructure;

namespace Broker.Cluster.Tests;

/// <summary>/metrics on real silo processes (their health port) and cluster-mode front-ends, after traffic.</summary>
[Collection(SharedClusterCollection.Name)]
public sealed partial class MetricsTests(SharedClusterFixture fixture, ITestOutputHelper output)
{
    private static readonly HttpClient s_http = new() { Timeout = TimeSpan.FromSeconds(5) };

    [Fact]
    public Task Metrics_AfterAJoinAndAPublish_SilosShowRoomsAndOrleansFrontendShowsConnections() => fixture.Cluster.GuardAsync(output, async () =>
    {
        var frontend = fixture.Cluster.Frontends[0];
        await using var client = await WsClient.ConnectAsync(frontend.WsBase, Names.Unique("metrics"));
        var room = Names.Unique("room");
        await client.JoinAsync(room);
        await client.PublishAsync(room, "counted");
        await client.WaitForMessageAsync(room, "counted");

        // The room is active on one of the silos; each silo's page has Orleans' meters too.
        var rooms = 0.0;
        var commits = 0.0;
        foreach (var silo in fixture.Cluster.Silos)
        {
            var page = await s_http.GetStringAsync(new Uri(silo.Healthz, "/metrics"));
            Assert.Matches(OrleansSeries(), page);
            Assert.DoesNotContain("broker_connections", page, StringComparison.Ordinal);
            rooms += MetricsPage.Sum(page, "broker_rooms_active");
            commits += MetricsPage.Sum(page, "broker_room_commits_total");
        }

        output.WriteLine($"silos: broker_rooms_active {rooms}, broker_room_commits_total {commits}");
        Assert.True(rooms >= 1, "no silo counts the room in broker_rooms_active");
        Assert.True(commits >= 1, "no silo counts the commit in broker_room_commits_total");

        var frontendPage = await s_http.GetStringAsync(new Uri(frontend.Healthz, "/metrics"));
        Assert.True(MetricsPage.Sum(frontendPage, "broker_connections") >= 1, "the front-end does not count its connection");
        Assert.True(MetricsPage.Sum(frontendPage, "broker_deliveries_total") >= 1, "the front-end does not count the delivery");
        Assert.Contains("broker_publish_duration_seconds_bucket", frontendPage, StringComparison.Ordinal);
        Assert.DoesNotContain("broker_rooms_active", frontendPage, StringComparison.Ordinal);
    });


    [GeneratedRegex(@"(?m)^orleans_\w+")]
    private static partial Regex OrleansSeries();
}
