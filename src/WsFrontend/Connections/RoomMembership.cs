namespace Broker.Frontend.Connections;

/// <summary>
/// One connection in one room, as the front-end delivers to it. Until the room has answered the
/// join, deliveries wait here; then exactly those after the join's stream position go out, so
/// the connection sees every event after its join once, in the room's order. Two filters:
/// Version (per room activation) orders events against the join; Seq (per epoch) drops a
/// message already shown and lets the front-end see a gap that it must fill from history.
/// Deliveries for one room are never concurrent (the room keeps one call in flight per
/// front-end); the lock orders them against the join's completion.
/// </summary>
public sealed class RoomMembership
{
    private readonly Lock _gate = new();
    private List<Pending>? _waiting = [];
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
                _waiting.Add(new Pending(activation, epoch, version, seq, frame));
                return;
            }

            Deliver(activation, epoch, version, seq, frame);
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
    /// Completes the join: <paramref name="sendFirst"/> writes the recovered messages and the
    /// joined reply, then the deliveries that arrived meanwhile and follow the join go out.
    /// </summary>
    public void Activate(string activation, string epoch, long joinVersion, long seq, Action sendFirst)
    {
        lock (_gate)
        {
            sendFirst();
            _activation = activation;
            _epoch = epoch;
            _afterVersion = joinVersion;
            _lastSeq = seq;
            var waiting = _waiting;
            _waiting = null;
            foreach (var pending in waiting ?? [])
            {
                // Events of an earlier activation that overtook the join are not this connection's.
                if (pending.Activation == activation)
                {
                    Deliver(pending.Activation, pending.Epoch, pending.Version, pending.Seq, pending.Frame);
                }
            }
        }
    }

    private void Deliver(string activation, string epoch, long version, long seq, byte[] frame)
    {
        if (activation != _activation)
        {
            // A new activation of the room: its versions count from the start again.
            _activation = activation;
            _afterVersion = 0;
        }

        if (version <= _afterVersion)
        {
            return;
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
                return;
            }

            _lastSeq = seq;
        }

        Connection.Send(frame);
    }

    private readonly record struct Pending(string Activation, string Epoch, long Version, long Seq, byte[] Frame);
}
