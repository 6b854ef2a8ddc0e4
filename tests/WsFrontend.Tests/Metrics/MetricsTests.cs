using System.Net;
using System.Text;
using Broker.Frontend.Tests.Infrastructure;

namespace Broker.Frontend.Tests.Metrics;

/// <summary>
/// The broker's instruments are process-wide (one static meter): these tests run alone
/// (after the parallel ones) and compare two readings of /metrics around their own traffic.
/// </summary>
[CollectionDefinition(Name, DisableParallelization = true)]
public sealed class MetricsCollection
{
    public const string Name = "metrics (alone)";
}

[Collection(MetricsCollection.Name)]
public sealed class MetricsTests
{
    private static readonly TimeSpan Timeout = TimeSpan.FromSeconds(15);

    [Fact]
    public async Task Metrics_AfterJoinsPublishesAndCloses_CountersMoveByTheTraffic()
    {
        const int clients = 3;
        const int messages = 4;
        await using var server = await BrokerServer.StartAsync();
        using var http = new HttpClient();
        var metrics = new Uri(server.HttpBase, "metrics");
        var before = await PrometheusScrape.ReadAsync(http, metrics);

        var room = BrokerFixture.UniqueRoom("metrics");
        var members = new List<TestClient>();
        try
        {
            for (var i = 0; i < clients; i++)
            {
                var client = await server.ConnectAsync();
                members.Add(client);
                Assert.Equal("joined", (await client.JoinAsync(room)).GetProperty("type").GetString());
            }

            for (var m = 0; m < messages; m++)
            {
                Assert.Equal("ack", (await members[0].PublishAsync(room, $"m{m}")).GetProperty("type").GetString());
            }

            // The others see every message (the publisher's copies went by while it read its acks).
            foreach (var member in members.Skip(1))
            {
                for (var m = 0; m < messages; m++)
                {
                    var text = $"m{m}";
                    await member.WaitForAsync(f => f.GetProperty("type").GetString() == "message" && f.GetProperty("data").GetString() == text, Timeout);
                }
            }

            var ns = ("namespace", "default");
            var after = await WaitForAsync(http, metrics, s => Delta(before, s, "broker_deliveries_total", ns) >= clients * messages);
            Assert.Equal(clients, Delta(before, after, "broker_connections", ns));
            Assert.Equal(clients, Delta(before, after, "broker_connections_opened_total", ns, ("transport", "pipe")));
            Assert.Equal(clients, Delta(before, after, "broker_frames_received_total", ("type", "join")));
            Assert.Equal(messages, Delta(before, after, "broker_frames_received_total", ("type", "publish")));
            Assert.Equal(clients * messages, Delta(before, after, "broker_deliveries_total", ns));
            Assert.Equal(clients, Delta(before, after, "broker_frames_sent_total", ("type", "welcome")));
            Assert.Equal(clients, Delta(before, after, "broker_frames_sent_total", ("type", "joined")));
            Assert.Equal(messages, Delta(before, after, "broker_frames_sent_total", ("type", "ack")));
            Assert.Equal(clients * messages, Delta(before, after, "broker_frames_sent_total", ("type", "message")));
            Assert.Equal(messages, Delta(before, after, "broker_publish_duration_seconds_count", ns));
            Assert.Equal(messages, Delta(before, after, "broker_publish_duration_seconds_bucket", ns, ("le", "+Inf")));
            Assert.Equal(messages, Delta(before, after, "broker_delivery_duration_seconds_count", ns));

            // The co-hosted silo's instruments are on the same page.
            Assert.Equal(messages, Delta(before, after, "broker_room_commits_total", ns));
            Assert.Equal(messages, Delta(before, after, "broker_room_commit_duration_seconds_count", ("store", "memory")));
            Assert.True(after.Sum("broker_rooms_active") >= 1, "broker_rooms_active should count the room.\n" + after.Text);
            Assert.True(Delta(before, after, "broker_room_fanout_total") >= 1);
            Assert.True(Delta(before, after, "broker_frontend_calls_total") >= 1, "broker_frontend_calls_total should count the calls that carried the deliveries.\n" + after.Text);

            // And the platform's meters: Orleans', Kestrel's, the runtime's.
            Assert.True(after.Has("orleans_app_requests_latency_milliseconds_count"), "no Orleans metric on the page");
            Assert.True(after.Has("kestrel_active_connections"), "no Kestrel metric on the page");
            Assert.True(after.Has("dotnet_gc_collections_total"), "no runtime metric on the page");

            // A frame that is not JSON: an error by code, an invalid frame, a client event.
            await members[1].SendTextAsync("this is not json");
            var error = await members[1].WaitForTypeAsync("error", Timeout);
            Assert.Equal("bad_request", error.GetProperty("code").GetString());
            var afterBad = await WaitForAsync(http, metrics, s => Delta(before, s, "broker_errors_total", ("code", "bad_request")) >= 1);
            Assert.Equal(1, Delta(before, afterBad, "broker_errors_total", ("code", "bad_request")));
            Assert.Equal(1, Delta(before, afterBad, "broker_frames_received_total", ("type", "invalid")));
            Assert.Equal(1, Delta(before, afterBad, "broker_frames_sent_total", ("type", "error")));
            Assert.Equal(1, Delta(before, afterBad, "broker_client_events_total", ("event", "bad_request")));

            // The server API, counted by operation and status.
            using var publish = await http.PostAsync(new Uri(server.HttpBase, $"api/default/rooms/{room}/publish"), new StringContent("\"from the api\"", Encoding.UTF8, "application/json"));
            Assert.Equal(HttpStatusCode.OK, publish.StatusCode);
            using var unknown = await http.GetAsync(new Uri(server.HttpBase, "api/nosuchnamespace/rooms/x/presence"));
            Assert.Equal(HttpStatusCode.NotFound, unknown.StatusCode);
            var afterApi = await WaitForAsync(http, metrics, s => Delta(before, s, "broker_api_requests_total") >= 2);
            Assert.Equal(1, Delta(before, afterApi, "broker_api_requests_total", ("operation", "publish"), ("status", "200")));
            Assert.Equal(1, Delta(before, afterApi, "broker_api_requests_total", ("operation", "presence"), ("status", "404")));
        }
        finally
        {
            foreach (var member in members)
            {
                await member.CloseAsync();
                await member.DisposeAsync();
            }
        }

        // Closed by the clients (1000): the gauge is back where it was.
        var closed = await WaitForAsync(http, metrics, s => Delta(before, s, "broker_connections_closed_total") >= clients);
        Assert.Equal(0, Delta(before, closed, "broker_connections", ("namespace", "default")));
        Assert.Equal(clients, Delta(before, closed, "broker_connections_closed_total", ("namespace", "default"), ("code", "1000")));
    }

    [Fact]
    public async Task Metrics_FramesOverTheRateLimit_CountedAsRateLimitedErrorsAndEvents()
    {
        await using var server = await BrokerServer.StartAsync(new Dictionary<string, string?>
        {
            ["Broker:RateLimitPerSecond"] = "1",
            ["Broker:RateLimitBurst"] = "2",
        });
        using var http = new HttpClient();
        var metrics = new Uri(server.HttpBase, "metrics");
        var before = await PrometheusScrape.ReadAsync(http, metrics);
        await using var client = await server.ConnectAsync();

        // A burst of 2 is taken; the rest of 5 frames sent at once is over the limit (1 per second
        // refills at most one more while they are read).
        for (var i = 0; i < 5; i++)
        {
            await client.SendTextAsync("{\"type\":\"ping\",\"id\":" + (i + 1).ToString(System.Globalization.CultureInfo.InvariantCulture) + "}");
        }

        var limited = 0;
        for (var i = 0; i < 5; i++)
        {
            var reply = await client.NextAsync(Timeout);
            if (reply.GetProperty("type").GetString() == "error")
            {
                Assert.Equal("rate_limited", reply.GetProperty("code").GetString());
                limited++;
            }
        }

        Assert.InRange(limited, 2, 3);
        var after = await WaitForAsync(http, metrics, s => Delta(before, s, "broker_errors_total", ("code", "rate_limited")) >= limited);
        Assert.Equal(limited, Delta(before, after, "broker_errors_total", ("code", "rate_limited")));
        Assert.Equal(limited, Delta(before, after, "broker_client_events_total", ("event", "rate_limited")));
        Assert.Equal(5 - limited, Delta(before, after, "broker_frames_sent_total", ("type", "pong")));
        Assert.Equal(5, Delta(before, after, "broker_frames_received_total", ("type", "ping")));
    }

    [Fact]
    public async Task Metrics_Disabled_NoMetricsPageAndNoNamespaceThere()
    {
        await using var server = await BrokerServer.StartAsync(new Dictionary<string, string?> { ["Metrics:Enabled"] = "false" });
        using var http = new HttpClient();
        using var response = await http.GetAsync(new Uri(server.HttpBase, "metrics"));
        Assert.Equal(HttpStatusCode.NotFound, response.StatusCode);
        Assert.DoesNotContain("broker_", await response.Content.ReadAsStringAsync(), StringComparison.Ordinal);
    }

    [Fact]
    public async Task Metrics_InvalidSwitch_RefusedAtStart()
    {
        var failure = await Assert.ThrowsAnyAsync<Exception>(() => BrokerServer.StartAsync(new Dictionary<string, string?> { ["Metrics:Enabled"] = "sometimes" }));
        Assert.Contains("Metrics:Enabled", failure.ToString(), StringComparison.Ordinal);
    }

    [Fact]
    public async Task Options_NamespaceCalledMetrics_Refused()
    {
        var failure = await Assert.ThrowsAnyAsync<Exception>(() => BrokerServer.StartAsync(new Dictionary<string, string?> { ["Broker:Namespaces:metrics:Enabled"] = "true" }));
        Assert.Contains("metrics", failure.Message, StringComparison.Ordinal);
    }

    private static double Delta(PrometheusScrape before, PrometheusScrape after, string name, params (string Key, string Value)[] labels) =>
        after.Sum(name, labels) - before.Sum(name, labels);

    /// <summary>Reads /metrics until <paramref name="ready"/> holds (the counters are updated just after the frames go out), or the timeout.</summary>
    private static async Task<PrometheusScrape> WaitForAsync(HttpClient http, Uri metrics, Func<PrometheusScrape, bool> ready)
    {
        var deadline = DateTime.UtcNow + Timeout;
        while (true)
        {
            var scrape = await PrometheusScrape.ReadAsync(http, metrics);
            if (ready(scrape) || DateTime.UtcNow > deadline)
            {
                return scrape;
            }

            await Task.Delay(50);
        }
    }
}
