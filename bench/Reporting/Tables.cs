using System.Globalization;
using System.Text;
using System.Text.Json;
using System.Text.Json.Serialization;
using Broker.Bench.Core;
using Broker.Bench.Workloads;

namespace Broker.Bench.Reporting;

/// <summary>Renders results as Markdown tables (stdout) or as one JSON object.</summary>
public static class Tables
{
    public static readonly JsonSerializerOptions Json = new(JsonSerializerDefaults.Web)
    {
        WriteIndented = true,
        NumberHandling = JsonNumberHandling.AllowNamedFloatingPointLiterals,
    };

    private static readonly CultureInfo Inv = CultureInfo.InvariantCulture;

    public static string ToJson<T>(T result) => JsonSerializer.Serialize(result, Json);

    public static string Render(FanoutResult r)
    {
        var t = new Table($"fanout ({r.Label}): {r.Rooms} rooms × {r.Members} members over {r.Urls.Count} URL(s), {r.Publishers} publishers"
            + (r.PublisherUrls.Count > 0 ? $" on {string.Join(", ", r.PublisherUrls)}" : string.Empty)
            + $", {Fmt.N(r.Rate)} publishes/s, {r.Payload} B, {Fmt.N(r.MeasuredSeconds)} s measured after {Fmt.N(r.WarmupSeconds)} s warm-up, {r.Connections} connections");
        t.Add("published/s", Fmt.N(r.PublishedPerSecond));
        t.Add("delivered/s", Fmt.N(r.DeliveredPerSecond));
        t.Add("expected / received deliveries", $"{r.ExpectedDeliveries:#,0} / {r.ReceivedDeliveries:#,0} (missing {r.MissingDeliveries:#,0})");
        t.Add("out-of-order / duplicates / publisher-order violations", $"{r.OutOfOrder} / {r.Duplicates} / {r.PublisherOrderViolations}");
        t.Add("latency p50 / p90 / p99 / p99.9 / max", Lat(r.Latency));
        t.Add("ack latency p50 / p90 / p99 / p99.9 / max", Lat(r.AckLatency));
        t.Add("scheduler lateness p50 / p99 / max", $"{Fmt.Ms(r.SchedulerLateness.P50Ms)} / {Fmt.Ms(r.SchedulerLateness.P99Ms)} / {Fmt.Ms(r.SchedulerLateness.MaxMs)}");
        t.Add("publishes acked / rejected (measured)", $"{r.Acked:#,0} / {r.Rejected:#,0} of {r.Published:#,0}");
        t.Add("errors by code", Fmt.Counts(r.Errors));
        t.Add("closes by the server", Fmt.Counts(r.Closes));
        t.Add("unexpected frames", r.UnexpectedFrames.ToString(Inv));
        AddCpu(t, r.Cpu);
        t.Add("deliveries per server CPU-second", Fmt.N(r.DeliveriesPerServerCpuSecond));
        t.Add("server CPU µs per delivery (user only)", $"{r.ServerCpuMicrosPerDelivery:0.00} ({r.ServerUserMicrosPerDelivery:0.00})");
        return t.ToString() + Processes(r.Cpu) + Warning(r.Cpu);
    }

    public static string Render(EchoResult r)
    {
        var t = new Table($"echo: {r.Connections} connections over {r.Urls.Count} URL(s), closed loop {r.Kind}, {r.Payload} B, {Fmt.N(r.MeasuredSeconds)} s measured after {Fmt.N(r.WarmupSeconds)} s warm-up");
        t.Add("round trips/s", Fmt.N(r.RoundTripsPerSecond));
        t.Add("latency p50 / p90 / p99 / p99.9 / max", Lat(r.Latency));
        t.Add("errors by code", Fmt.Counts(r.Errors));
        t.Add("closes by the server", Fmt.Counts(r.Closes));
        AddCpu(t, r.Cpu);
        t.Add("round trips per server CPU-second", Fmt.N(r.RoundTripsPerServerCpuSecond));
        t.Add("server CPU µs per round trip (user only)", $"{r.ServerCpuMicrosPerRoundTrip:0.00} ({r.ServerUserMicrosPerRoundTrip:0.00})");
        return t.ToString() + Processes(r.Cpu) + Warning(r.Cpu);
    }

    public static string Render(ConnsResult r)
    {
        var t = new Table($"conns: {r.Requested:#,0} idle connections at {Fmt.N(r.Rate)}/s over {r.Urls.Count} URL(s)"
            + (r.SourceIps.Count > 0 ? $" from {string.Join(", ", r.SourceIps)}" : string.Empty) + $", held {Fmt.N(r.HoldSeconds)} s");
        t.Add("opened / failed", $"{r.Opened:#,0} / {r.Failed:#,0} in {Fmt.N(r.OpenSeconds)} s" + (r.Failures.Count > 0 ? $" ({Fmt.Counts(r.Failures)})" : string.Empty));
        t.Add("still open after the hold", r.OpenAfterHold.ToString("#,0", Inv));
        t.Add("connect (TCP + upgrade) p50 / p90 / p99 / p99.9 / max", Lat(r.ConnectLatency));
        t.Add("connect to first frame (welcome) p50 / p90 / p99 / p99.9 / max", Lat(r.WelcomeLatency));
        t.Add("closes by the server", Fmt.Counts(r.Closes));
        t.Add("server RSS growth per connection (all processes; a process that shrank counts 0)", $"{r.RssPerConnectionKb:0.00} KiB");
        foreach (var p in r.Rss)
        {
            t.Add($"RSS pid {p.Pid} {p.Name}", $"{Kb(p.BeforeKb)} → {Kb(p.OpenKb)} → {Kb(p.HeldKb)} ({p.PerConnectionKb:0.00} KiB/conn)");
        }

        AddCpu(t, r.Cpu);
        t.Add("server CPU µs per connection", $"{r.ServerCpuMicrosPerConnection:0.0}");
        return t.ToString() + Warning(r.Cpu);
    }

    public static string Render(CrossnodeResult r)
    {
        var t = new Table($"crossnode: members on {string.Join(", ", r.CrossNode.Urls)}; publishers on {string.Join(", ", r.SameNode.PublisherUrls)} (same node) vs {string.Join(", ", r.CrossNode.PublisherUrls)} (cross node)");
        t.Add("same-node latency p50 / p90 / p99 / p99.9 / max", Lat(r.SameNode.Latency));
        t.Add("cross-node latency p50 / p90 / p99 / p99.9 / max", Lat(r.CrossNode.Latency));
        t.Add("added by the extra hop: p50 / p90 / p99 / mean", $"{r.AddedP50Ms:0.000} / {r.AddedP90Ms:0.000} / {r.AddedP99Ms:0.000} / {r.AddedMeanMs:0.000} ms");
        t.Add("delivered/s same / cross", $"{Fmt.N(r.SameNode.DeliveredPerSecond)} / {Fmt.N(r.CrossNode.DeliveredPerSecond)}");
        t.Add("missing deliveries same / cross", $"{r.SameNode.MissingDeliveries} / {r.CrossNode.MissingDeliveries}");
        t.Add("out-of-order + duplicates same / cross", $"{r.SameNode.OutOfOrder + r.SameNode.Duplicates} / {r.CrossNode.OutOfOrder + r.CrossNode.Duplicates}");
        t.Add("errors same / cross", $"{Fmt.Counts(r.SameNode.Errors)} / {Fmt.Counts(r.CrossNode.Errors)}");
        t.Add("deliveries per server CPU-second same / cross", $"{Fmt.N(r.SameNode.DeliveriesPerServerCpuSecond)} / {Fmt.N(r.CrossNode.DeliveriesPerServerCpuSecond)}");
        return t.ToString() + Warning(r.SameNode.Cpu) + Warning(r.CrossNode.Cpu);
    }

    private static void AddCpu(Table t, CpuReport c)
    {
        t.Add("server CPU (utime+stime / utime)", $"{c.ServerCpuSeconds:0.00} s / {c.ServerUserSeconds:0.00} s over {c.WallSeconds:0.0} s = {c.ServerCores:0.00} cores");
        t.Add("tool CPU (utime+stime / utime)", $"{c.ToolCpuSeconds:0.00} s / {c.ToolUserSeconds:0.00} s = {c.ToolCores:0.00} cores");
        t.Add("other processes' CPU (the machine's busy time minus servers and tool)", c.OtherCores is { } other ? $"{other:0.00} cores" : "—");
    }

    private static string Processes(CpuReport c)
    {
        if (c.Servers.Count == 0)
        {
            return "\n(no --pids: server CPU not measured)\n";
        }

        var sb = new StringBuilder("\n| pid | process | CPU s | user s | system s |\n|---:|---|---:|---:|---:|\n");
        foreach (var s in c.Servers)
        {
            sb.Append(Inv, $"| {s.Pid} | {s.Name} | {s.CpuSeconds:0.00} | {s.UserSeconds:0.00} | {s.SystemSeconds:0.00} |\n");
        }

        return sb.ToString();
    }

    private static string Warning(CpuReport c) => c.Warning is { } w ? "\n" + w + "\n" : string.Empty;

    private static string Kb(long? kb) => kb is { } v ? $"{v / 1024.0:0.0} MiB" : "?";

    public static string Lat(LatencySummary l) =>
        $"{Fmt.Ms(l.P50Ms)} / {Fmt.Ms(l.P90Ms)} / {Fmt.Ms(l.P99Ms)} / {Fmt.Ms(l.P999Ms)} / {Fmt.Ms(l.MaxMs)}";
}

/// <summary>A two-column Markdown table with a title line.</summary>
internal sealed class Table(string title)
{
    private readonly List<(string Label, string Value)> _rows = [];

    public void Add(string label, string value) => _rows.Add((label, value));

    public override string ToString()
    {
        var sb = new StringBuilder();
        sb.Append(title).Append("\n\n");
        var w = Math.Max(6, _rows.Max(r => r.Label.Length));
        sb.Append("| ").Append("figure".PadRight(w)).Append(" | value |\n");
        sb.Append("|").Append(new string('-', w + 2)).Append("|---|\n");
        foreach (var (label, value) in _rows)
        {
            sb.Append("| ").Append(label.PadRight(w)).Append(" | ").Append(value).Append(" |\n");
        }

        return sb.ToString();
    }
}
