using System.Collections.Immutable;

namespace Broker.Grains;

/// <summary>
/// A grain's ordered streams to the front-ends that hold its members, with a member count per
/// front-end. A queue whose last member left stays until it is idle, so a member who comes
/// back on that front-end reuses it: two pumps to one front-end would reorder its stream.
/// Contract: used only on the owning activation's scheduler.
/// </summary>
internal sealed class FrontendQueueSet<T>
{
    private readonly Dictionary<string, FrontendQueue<T>> _queues = new(StringComparer.Ordinal);
    private readonly Func<string, IFrontendObserver, ImmutableArray<T>, Task> _send;
    private readonly TimeSpan _timeout;
    private readonly Action<string, Exception> _onFailure;
    private readonly Action<string, Exception> _onRetry;
    private readonly bool _redeliver;
    private readonly Action? _onDrained;

    /// <param name="send">Sends one batch to a front-end (its id, its observer).</param>
    /// <param name="onFailure">A front-end fell too far behind: its queue is already gone; the owner drops its members.</param>
    /// <param name="onRetry">A batch failed and is resent (or, without redelivery, dropped).</param>
    /// <param name="redeliver">Whether a failed batch is resent: only for items the front-end can recognise twice.</param>
    /// <param name="onDrained">The last queue went away (no members on any front-end, nothing in flight), whichever way it went.</param>
    /// <param name="timeout">How long a send may take before it counts as failed; <see cref="FrontendQueue{T}.DeliveryTimeout"/> when null.</param>
    public FrontendQueueSet(Func<string, IFrontendObserver, ImmutableArray<T>, Task> send, Action<string, Exception> onFailure, Action<string, Exception> onRetry, bool redeliver, Action? onDrained = null, TimeSpan? timeout = null)
    {
        _timeout = timeout ?? FrontendQueue<T>.DeliveryTimeout;
        _onDrained = onDrained;
        _send = send;
        _onFailure = onFailure;
        _onRetry = onRetry;
        _redeliver = redeliver;
    }

    /// <summary>Front-ends with a queue: with members, or with deliveries still in flight.</summary>
    public int Count => _queues.Count;

    /// <summary>Whether the front-end has a queue here (members, or deliveries in flight).</summary>
    public bool Holds(string frontendId) => _queues.ContainsKey(frontendId);

    /// <summary>Counts one more member on the front-end; true when the front-end had none before.</summary>
    public bool AddMember(string frontendId, IFrontendObserver observer)
    {
        if (!_queues.TryGetValue(frontendId, out var queue))
        {
            queue = new FrontendQueue<T>(frontendId, observer, _send, OnFailure, OnIdle, (q, ex) => _onRetry(q.FrontendId, ex), _redeliver, _timeout);
            _queues[frontendId] = queue;
        }

        queue.Observer = observer;
        return queue.MemberCount++ == 0;
    }

    /// <summary>Counts one member less on the front-end; true when it has none left.</summary>
    public bool RemoveMember(string frontendId)
    {
        if (!_queues.TryGetValue(frontendId, out var queue) || --queue.MemberCount > 0)
        {
            return false;
        }

        if (queue.IsIdle)
        {
            Forget(frontendId);
        }

        return true;
    }

    /// <summary>Queues the item to every front-end that holds members.</summary>
    public void Broadcast(T item)
    {
        foreach (var queue in _queues.Values)
        {
            if (queue.MemberCount > 0)
            {
                queue.Enqueue(item);
            }
        }
    }

    /// <summary>Queues the item to one front-end only.</summary>
    public void Enqueue(string frontendId, T item)
    {
        if (_queues.TryGetValue(frontendId, out var queue))
        {
            queue.Enqueue(item);
        }
    }

    /// <summary>Forgets a front-end at once, dropping what was queued for it.</summary>
    public void Drop(string frontendId)
    {
        if (_queues.Remove(frontendId, out var queue))
        {
            queue.Close();
            NotifyIfDrained();
        }
    }

    private void OnIdle(FrontendQueue<T> queue)
    {
        if (queue.MemberCount == 0 && _queues.TryGetValue(queue.FrontendId, out var current) && ReferenceEquals(current, queue))
        {
            Forget(queue.FrontendId);
        }
    }

    private void OnFailure(FrontendQueue<T> queue, Exception exception)
    {
        if (_queues.TryGetValue(queue.FrontendId, out var current) && ReferenceEquals(current, queue))
        {
            _queues.Remove(queue.FrontendId);
            _onFailure(queue.FrontendId, exception);
            NotifyIfDrained();
        }
    }

    /// <summary>Removes a front-end's queue and tells the owner when it was the last one.</summary>
    private void Forget(string frontendId)
    {
        _queues.Remove(frontendId);
        NotifyIfDrained();
    }

    private void NotifyIfDrained()
    {
        if (_queues.Count == 0)
        {
            _onDrained?.Invoke();
        }
    }
}
