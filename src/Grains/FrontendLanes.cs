using System.Collections.Concurrent;
using System.Collections.Immutable;
using System.Runtime.InteropServices;
using Broker.Grains.Diagnostics;
using Broker.Grains.Models;
using Microsoft.Extensions.Logging;

namespace Broker.Grains;

/// <summary>
/// Room deliveries leave this silo through one lane per front-end: while a call to a front-end
/// is in flight, what the rooms of this silo have for it waits, and goes in the next call,
/// together (<see cref="IFrontendObserver.DeliverRooms"/>). A delivery alone goes as it always
/// did (<see cref="IFrontendObserver.DeliverRoom"/>). So under light load nothing changes,
/// and as load rises the calls per published message fall instead of the silo's work rising
/// with the number of rooms (docs/design.md, "One call per front-end").
/// <para>
/// Order: each room keeps at most one delivery in flight per front-end
/// (<see cref="FrontendQueue{T}"/>), so a call never holds two deliveries of one room and a
/// room's deliveries leave in its order. Rooms share nothing else: a failed call fails the
/// deliveries it carried, and each room retries its own as before.
/// </para>
/// <para>
/// A front-end of a version before <c>DeliverRooms</c> does not know the call. When a shared
/// call fails and each of its deliveries then goes through alone, the lane takes it that the
/// front-end is of that version and sends it only single deliveries from then on.
/// </para>
/// Thread-safe: rooms on any activation call <see cref="Send"/>; the calls go out from the
/// thread pool, outside every activation.
/// </summary>
public sealed partial class FrontendLanes
{
    /// <summary>A lane that sent nothing for this long is forgotten (front-ends come and go).</summary>
    private static readonly long IdleLaneTicks = (long)TimeSpan.FromMinutes(2).TotalMilliseconds;

    private readonly ConcurrentDictionary<string, Lane> _lanes = new(StringComparer.Ordinal);
    private readonly ILogger _logger;
    private long _nextSweep;

    /// <param name="enabled">False: every delivery is a call of its own (Silo:CoalesceDeliveries).</param>
    /// <param name="timeout">How long one call may take before its deliveries fail (and their rooms retry).</param>
    /// <param name="logger">Where the lane says it found a front-end of an older version.</param>
    public FrontendLanes(bool enabled = true, TimeSpan? timeout = null, ILogger<FrontendLanes>? logger = null)
    {
        Enabled = enabled;
        Timeout = timeout ?? FrontendQueue<RoomDelivery>.DeliveryTimeout;
        _logger = (ILogger?)logger ?? Microsoft.Extensions.Logging.Abstractions.NullLogger.Instance;
    }

    public bool Enabled { get; }

    public TimeSpan Timeout { get; }

    /// <summary>
    /// How long a room should wait for a delivery sent through here before it gives up on it:
    /// the call in flight ahead of it, then its own.
    /// </summary>
    public TimeSpan RoomTimeout => Enabled ? (2 * Timeout) + TimeSpan.FromSeconds(1) : Timeout;

    /// <summary>Deliveries waiting for the front-end's call in flight (tests).</summary>
    internal int PendingFor(string frontendId) => _lanes.TryGetValue(frontendId, out var lane) ? lane.Pending : 0;

    /// <summary>Whether the front-end was found not to know <c>DeliverRooms</c>.</summary>
    public bool IsSingleOnly(string frontendId) => _lanes.TryGetValue(frontendId, out var lane) && lane.SingleOnly;

    /// <summary>Sends one room's delivery to a front-end; completes when the front-end has taken it.</summary>
    public Task Send(string frontendId, IFrontendObserver observer, RoomDelivery delivery)
    {
        if (!Enabled)
        {
            SiloMetrics.FrontendCall();
            return observer.DeliverRoom(delivery);
        }

        SweepIfDue();
        while (true)
        {
            var lane = _lanes.GetOrAdd(frontendId, static (id, owner) => new Lane(owner, id), this);
            if (lane.TryAdd(observer, delivery, out var sent))
            {
                return sent;
            }

            // Retired by the sweep between the lookup and the add: take a fresh one.
            _lanes.TryRemove(new KeyValuePair<string, Lane>(frontendId, lane));
        }
    }

    private void SweepIfDue()
    {
        var now = Environment.TickCount64;
        var next = Interlocked.Read(ref _nextSweep);
        if (now < next || Interlocked.CompareExchange(ref _nextSweep, now + IdleLaneTicks, next) != next)
        {
            return;
        }

        foreach (var (id, lane) in _lanes)
        {
            if (lane.TryRetire(now - IdleLaneTicks))
            {
                _lanes.TryRemove(new KeyValuePair<string, Lane>(id, lane));
            }
        }
    }

    private sealed class Lane
    {
        private readonly FrontendLanes _owner;
        private readonly string _frontendId;
        private readonly Lock _gate = new();
        private List<Entry> _pending = [];
        private List<Entry> _spare = [];
        private IFrontendObserver? _observer;
        private bool _sending;
        private bool _retired;
        private long _lastUsed = Environment.TickCount64;

        public Lane(FrontendLanes owner, string frontendId)
        {
            _owner = owner;
            _frontendId = frontendId;
        }

        public int Pending
        {
            get
            {
                lock (_gate)
                {
                    return _pending.Count;
                }
            }
        }

        /// <summary>Set once shared calls were found unknown to the front-end.</summary>
        public bool SingleOnly { get; private set; }

        public bool TryAdd(IFrontendObserver observer, RoomDelivery delivery, out Task sent)
        {
            var entry = new Entry(delivery, new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously));
            sent = entry.Done.Task;
            lock (_gate)
            {
                if (_retired)
                {
                    return false;
                }

                _observer = observer;
                _pending.Add(entry);
                _lastUsed = Environment.TickCount64;
                if (_sending)
                {
                    return true;
                }

                _sending = true;
            }

            // Off the room's turn and out of its activation: the lane's calls belong to no room.
            ThreadPool.UnsafeQueueUserWorkItem(static lane => _ = lane.PumpAsync(), this, preferLocal: true);
            return true;
        }

        public bool TryRetire(long idleSince)
        {
            lock (_gate)
            {
                if (_sending || _pending.Count > 0 || _lastUsed > idleSince)
                {
                    return false;
                }

                _retired = true;
                return true;
            }
        }

        private async Task PumpAsync()
        {
            while (true)
            {
                List<Entry> batch;
                IFrontendObserver observer;
                lock (_gate)
                {
                    if (_pending.Count == 0)
                    {
                        _sending = false;
                        return;
                    }

                    batch = _pending;
                    _pending = _spare;
                    observer = _observer!;
                }

                try
                {
                    await SendAsync(observer, batch).ConfigureAwait(false);
                }
                catch (Exception ex)
                {
                    // Not expected (SendAsync settles every delivery itself); the lane must not stop.
                    Fail(batch, ex);
                }

                batch.Clear();
                _spare = batch;
            }
        }

        private async Task SendAsync(IFrontendObserver observer, List<Entry> batch)
        {
            if (batch.Count == 1 || SingleOnly)
            {
                await SendEachAsync(observer, batch).ConfigureAwait(false);
                return;
            }

            try
            {
                var deliveries = new RoomDelivery[batch.Count];
                for (var i = 0; i < deliveries.Length; i++)
                {
                    deliveries[i] = batch[i].Delivery;
                }

                SiloMetrics.FrontendCall();
                await observer.DeliverRooms(ImmutableCollectionsMarshal.AsImmutableArray(deliveries)).WaitAsync(_owner.Timeout).ConfigureAwait(false);
            }
            catch (Exception ex) when (ex is not TimeoutException)
            {
                // One room's delivery failing fails the call: each goes again alone, so the
                // others are not held up by it. And a front-end of an older version does not
                // know DeliverRooms (its client cannot load the call's type): if that is the
                // error and every delivery then goes through alone, it gets single calls only.
                if (await SendEachAsync(observer, batch).ConfigureAwait(false) && IsUnknownCall(ex) && !SingleOnly)
                {
                    SingleOnly = true;
                    LogSingleOnly(_owner._logger, _frontendId, ex.GetType().Name);
                }

                return;
            }
            catch (Exception ex)
            {
                Fail(batch, ex);
                return;
            }

            foreach (var entry in batch)
            {
                entry.Done.TrySetResult();
            }
        }

        /// <summary>What a front-end's Orleans client answers to a call its version does not have.</summary>
        private static bool IsUnknownCall(Exception ex) =>
            ex is TypeLoadException or MissingMethodException or NotImplementedException or Orleans.Serialization.CodecNotFoundException;

        /// <summary>One call per delivery, concurrently (they are of different rooms); true when all went through.</summary>
        private async Task<bool> SendEachAsync(IFrontendObserver observer, List<Entry> batch)
        {
            var calls = new Task[batch.Count];
            for (var i = 0; i < calls.Length; i++)
            {
                SiloMetrics.FrontendCall();
                calls[i] = CompleteAsync(observer, batch[i]);
            }

            await Task.WhenAll(calls).ConfigureAwait(ConfigureAwaitOptions.SuppressThrowing);
            foreach (var call in calls)
            {
                if (!call.IsCompletedSuccessfully)
                {
                    return false;
                }
            }

            return true;
        }

        private async Task CompleteAsync(IFrontendObserver observer, Entry entry)
        {
            try
            {
                await observer.DeliverRoom(entry.Delivery).WaitAsync(_owner.Timeout).ConfigureAwait(false);
                entry.Done.TrySetResult();
            }
            catch (Exception ex)
            {
                entry.Done.TrySetException(ex);
                throw;
            }
        }

        private static void Fail(List<Entry> batch, Exception exception)
        {
            foreach (var entry in batch)
            {
                entry.Done.TrySetException(exception);
            }
        }
    }

    [LoggerMessage(EventId = 2004, Level = LogLevel.Information, Message = "Front-end {FrontendId} did not take a shared delivery call ({Error}) but took each delivery alone: a version before DeliverRooms; this silo sends it single deliveries")]
    private static partial void LogSingleOnly(ILogger logger, string frontendId, string error);

    private readonly record struct Entry(RoomDelivery Delivery, TaskCompletionSource Done);
}
