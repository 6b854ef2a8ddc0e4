using System.Diagnostics;

namespace Broker.Bench.Core;

/// <summary>What the progress line is told each second.</summary>
public readonly record struct Tick(int Second, double ServerCores, double ToolCores);

/// <summary>Writes one progress line per second (to stderr in the CLI); silent without a writer.</summary>
public sealed class Ticker : IAsyncDisposable
{
    private readonly CancellationTokenSource _stop = new();
    private readonly Task _loop;

    public Ticker(TextWriter? output, CpuMeter meter, Func<Tick, string> line)
    {
        _loop = output is null ? Task.CompletedTask : RunAsync(output, meter, line, _stop.Token);
    }

    private static async Task RunAsync(TextWriter output, CpuMeter meter, Func<Tick, string> line, CancellationToken ct)
    {
        var start = Stopwatch.GetTimestamp();
        var previous = meter.Sample();
        using var timer = new PeriodicTimer(TimeSpan.FromSeconds(1));
        try
        {
            while (await timer.WaitForNextTickAsync(ct))
            {
                var now = meter.Sample();
                var (servers, tool) = CpuMeter.Cores(previous, now);
                previous = now;
                var second = (int)Math.Round(Stopwatch.GetElapsedTime(start).TotalSeconds);
                string text;
                try
                {
                    text = line(new Tick(second, servers, tool));
                }
                catch (Exception ex) when (ex is not OperationCanceledException)
                {
                    // The progress line is cosmetic: report its failure, never let it end the run.
                    text = $"(progress line failed: {ex})";
                }

                output.WriteLine(text);
            }
        }
        catch (OperationCanceledException)
        {
            // Stopped.
        }
    }

    public async ValueTask DisposeAsync()
    {
        await _stop.CancelAsync();
        await _loop;
        _stop.Dispose();
    }
}

/// <summary>Formatting helpers shared by progress lines and tables.</summary>
public static class Fmt
{
    private static readonly System.Globalization.CultureInfo Inv = System.Globalization.CultureInfo.InvariantCulture;

    public static string N(double value) => value.ToString(Math.Abs(value) >= 100 ? "#,0" : Math.Abs(value) >= 10 ? "0.0" : "0.00", Inv);

    public static string Ms(double value) => value.ToString(value >= 100 ? "0" : value >= 10 ? "0.0" : "0.00", Inv) + " ms";

    public static string Counts(IReadOnlyDictionary<string, long> counts) =>
        counts.Count == 0 ? "0" : string.Join(", ", counts.OrderByDescending(c => c.Value).Select(c => $"{c.Key} ×{c.Value.ToString(Inv)}"));
}
