using System.Collections.Concurrent;
using System.Diagnostics;
using Broker.Grains.Diagnostics;

namespace Broker.Frontend.Tests.Tracing;

/// <summary>
/// An <see cref="ActivityListener"/> on the broker's source and Orleans' grain-call source,
/// recording every span that stops. Orleans' spans are sampled only inside a trace (the way a
/// parent-based sampler would), so the silo's own calls (heartbeats, membership) make none.
/// </summary>
internal sealed class SpanRecorder : IDisposable
{
    /// <summary>Orleans' source for calls to application grains (Orleans.Diagnostics.ActivitySources).</summary>
    public const string OrleansApplicationSource = "Microsoft.Orleans.Application";

    private readonly ActivityListener _listener;
    private readonly ConcurrentQueue<Activity> _stopped = new();
    private readonly SemaphoreSlim _signal = new(0);

    public SpanRecorder()
    {
        _listener = new ActivityListener
        {
            ShouldListenTo = source => source.Name is BrokerActivity.SourceName or OrleansApplicationSource,
            Sample = Sample,
            ActivityStopped = activity =>
            {
                _stopped.Enqueue(activity);
                _signal.Release();
            },
        };
        ActivitySource.AddActivityListener(_listener);
    }

    /// <summary>Spans that stopped so far.</summary>
    public IReadOnlyCollection<Activity> Stopped => _stopped;

    /// <summary>The first stopped span that matches, waiting for it (no sleeps: each stop wakes the wait).</summary>
    public async Task<Activity> WaitForAsync(Func<Activity, bool> match, TimeSpan? timeout = null)
    {
        using var cts = new CancellationTokenSource(timeout ?? TimeSpan.FromSeconds(15));
        while (true)
        {
            if (_stopped.FirstOrDefault(match) is { } found)
            {
                return found;
            }

            try
            {
                await _signal.WaitAsync(cts.Token);
            }
            catch (OperationCanceledException)
            {
                throw new TimeoutException($"No matching span stopped in time; stopped: {string.Join(", ", _stopped.Select(a => a.OperationName))}");
            }
        }
    }

    /// <summary>The stopped span named <paramref name="name"/> whose room tag is <paramref name="room"/>.</summary>
    public Task<Activity> WaitForAsync(string name, string room, TimeSpan? timeout = null) =>
        WaitForAsync(a => a.OperationName == name && Equals(a.GetTagItem(BrokerActivity.RoomTag), room), timeout);

    public void Dispose()
    {
        _listener.Dispose();
        _signal.Dispose();
    }

    private static ActivitySamplingResult Sample(ref ActivityCreationOptions<ActivityContext> options) =>
        options.Source.Name == BrokerActivity.SourceName || options.Parent != default
            ? ActivitySamplingResult.AllDataAndRecorded
            : ActivitySamplingResult.None;
}
