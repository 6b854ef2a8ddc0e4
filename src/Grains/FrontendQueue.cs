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
    private readonly Func<IFrontendObserver, ImmutableArray<T>, Task> _send;
    private readonly Action<FrontendQueue<T>, Exception> _onFailure;
    private readonly Action<FrontendQueue<T>> _onIdle;
    private readonly List<T> _pending = [];
    private bool _pumping;

    public FrontendQueue(
        string frontendId,
        IFrontendObserver observer,
        Func<IFrontendObserver, ImmutableArray<T>, Task> send,
        Action<FrontendQueue<T>, Exception> onFailure,
        Action<FrontendQueue<T>> onIdle)
    {
        FrontendId = frontendId;
        Observer = observer;
        _send = send;
        _onFailure = onFailure;
        _onIdle = onIdle;
    }

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
            while (_pending.Count > 0 && !Closed)
            {
                var batch = _pending.ToImmutableArray();
                _pending.Clear();
                try
                {
                    await _send(Observer, batch);
                }
                catch (Exception ex)
                {
                    Close();
                    _onFailure(this, ex);
                    return;
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
