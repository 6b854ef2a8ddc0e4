using System.Diagnostics;
using HdrHistogram;

namespace Broker.Bench.Core;

/// <summary>Latency percentiles in milliseconds (recorded in microseconds).</summary>
public sealed record LatencySummary(long Count, double MeanMs, double P50Ms, double P90Ms, double P99Ms, double P999Ms, double MaxMs)
{
    public static readonly LatencySummary Empty = new(0, 0, 0, 0, 0, 0, 0);

    public static LatencySummary From(HistogramBase h) => h.TotalCount == 0
        ? Empty
        : new LatencySummary(
            h.TotalCount,
            Ms(h.GetMean()),
            Ms(h.GetValueAtPercentile(50)),
            Ms(h.GetValueAtPercentile(90)),
            Ms(h.GetValueAtPercentile(99)),
            Ms(h.GetValueAtPercentile(99.9)),
            Ms(h.GetMaxValue()));

    private static double Ms(double micros) => Math.Round(micros / 1000.0, 3);
}

/// <summary>A thread-safe latency recorder (HdrHistogram, 1 µs to 60 s, 3 significant digits).</summary>
public sealed class LatencyRecorder
{
    private const long MaxMicros = 60_000_000;
    // Many receive loops record at once: the recorder's histograms must take concurrent writes.
    private readonly Recorder _recorder = new(1, MaxMicros, 3, (id, low, high, digits) => new LongConcurrentHistogram(id, low, high, digits));
    private readonly LongHistogram _total = new(1, MaxMicros, 3);
    private readonly Lock _lock = new();

    public static long TicksToMicros(long ticks) => ticks * 1_000_000 / Stopwatch.Frequency;

    public void RecordTicks(long ticks) => RecordMicros(TicksToMicros(ticks));

    public void RecordMicros(long micros) => _recorder.RecordValue(Math.Clamp(micros, 1, MaxMicros));

    /// <summary>Values recorded since the last call (also added to the total).</summary>
    public LatencySummary TakeInterval()
    {
        lock (_lock)
        {
            var interval = _recorder.GetIntervalHistogram();
            _total.Add(interval);
            return LatencySummary.From(interval);
        }
    }

    /// <summary>Everything recorded so far.</summary>
    public LatencySummary Total()
    {
        lock (_lock)
        {
            _total.Add(_recorder.GetIntervalHistogram());
            return LatencySummary.From(_total);
        }
    }
}
