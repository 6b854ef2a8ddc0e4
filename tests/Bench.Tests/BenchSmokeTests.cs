using System.CommandLine;
using System.Text.Json;
using Broker.Bench.Reporting;
using Broker.Frontend.Tests.Infrastructure;
using Broker.Bench.Workloads;

namespace Broker.Bench.Tests;

/// <summary>
/// A tiny run of the load tool against an in-process broker, so the tool never rots: it must
/// connect, join, publish, see every delivery once and in order, and print parseable JSON.
/// These are smoke tests, not performance tests: no timing is asserted.
/// </summary>
public sealed class BenchSmokeTests : IAsyncLifetime
{
    private static readonly int[] Self = [Environment.ProcessId];
    private BrokerServer _server = null!;

    // A closed echo loop runs faster than the default per-connection rate limit (500 frames/s).
    public async Task InitializeAsync() =>
        _server = await BrokerServer.StartAsync(new Dictionary<string, string?> { ["Broker:RateLimitPerSecond"] = "0" });

    public async Task DisposeAsync() => await _server.DisposeAsync();

    [Fact]
    public async Task Fanout_delivers_every_message_once_and_in_order()
    {
        var result = await FanoutRunner.RunAsync(new FanoutOptions
        {
            Urls = [_server.Ws(), _server.Ws()],
            Rooms = 2,
            Members = 3,
            Publishers = 2,
            Rate = 40,
            Payload = 64,
            Warmup = TimeSpan.FromSeconds(0.5),
            Duration = TimeSpan.FromSeconds(2),
            Pids = Self,
        });

        Assert.True(result.Published > 0, "nothing was published");
        Assert.True(result.ExpectedDeliveries > 0);
        Assert.Equal(result.ExpectedDeliveries, result.ReceivedDeliveries);
        Assert.Equal(result.Published * 3, result.ExpectedDeliveries);
        Assert.Equal(result.Published, result.Acked);
        Assert.Equal(0, result.OutOfOrder);
        Assert.Equal(0, result.Duplicates);
        Assert.Equal(0, result.PublisherOrderViolations);
        Assert.Empty(result.Errors);
        Assert.Empty(result.Closes);
        Assert.True(result.Latency.Count > 0);
        Assert.True(result.Cpu.ServerCpuSeconds >= 0);

        var json = Tables.ToJson(result);
        using var doc = JsonDocument.Parse(json);
        Assert.Equal("fanout", doc.RootElement.GetProperty("workload").GetString());
        Assert.Equal(result.ReceivedDeliveries, doc.RootElement.GetProperty("receivedDeliveries").GetInt64());
        var back = JsonSerializer.Deserialize<FanoutResult>(json, Tables.Json)!;
        Assert.Equal(result.ExpectedDeliveries, back.ExpectedDeliveries);
        Assert.Contains("expected / received deliveries", Tables.Render(result), StringComparison.Ordinal);
    }

    [Fact]
    public async Task Echo_counts_round_trips()
    {
        var result = await EchoRunner.RunAsync(new EchoOptions
        {
            Urls = [_server.Ws()],
            Connections = 4,
            Warmup = TimeSpan.FromSeconds(0.5),
            Duration = TimeSpan.FromSeconds(2),
        });

        Assert.True(result.RoundTrips > 0);
        Assert.True(result.Latency.Count > 0);
        Assert.Empty(result.Errors);
        Assert.Empty(result.Closes);
        using var doc = JsonDocument.Parse(Tables.ToJson(result));
        Assert.Equal("echo", doc.RootElement.GetProperty("workload").GetString());
    }

    [Fact]
    public async Task Cli_fanout_prints_one_json_object()
    {
        var output = new StringWriter();
        var error = new StringWriter();
        var exit = await Program.BuildCommand()
            .Parse(["fanout", "--url", _server.Ws().ToString(), "--rooms", "1", "--members", "2", "--publishers", "1",
                "--rate", "20/s", "--duration", "2s", "--warmup", "500ms", "--json", "--pids", Environment.ProcessId.ToString(System.Globalization.CultureInfo.InvariantCulture)])
            .InvokeAsync(new InvocationConfiguration { Output = output, Error = error });

        Assert.True(exit == 0, error.ToString());
        using var doc = JsonDocument.Parse(output.ToString());
        var root = doc.RootElement;
        Assert.Equal(root.GetProperty("expectedDeliveries").GetInt64(), root.GetProperty("receivedDeliveries").GetInt64());
        Assert.True(root.GetProperty("receivedDeliveries").GetInt64() > 0);
        Assert.Equal(0, root.GetProperty("outOfOrder").GetInt64());
        Assert.Equal(0, root.GetProperty("duplicates").GetInt64());
        Assert.Contains("measure", error.ToString(), StringComparison.Ordinal); // the progress line
    }
}
