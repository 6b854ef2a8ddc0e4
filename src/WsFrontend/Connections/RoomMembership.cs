namespace Broker.Frontend.Connections;

/// <summary>
/// One connection in one room, as the front-end delivers to it. Until the room has answered the
/// join, deliveries wait here; then exactly those after the join's stream position go out, so
/// the connection sees every event after its join once, in the room's order. Two filters:
/// Version (per room activation) orders events against the join; Seq (per epoch) drops a
/// message already shown and lets the front-end see a gap that it must fill from history.
/// Deliveries for one room are never concurrent (the room keeps one call in flight per
/// front-end); the lock orders them against the join's completion.
/// Once the room has answered the join, what waits is bounded in bytes by the connection's
/// outbox budget (OutboxBytes): the catch-up now waits for a client that may not read, and
/// what waits is what its outbox would hold if the join were done. Past it the connection is
/// closed with 1013, as a full outbox would be; the client comes back with since+epoch. Not
/// in frames: a client replaying a long gap would be closed for a room's many small live
/// messages, and bytes bound the count as well. Before the answer, what waits is bounded by
/// the join's own cluster call (ClusterCallTimeout), not by anything the client does, and a
/// connection is not closed for the server's own latency.
/// </summary>
public sealed class RoomMembership
{
    private readonly Lock _gate = new();
    private List<Pending>? _waiting = [];
    private long _waitingBytes;
    private long _limitBytes = long.MaxValue;
    private bool _overflowed;
    private string _activation = string.Empty;
    private string _epoch = string.Empty;
    private long _afterVersion;
    private long _lastSeq;

    public RoomMembership(ClientConnection connection, string room)
    {
        Connection = connection;
        Room = room;
    }

    public ClientConnection Connection { get; }

    public string Room { get; }

    /// <summary>The last seq this connection was shown in <paramref name="epoch"/>, or null while joining or in another epoch.</summary>
    public long? LastSeqIn(string epoch)
    {
        lock (_gate)
        {
            return _waiting is null && _epoch == epoch ? _lastSeq : null;
        }
    }

    /// <summary>An event of the room's stream (seq is 0 for member events).</summary>
    public void Offer(string activation, string epoch, long version, long seq, byte[] frame)
    {
        lock (_gate)
        {
            if (_waiting is not null)
            {
                Wait(_waiting, new Pending(activation, epoch, version, seq, frame));
                return;
            }

            Deliver(activation, epoch, version, seq, frame);
        }
    }

    /// <summary>Bytes of the events waiting for the join to catch up (0 once live).</summary>
    public long WaitingBytes
    {
        get
        {
            lock (_gate)
            {
                return _waitingBytes;
            }
        }
    }

    /// <summary>A message recovered from history to fill a gap: shown only if it is the next one.</summary>
    public void Fill(string epoch, long seq, byte[] frame)
    {
        lock (_gate)
        {
            if (_waiting is null && epoch == _epoch && seq == _lastSeq + 1)
            {
                _lastSeq = seq;
                Connection.Send(frame);
            }
        }
    }

    /// <summary>
    /// The room answered the join: from here on, events are judged against its position
    /// (activation, version, epoch, seq), but they keep waiting here until
    /// <see cref="TakeDeliverable"/> finds none left.
    /// </summary>
    public void Prime(string activation, string epoch, long joinVersion, long seq)
    {
        lock (_gate)
        {
            _activation = activation;
            _epoch = epoch;
            _afterVersion = joinVersion;
            _lastSeq = seq;

            // From here on the catch-up depends on the client: what waits may grow by one
            // outbox's worth beyond what the join's own latency left here.
            _limitBytes = _waitingBytes + Connection.MaxQueuedBytes;
        }
    }

    /// <summary>
    /// The frames that waited and follow the join, to be written (with backpressure) before
    /// the live stream; null once none are left, and from then on the membership is live.
    /// Events of an earlier activation that overtook the join are not this connection's.
    /// </summary>
    public List<byte[]>? TakeDeliverable()
    {
        lock (_gate)
        {
            if (_waiting is null || _waiting.Count == 0 || _overflowed)
            {
                // Overflowed: the connection is closing; nothing more is its to be shown.
                _waiting = null;
                _waitingBytes = 0;
                return null;
            }

            return TakeWaiting(_waiting);
        }
    }

    /// <summary>
    /// The frames that waited so far and follow the join (possibly none), without going live:
    /// the join writes them while the room goes on, so that what waits here is only what
    /// arrived while the outbox had no room.
    /// </summary>
    public List<byte[]> TakeWaiting()
    {
        lock (_gate)
        {
            return _waiting is null || _waiting.Count == 0 || _overflowed ? [] : TakeWaiting(_waiting);
        }
    }

    /// <summary>Empties the waiting list into the frames to show, in order. Under the lock.</summary>
    private List<byte[]> TakeWaiting(List<Pending> waiting)
    {
        var frames = new List<byte[]>(waiting.Count);
        foreach (var pending in waiting)
        {
            if (pending.Activation == _activation && Accept(pending.Activation, pending.Epoch, pending.Version, pending.Seq))
            {
                frames.Add(pending.Frame);
            }
        }

        waiting.Clear();
        _waitingBytes = 0;
        _limitBytes = Connection.MaxQueuedBytes;
        return frames;
    }

    /// <summary>Holds an event until the join has caught up, within the connection's byte budget. Under the lock.</summary>
    private void Wait(List<Pending> waiting, Pending pending)
    {
        if (_overflowed)
        {
            return;
        }

        if (waiting.Count > 0 && _waitingBytes + pending.Frame.Length > _limitBytes)
        {
            _overflowed = true;
            waiting.Clear();
            _waitingBytes = 0;
            Connection.CloseSlowConsumer("Slow consumer: the room's traffic outran the join's catch-up. Reconnect and recover with since+epoch.");
            return;
        }

        waiting.Add(pending);
        _waitingBytes += pending.Frame.Length;
    }

    private void Deliver(string activation, string epoch, long version, long seq, byte[] frame)
    {
        if (Accept(activation, epoch, version, seq))
        {
            Connection.Send(frame);
        }
    }

    /// <summary>Whether an event is new to this connection; moves its position past it.</summary>
    private bool Accept(string activation, string epoch, long version, long seq)
    {
        if (activation != _activation)
        {
            // A new activation of the room: its versions count from the start again.
            _activation = activation;
            _afterVersion = 0;
        }

        if (version <= _afterVersion)
        {
            return false;
        }

        _afterVersion = version;
        if (seq > 0)
        {
            if (epoch != _epoch)
            {
                // The room's history was lost: a new epoch starts; the client sees it in the frame.
                _epoch = epoch;
                _lastSeq = 0;
            }

            if (seq <= _lastSeq)
            {
                return false;
            }

            _lastSeq = seq;
        }

        return true;
    }

    private readonly record struct Pending(string Activation, string Epoch, long Version, long Seq, byte[] Frame);
}
