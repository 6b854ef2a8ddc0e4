namespace Broker.Frontend.Commands;

/// <summary>
/// The authorization proxy's answers one connection has had, by room and action, so that a
/// member publishing a thousand messages asks once. An answer is forgotten when the connection
/// leaves the room, and all of them on a token refresh (the user may have new rights).
/// Bounded: a client asking about made-up room names fills it to <see cref="Capacity"/>, and then
/// the answers for rooms it is not in are dropped (all of them, if that frees nothing) — it can
/// cost the application more questions, never the node more memory.
/// Touched only by the connection's receive loop (one frame at a time): no locking.
/// </summary>
public sealed class ProxyAnswers
{
    private readonly Dictionary<(string Room, RoomAction Action), bool> _answers = new();

    public ProxyAnswers(int capacity) => Capacity = Math.Max(1, capacity);

    /// <summary>The most answers kept: max(4 × MaxRoomsPerConnection, 256) for a connection (<see cref="For"/>).</summary>
    public int Capacity { get; }

    public int Count => _answers.Count;

    /// <summary>The capacity for connections allowed <paramref name="maxRoomsPerConnection"/> rooms: every action of every room it may be in, and at least 256.</summary>
    public static int For(int maxRoomsPerConnection) => (int)Math.Min(int.MaxValue, Math.Max(4L * maxRoomsPerConnection, 256));

    public bool TryGet(string room, RoomAction action, out bool allowed) => _answers.TryGetValue((room, action), out allowed);

    /// <summary>Remembers an answer; when full, first lets go of the answers for rooms <paramref name="isMember"/> says the connection is not in.</summary>
    public void Remember(string room, RoomAction action, bool allowed, Func<string, bool> isMember)
    {
        if (_answers.Count >= Capacity && !_answers.ContainsKey((room, action)))
        {
            foreach (var key in _answers.Keys.Where(k => !isMember(k.Room)).ToList())
            {
                _answers.Remove(key);
            }

            if (_answers.Count >= Capacity)
            {
                _answers.Clear();
            }
        }

        _answers[(room, action)] = allowed;
    }

    /// <summary>Forgets every answer about <paramref name="room"/> (the connection left it).</summary>
    public void Forget(string room)
    {
        foreach (var action in Actions)
        {
            _answers.Remove((room, action));
        }
    }

    public void Clear() => _answers.Clear();

    private static readonly RoomAction[] Actions = Enum.GetValues<RoomAction>();
}
