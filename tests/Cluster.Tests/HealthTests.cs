using System.Net;
using System.Text;
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

/// <summary>
/// A front-end through a cold start and a silo outage (issue 16): it serves HTTP from the start —
/// live, and not ready — refuses what needs the cluster with 503 until a silo is there, serves
/// once one is, is not ready while every silo is gone and ready again when one is back.
/// </summary>
public sealed class StartupOrderTests(ITestOutputHelper output)
{
    private static readonly HttpClient Http = new() { Timeout = TimeSpan.FromSeconds(10) };
    private static readonly TimeSpan Deadline = TimeSpan.FromSeconds(60);

    [Fact]
    public async Task Frontend_StartedBeforeAnySilo_LiveAtOnceReadyWithASiloNotReadyWhileAllAreGone()
    {
        await using var cluster = await BrokerCluster.StartAsync(silos: 0, frontends: 0, frontendSettings: ["--Logging:LogLevel:Broker.Frontend.Hosting.ClusterConnector=Debug"]);
        await cluster.GuardAsync(output, async () =>
        {
            var frontend = await cluster.AddFrontendAsync(waitHealthy: false);
            var live = new Uri(frontend.Healthz, "/health/live");
            var ready = new Uri(frontend.Healthz, "/health/ready");

            // Live as soon as Kestrel listens, with no silo anywhere.
            var listening = await Health.WaitStatusAsync(frontend, live, 200, Deadline);
            output.WriteLine($"fe-1 live {Ms.Format(listening)} after start, no silo");
            await frontend.WaitForOutputAsync("Waiting for the cluster", Deadline);
            Assert.Equal(503, await Health.StatusAsync(ready));
            Assert.Equal(503, await Health.StatusAsync(frontend.Healthz));
            await AssertRefusesWhatNeedsTheClusterAsync(frontend);

            // The chat page needs no cluster.
            using (var page = await Http.GetAsync(new Uri(frontend.Healthz, "/")))
            {
                Assert.Equal(HttpStatusCode.OK, page.StatusCode);
                Assert.Equal("text/html", page.Content.Headers.ContentType?.MediaType);
            }

            // Waiting is said once at Information, not once per attempt (one a second; each at Debug, enabled here).
            await frontend.WaitForOutputAsync("Cluster connection attempt 3 failed", Deadline);
            Assert.Equal(1, Occurrences(frontend.ReadLog(), "Waiting for the cluster"));
            Assert.DoesNotContain("Orleans.Messaging.GatewayManager", frontend.ReadLog(), StringComparison.Ordinal);

            // A silo: ready, and a client connects and publishes.
            var silo = await cluster.AddSiloAsync();
            var readyAfter = await Health.WaitStatusAsync(frontend, ready, 200, Deadline);
            output.WriteLine($"fe-1 ready {Ms.Format(readyAfter)} after the silo was");
            Assert.Equal(200, await Health.StatusAsync(frontend.Healthz));
            await ConnectAndPublishAsync(frontend, "early");
            using (var info = await Http.GetAsync(new Uri(frontend.Healthz, "/api/info")))
            {
                Assert.Equal(HttpStatusCode.OK, info.StatusCode);
            }

            // Every silo gone: not ready (still live), and what needs the cluster is refused again.
            await silo.TerminateAsync(TimeSpan.FromSeconds(30));
            var notReady = await Health.WaitStatusAsync(frontend, ready, 503, Deadline);
            output.WriteLine($"fe-1 not ready {Ms.Format(notReady)} after the last silo stopped");
            Assert.Equal(200, await Health.StatusAsync(live));
            await AssertRefusesWhatNeedsTheClusterAsync(frontend);

            // A silo back: ready again, and serving.
            await cluster.AddSiloAsync();
            var back = await Health.WaitStatusAsync(frontend, ready, 200, Deadline);
            output.WriteLine($"fe-1 ready again {Ms.Format(back)} after a silo was back");
            Assert.Equal(200, await Health.StatusAsync(live));
            await ConnectAndPublishAsync(frontend, "later");
        });
    }

    [Fact]
    public async Task Frontend_SigtermWhileWaitingForTheCluster_ExitsPromptly()
    {
        await using var cluster = await BrokerCluster.StartAsync(silos: 0, frontends: 0);
        await cluster.GuardAsync(output, async () =>
        {
            var frontend = await cluster.AddFrontendAsync(waitHealthy: false);
            await Health.WaitStatusAsync(frontend, new Uri(frontend.Healthz, "/health/live"), 200, Deadline);
            await frontend.WaitForOutputAsync("Waiting for the cluster", Deadline);

            var clock = System.Diagnostics.Stopwatch.StartNew();
            await frontend.SignalAsync("TERM");
            Assert.True(await frontend.WaitForExitAsync(TimeSpan.FromSeconds(5)), "The front-end did not exit within 5 s of SIGTERM while waiting for the cluster.\n" + frontend.Tail());
            output.WriteLine($"fe-1 exited {Ms.Format(clock.Elapsed)} after SIGTERM, code {frontend.ExitCode}");
            Assert.Equal(0, frontend.ExitCode);
            await frontend.WaitForOutputAsync("Stopped before the cluster was reached", TimeSpan.FromSeconds(5));
        });
    }

    /// <summary>A WebSocket upgrade gets 503 with Retry-After and a one-line reason; the server API 503 with its JSON error.</summary>
    private static async Task AssertRefusesWhatNeedsTheClusterAsync(FrontendProcess frontend)
    {
        var response = await RawUpgradeAsync(frontend.Port, "/chat?user=early");
        Assert.StartsWith("HTTP/1.1 503", response, StringComparison.Ordinal);
        Assert.Contains("Retry-After: 5", response, StringComparison.OrdinalIgnoreCase);
        Assert.Contains("cannot reach the cluster", response, StringComparison.Ordinal);

        using var api = await Http.GetAsync(new Uri(frontend.Healthz, "/api/info"));
        Assert.Equal(HttpStatusCode.ServiceUnavailable, api.StatusCode);
        using var error = JsonDocument.Parse(await api.Content.ReadAsStringAsync());
        Assert.Equal("unavailable", error.RootElement.GetProperty("code").GetString());
        Assert.False(string.IsNullOrEmpty(error.RootElement.GetProperty("error").GetString()));
    }

    private static async Task ConnectAndPublishAsync(FrontendProcess frontend, string name)
    {
        await using var client = await WsClient.ConnectAsync(frontend.WsBase, Names.Unique(name));
        var room = Names.Unique("room");
        await client.JoinAsync(room);
        await client.PublishAsync(room, name);
        await client.WaitForMessageAsync(room, name);
    }

    /// <summary>A WebSocket upgrade request on a raw socket (the whole answer, head and body, is read: the connection closes after it).</summary>
    private static async Task<string> RawUpgradeAsync(int port, string target)
    {
        using var tcp = new System.Net.Sockets.TcpClient();
        using var timeout = new CancellationTokenSource(TimeSpan.FromSeconds(10));
        await tcp.ConnectAsync(IPAddress.Loopback, port, timeout.Token);
        var stream = tcp.GetStream();
        var request = $"GET {target} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nConnection: Upgrade, close\r\nUpgrade: websocket\r\n"
            + "Sec-WebSocket-Version: 13\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\r\n";
        await stream.WriteAsync(Encoding.ASCII.GetBytes(request), timeout.Token);
        using var reader = new StreamReader(stream, Encoding.UTF8);
        return await reader.ReadToEndAsync(timeout.Token);
    }

    private static int Occurrences(string text, string value)
    {
        var count = 0;
        for (var at = text.IndexOf(value, StringComparison.Ordinal); at >= 0; at = text.IndexOf(value, at + value.Length, StringComparison.Ordinal))
        {
            count++;
        }

        return count;
    }
}
