using System.Globalization;
using System.Text;
using System.Text.Json;
using Broker.Bench.Workloads;

namespace Broker.Bench.Reporting;

/// <summary>One line of the side-by-side table.</summary>
public sealed record ComparisonRow(string Workload, string Figure, double? Ours, double? Baseline, double? Ratio, string Better);

/// <summary>
/// Reads the JSON results of the same workloads run against two servers (fanout.json,
/// saturate.json, smallrooms.json, bigrooms.json, cold.json, echo.json, conns.json, crossnode.json in each directory) and lines them up with ratios ours/baseline.
/// </summary>
public static class Comparison
{
    private static readonly CultureInfo Inv = CultureInfo.InvariantCulture;

    public static IReadOnlyList<ComparisonRow> Build(string oursDir, string baselineDir)
    {
        var rows = new List<ComparisonRow>();
        void Add<T>(string file, Action<Action<string, Func<T, double>, string>> figures)
            where T : class
        {
            var ours = Load<T>(Path.Combine(oursDir, file));
            var baseline = Load<T>(Path.Combine(baselineDir, file));
            if (ours is null && baseline is null)
            {
                return;
            }

            var workload = Path.GetFileNameWithoutExtension(file);
            figures((figure, get, better) =>
            {
                // NaN: not measured in that run (e.g. other processes' cores in a result from before it existed).
                double? a = ours is null || double.IsNaN(get(ours)) ? null : get(ours);
                double? b = baseline is null || double.IsNaN(get(baseline)) ? null : get(baseline);
                // A ratio of two near-zero figures (the added cross-node latency, other processes' cores) means nothing.
                double? ratio = a is { } x && b is { } y && y != 0 && better != "0"
                    && !figure.StartsWith("added", StringComparison.Ordinal) && !figure.StartsWith("other", StringComparison.Ordinal) ? Math.Round(x / y, 3) : null;
                rows.Add(new ComparisonRow(workload, figure, a, b, ratio, better));
            });
        }

        void FanoutFigures(Action<string, Func<FanoutResult, double>, string> f)
        {
            f("deliveries per server CPU-second", r => r.DeliveriesPerServerCpuSecond, "higher");
            f("server user CPU µs per delivery", r => r.ServerUserMicrosPerDelivery, "lower");
            f("server CPU µs per delivery", r => r.ServerCpuMicrosPerDelivery, "lower");
            f("server cores used", r => r.Cpu.ServerCores, "lower");
            f("delivered/s", r => r.DeliveredPerSecond, "same");
            f("latency p50 ms", r => r.Latency.P50Ms, "lower");
            f("latency p99 ms", r => r.Latency.P99Ms, "lower");
            f("latency max ms", r => r.Latency.MaxMs, "lower");
            f("missing deliveries", r => r.MissingDeliveries, "0");
            f("out-of-order + duplicates", r => r.OutOfOrder + r.Duplicates, "0");
            f("errors", r => r.Errors.Values.Sum(), "0");
            f("tool cores", r => r.Cpu.ToolCores, "< 0.8");
            f("other processes' cores", r => r.Cpu.OtherCores ?? double.NaN, "< 0.2");
        }

        // fanout: the main workload; saturate: the same offered at twice the rate (the box
        // saturates); smallrooms: 200 rooms × 10 members, ten times the publishes for the same
        // deliveries; bigrooms: 2 rooms × 1,000 members.
        // cold: fanout from the first second after the servers answer their health checks.
        Add<FanoutResult>("cold.json", FanoutFigures);
        Add<FanoutResult>("fanout.json", FanoutFigures);
        Add<FanoutResult>("saturate.json", FanoutFigures);
        Add<FanoutResult>("smallrooms.json", FanoutFigures);
        Add<FanoutResult>("bigrooms.json", FanoutFigures);
        Add<EchoResult>("echo.json", f =>
        {
            f("round trips per server CPU-second", r => r.RoundTripsPerServerCpuSecond, "higher");
            f("server user CPU µs per round trip", r => r.ServerUserMicrosPerRoundTrip, "lower");
            f("round trips/s", r => r.RoundTripsPerSecond, "higher");
            f("latency p50 ms", r => r.Latency.P50Ms, "lower");
            f("latency p99 ms", r => r.Latency.P99Ms, "lower");
            f("errors", r => r.Errors.Values.Sum(), "0");
            f("tool cores", r => r.Cpu.ToolCores, "< 0.8");
            f("other processes' cores", r => r.Cpu.OtherCores ?? double.NaN, "< 0.2");
        });
        Add<ConnsResult>("conns.json", f =>
        {
            f("server RSS KiB per idle connection, busiest process", r => r.Rss.Count > 0 ? r.Rss.Max(p => p.PerConnectionKb) : 0, "lower");
            f("server RSS KiB per idle connection, all processes", r => ConnsRunner.RssPerConnection(r.Rss, r.Opened), "lower");
            f("server CPU µs per connection", r => r.ServerCpuMicrosPerConnection, "lower");
            f("connect p50 ms", r => r.ConnectLatency.P50Ms, "lower");
            f("connect p99 ms", r => r.ConnectLatency.P99Ms, "lower");
            f("welcome p99 ms", r => r.WelcomeLatency.P99Ms, "lower");
            f("opened", r => r.Opened, "same");
            f("failed + closed during hold", r => r.Failed + r.Closes.Values.Sum(), "0");
        });
        Add<CrossnodeResult>("crossnode.json", f =>
        {
            f("same-node p50 ms", r => r.SameNode.Latency.P50Ms, "lower");
            f("same-node p99 ms", r => r.SameNode.Latency.P99Ms, "lower");
            f("cross-node p50 ms", r => r.CrossNode.Latency.P50Ms, "lower");
            f("cross-node p99 ms", r => r.CrossNode.Latency.P99Ms, "lower");
            f("added p50 ms", r => r.AddedP50Ms, "lower");
            f("added p99 ms", r => r.AddedP99Ms, "lower");
            f("cross-node deliveries per server CPU-second", r => r.CrossNode.DeliveriesPerServerCpuSecond, "higher");
            f("missing deliveries (both runs)", r => r.SameNode.MissingDeliveries + r.CrossNode.MissingDeliveries, "0");
        });
        return rows;
    }

    public static string Render(IReadOnlyList<ComparisonRow> rows, string oursName = "ours", string baselineName = "baseline")
    {
        var sb = new StringBuilder();
        sb.Append(Inv, $"| workload | figure | {oursName} | {baselineName} | {oursName}/{baselineName} | better |\n");
        sb.Append("|---|---|---:|---:|---:|---|\n");
        foreach (var r in rows)
        {
            sb.Append(Inv, $"| {r.Workload} | {r.Figure} | {Num(r.Ours)} | {Num(r.Baseline)} | {(r.Ratio is { } x ? x.ToString("0.00", Inv) : "—")} | {r.Better} |\n");
        }

        return sb.ToString();
    }

    private static string Num(double? v) => v switch
    {
        null => "—",
        { } x when Math.Abs(x) >= 1000 || x == Math.Round(x) => x.ToString("#,0", Inv),
        { } x when Math.Abs(x) >= 10 => x.ToString("0.0", Inv),
        { } x => x.ToString("0.000", Inv),
    };

    private static T? Load<T>(string path)
        where T : class
    {
        if (!File.Exists(path))
        {
            return null;
        }

        try
        {
            return JsonSerializer.Deserialize<T>(File.ReadAllText(path), Tables.Json);
        }
        catch (JsonException ex)
        {
            Console.Error.WriteLine($"warning: {path} is not a result of this tool ({ex.Message}); skipped.");
            return null;
        }
    }
}
