using Broker.Bench.Core;

namespace Broker.Bench.Workloads;

public sealed record CrossnodeOptions
{
    /// <summary>Front-end the publishers connect to in the cross-node run.</summary>
    public required Uri PublisherUrl { get; init; }

    /// <summary>Front-end every member connects to (both runs).</summary>
    public required Uri MemberUrl { get; init; }

    /// <summary>Front-end the publishers connect to in the same-node run; default the member URL.</summary>
    public Uri? SameNodeUrl { get; init; }

    public int Rooms { get; init; } = 10;
    public int Members { get; init; } = 100;
    public int Publishers { get; init; } = 10;
    public double Rate { get; init; } = 100;
    public int Payload { get; init; } = 100;
    public TimeSpan Warmup { get; init; } = TimeSpan.FromSeconds(3);
    public TimeSpan Duration { get; init; } = TimeSpan.FromSeconds(20);
    public TimeSpan Drain { get; init; } = TimeSpan.FromSeconds(5);
    public string Namespace { get; init; } = "chat";
    public IReadOnlyList<int> Pids { get; init; } = [];
    public TextWriter? Progress { get; init; }
}

public sealed record CrossnodeResult(
    string Workload,
    FanoutResult SameNode,
    FanoutResult CrossNode,
    double AddedP50Ms,
    double AddedP90Ms,
    double AddedP99Ms,
    double AddedMeanMs);

/// <summary>
/// The latency one extra front-end hop adds: the same fan-out twice, members on one front-end,
/// publishers first on that front-end (same node), then on another (cross node).
/// </summary>
public static class CrossnodeRunner
{
    public static async Task<CrossnodeResult> RunAsync(CrossnodeOptions o, CancellationToken ct = default)
    {
        FanoutOptions Options(Uri publisher, string label) => new()
        {
            Urls = [o.MemberUrl],
            PublisherUrls = [publisher],
            Rooms = o.Rooms,
            Members = o.Members,
            Publishers = o.Publishers,
            Rate = o.Rate,
            Payload = o.Payload,
            Warmup = o.Warmup,
            Duration = o.Duration,
            Drain = o.Drain,
            Namespace = o.Namespace,
            Pids = o.Pids,
            Progress = o.Progress,
            Label = label,
        };

        var same = await FanoutRunner.RunAsync(Options(o.SameNodeUrl ?? o.MemberUrl, "same-node"), ct);
        var cross = await FanoutRunner.RunAsync(Options(o.PublisherUrl, "cross-node"), ct);
        return new CrossnodeResult(
            "crossnode",
            same,
            cross,
            Diff(cross.Latency.P50Ms, same.Latency.P50Ms),
            Diff(cross.Latency.P90Ms, same.Latency.P90Ms),
            Diff(cross.Latency.P99Ms, same.Latency.P99Ms),
            Diff(cross.Latency.MeanMs, same.Latency.MeanMs));
    }

    private static double Diff(double a, double b) => Math.Round(a - b, 3);
}
