namespace Broker.Grains;

/// <summary>
/// Connections that recently left a grain (a room's Leave, a user's Disconnect). A front-end's
/// restatement (SyncFrontend) is a snapshot of its members taken when it left the front-end;
/// one that was taken just before a connection closed and arrives after its Leave would bring
/// the connection back, and nothing would ever remove it again: a room would show the user as
/// present, a user grain would count the connection and never drain. Connection ids are never
/// reused, so a restated id found here is stale and is skipped; a connection that joins again
/// (leave then join on the same socket) is taken off the list by its join.
/// An entry outlives any restatement in flight (<see cref="Retention"/>); at most
/// <see cref="MaxEntries"/> are kept, the oldest going first.
/// Contract: used only on the owning activation's scheduler (no locks).
/// </summary>
internal sealed class RecentlyGone
{
    /// <summary>How long a connection that left is remembered: far longer than a call is in flight.</summary>
    public static readonly TimeSpan Retention = TimeSpan.FromMinutes(2);

    /// <summary>The most connections remembered per grain; a grain with more churn forgets the oldest first.</summary>
    public const int MaxEntries = 10_000;

    private readonly Dictionary<string, long> _entryOf = new(StringComparer.Ordinal);
    private readonly Queue<(string ConnectionId, long Entry, long ExpiresAt)> _order = new();
    private long _entries;

    public int Count => _entryOf.Count;

    public void Add(string connectionId)
    {
        var now = Environment.TickCount64;
        Prune(now);
        var entry = ++_entries;
        _entryOf[connectionId] = entry;
        _order.Enqueue((connectionId, entry, now + (long)Retention.TotalMilliseconds));
        while (_entryOf.Count > MaxEntries && _order.Count > 0)
        {
            RemoveOldest();
        }
    }

    /// <summary>The connection is back (it joined again): restatements may list it once more.</summary>
    public void Forget(string connectionId) => _entryOf.Remove(connectionId);

    public bool Contains(string connectionId)
    {
        if (_entryOf.Count == 0)
        {
            return false;
        }

        Prune(Environment.TickCount64);
        return _entryOf.ContainsKey(connectionId);
    }

    private void Prune(long now)
    {
        while (_order.TryPeek(out var oldest) && oldest.ExpiresAt <= now)
        {
            RemoveOldest();
        }
    }

    private void RemoveOldest()
    {
        var (connectionId, entry, _) = _order.Dequeue();

        // A connection forgotten, or added again since, has a later entry (or none): keep it.
        if (_entryOf.TryGetValue(connectionId, out var current) && current == entry)
        {
            _entryOf.Remove(connectionId);
        }
    }
}
