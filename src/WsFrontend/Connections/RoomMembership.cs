namespace Broker.Frontend.Connections;

/// <summary>
/// One connection in one room, as the front-end delivers to it. Until the room has answered the
/// join, deliveries wait here; then exactly those after the join's stream position go out, so
/// the connection sees every event after its join once, in the room's order, with no gap.
/// Deliveries for one room are never concurrent (the room keeps one call in flight per
/// front-end); the lock only orders them against the join's completion.
/// </summary>
public sealed class RoomMembership
{
    private readonly Lock _gate = new();
    private List<(string Epoch, long Version, byte[] Frame)>? _waiting = [];
    private string _epoch = string.Empty;
    private long _afterVersion;

    public RoomMembership(ClientConnection connection, string room)
    {
        Connection = connection;
        Room = room;
    }

    public ClientConnection Connection { get; }

    public string Room { get; }

    public void Offer(string epoch, long version, byte[] frame)
    {
        lock (_gate)
        {
            if (_waiting is not null)
            {
                _waiting.Add((epoch, version, frame));
                return;
            }

            if (epoch != _epoch)
            {
                // The room's activation was replaced (its history was lost): a new stream starts.
                _epoch = epoch;
                _afterVersion = 0;
            }

            if (version <= _afterVersion)
            {
                return;
            }

            _afterVersion = version;
            Connection.Send(frame);
        }
    }

    /// <summary>
    /// Completes the join: <paramref name="sendFirst"/> writes the recovered messages and the
    /// joined reply, then the deliveries that arrived meanwhile and follow the join go out.
    /// </summary>
    public void Activate(string epoch, long joinVersion, Action sendFirst)
    {
        lock (_gate)
        {
            sendFirst();
            _epoch = epoch;
            _afterVersion = joinVersion;
            var waiting = _waiting;
            _waiting = null;
            foreach (var (e, version, frame) in waiting ?? [])
            {
                if (e == _epoch && version > _afterVersion)
                {
                    _afterVersion = version;
                    Connection.Send(frame);
                }
            }
        }
    }
}
