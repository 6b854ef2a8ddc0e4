using System.Collections.Immutable;

namespace Broker.Grains;

/// <summary>
/// The ordered stream from one grain to one front-end, with at most one awaited call in flight.
/// Items queued while a call is in flight leave together in the next call, so throughput stays
/// near one-way speed while order is kept (awaited calls do not reorder; one-way calls do).
/// The pump runs as a task of the activation, outside any request, so a front-end that stops
/// answering delays only its own queue — never the grain's turn or the other front-ends.
/// Contract: every method is called on the owning activation's scheduler (no locks needed).
/// </summary>
internal sealed class FrontendQueue<T>
{
    private readonly Func<string, IFrontendObserver, ImmutableArray<T>, Task> _send;
    private readonly TimeSpan _timeout;
    private readonly Action<FrontendQueue<T>, Exception> _onFailure;
    private readonly Action<FrontendQueue<T>> _onIdle;
    private readonly Action<FrontendQueue<T>, Exception> _onRetry;
    private readonly bool _redeliver;
    private readonly List<T> _pending = [];
    private bool _pumping;

    public FrontendQueue(
        string frontendId,
        IFrontendObserver observer,
        Func<string, IFrontendObserver, ImmutableArray<T>, Task> send,
        Action<FrontendQueue<T>, Exception> onFailure,
        Action<FrontendQueue<T>> onIdle,
        Action<FrontendQueue<T>, Exception> onRetry,
        bool redeliver,
        TimeSpan timeout)
    {
        _timeout = timeout;
        FrontendId = frontendId;
        Observer = observer;
        _send = send;
        _onFailure = onFailure;
        _onIdle = onIdle;
        _onRetry = onRetry;
        _redeliver = redeliver;
    }

    /// <summary>A delivery call not answered in this time is given up on (and resent when redelivering).
    /// A queue whose sends wait behind another call first (<see cref="FrontendLanes"/>) waits longer.</summary>
    public static TimeSpan DeliveryTimeout { get; } = TimeSpan.FromSeconds(3);

    /// <summary>Pause before resending a batch that failed.</summary>
    public static TimeSpan RetryDelay { get; } = TimeSpan.FromMilliseconds(200);

    /// <summary>Events a front-end may fall behind by before it is dropped (its members then recover from history).</summary>
    public const int MaxPending = 10_000;

    public string FrontendId { get; }

    public IFrontendObserver Observer { get; set; }

    /// <summary>Set when the front-end failed or was dropped; nothing more is sent.</summary>
    public bool Closed { get; private set; }

    /// <summary>Nothing queued and no call in flight. Only an idle queue may be replaced by a new one,
    /// or two pumps would race to the same front-end and reorder its stream.</summary>
    public bool IsIdle => !_pumping && _pending.Count == 0;

    /// <summary>How many of the owner's members (connections) sit on this front-end.</summary>
    public int MemberCount { get; set; }

    public void Enqueue(T item)
    {
        if (Closed)
        {
            return;
        }

        _pending.Add(item);
        if (!_pumping)
        {
            _pumping = true;
            _ = PumpAsync();
        }
    }

    public void Close()
    {
        Closed = true;
        _pending.Clear();
    }

    private async Task PumpAsync()
    {
        // Let the current turn finish first so that everything it queues leaves in one call.
        await Task.Yield();
        try
        {
            var batch = ImmutableArray<T>.Empty;
            while (!Closed && (_pending.Count > 0 || batch.Length > 0))
            {
                // A batch that failed goes again, with what was queued since appended: order holds.
                batch = batch.AddRange(_pending);
                _pending.Clear();
                try
                {
                    await _send(FrontendId, Observer, batch).WaitAsync(_timeout);
                    batch = ImmutableArray<T>.Empty;
                }
                catch (Exception ex)
                {
                    if (_redeliver && batch.Length <= MaxPending)
                    {
                        // The front-end is alive as far as anyone knows (a lost front-end is
                        // closed by its lease); the call or its answer was lost, e.g. with the
                        // silo that routed it. Resending is safe: the front-end drops events it
                        // already has by version.
                        _onRetry(this, ex);
                        await Task.Delay(RetryDelay);
                        continue;
                    }

                    if (_redeliver)
                    {
                        Close();
                        _onFailure(this, ex);
                        return;
                    }

                    // Not resendable (no version to drop duplicates by): this batch is lost.
                    _onRetry(this, ex);
                    batch = ImmutableArray<T>.Empty;
                }
            }
        }
        finally
        {
            _pumping = false;
        }

        if (!Closed)
        {
            _onIdle(this);
        }
    }
}
