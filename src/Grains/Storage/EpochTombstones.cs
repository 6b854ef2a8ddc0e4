using System.Buffers.Binary;
using System.Security.Cryptography;
using System.Text;

namespace Broker.Grains.Storage;

/// <summary>
/// The epochs of rooms whose activation went (memory store) while no message had ever been
/// numbered in that epoch: seq 0, hence no history and no msgId either. Such a room was entirely
/// (epoch, seq 0, nothing held), so its next activation on this silo may carry on in the same
/// epoch without telling anybody anything false: a client that joins again with since=0 and that
/// epoch gets recovered:true, rightly, where a new epoch would tell it that history was lost
/// (rooms holding nothing are let go at once, so a client whose front-end restarted comes back to
/// a new activation). An epoch in which a seq was handed out never gets here (the memory store
/// does not offer it), so no seq is ever reused within an epoch, and an entry is taken by one
/// activation only (<see cref="TryTake"/> removes it).
/// Bounded: an entry lasts <see cref="TimeToLive"/> at most, and goes earlier once
/// <see cref="MaxEntries"/> later entries were added (oldest first), so that clients joining and
/// leaving any number of rooms cannot make it grow; rooms are keyed by a 128-bit hash of their
/// key, so that an entry costs ~130 bytes however long the room's name (~13 MB when full).
/// Multi-silo caveat: entries are per silo. If, while silo A holds a room's entry, the room is
/// activated on silo B (a new epoch), publishes there, goes, and is activated on A again within
/// the TTL, it takes the old epoch back at seq 0: a client that last saw that old epoch at seq 0
/// is told recovered:true though it missed what B published. This needs the room to move between
/// silos and back within <see cref="TimeToLive"/> while that client stays away, which the short TTL
/// makes rare; with one silo (or the Redis store, which keeps epochs itself and uses no entries)
/// it cannot happen.
/// Thread-safe: a singleton per silo, called by room activations and deactivations only.
/// </summary>
public sealed class EpochTombstones
{
    /// <summary>The most entries kept; past it the oldest go first.</summary>
    public const int DefaultMaxEntries = 100_000;

    /// <summary>
    /// How long an entry is kept: long enough for clients of a restarted front-end to come back
    /// (seconds), short enough that the multi-silo caveat above stays negligible.
    /// </summary>
    public static readonly TimeSpan DefaultTimeToLive = TimeSpan.FromMinutes(10);

    private readonly Lock _gate = new();
    private readonly TimeProvider _time;
    private readonly long _ttlTicks;
    private readonly Dictionary<UInt128, Entry> _byRoom = [];

    // One entry per Add, in order; an entry whose room was taken or added again since is stale
    // and just leaves when its turn comes. Bounding this queue bounds the map as well.
    private readonly Queue<(UInt128 Room, long Number, long ExpiresAt)> _order = new();
    private long _added;

    public EpochTombstones(TimeProvider time)
        : this(time, DefaultMaxEntries, DefaultTimeToLive)
    {
    }

    public EpochTombstones(TimeProvider time, int maxEntries, TimeSpan timeToLive)
    {
        ArgumentOutOfRangeException.ThrowIfNegativeOrZero(maxEntries);
        ArgumentOutOfRangeException.ThrowIfLessThanOrEqual(timeToLive, TimeSpan.Zero);
        _time = time;
        MaxEntries = maxEntries;
        TimeToLive = timeToLive;
        _ttlTicks = (long)(timeToLive.TotalSeconds * time.TimestampFrequency);
    }

    public int MaxEntries { get; }

    public TimeSpan TimeToLive { get; }

    /// <summary>Rooms that hold an entry (expired ones may still count until the next call).</summary>
    public int Count
    {
        get
        {
            lock (_gate)
            {
                return _byRoom.Count;
            }
        }
    }

    /// <summary>Entries in the eviction order, stale ones included (for tests: bounded by <see cref="MaxEntries"/>).</summary>
    internal int QueuedEntries
    {
        get
        {
            lock (_gate)
            {
                return _order.Count;
            }
        }
    }

    /// <summary>
    /// Remembers a room's epoch. Only for an epoch in which no seq was ever handed out: the next
    /// activation resumes it at seq 0.
    /// </summary>
    public void Add(string roomKey, string epoch)
    {
        var room = Hash(roomKey);
        lock (_gate)
        {
            var now = _time.GetTimestamp();
            Prune(now);
            var number = ++_added;
            _byRoom[room] = new Entry(epoch, number);
            _order.Enqueue((room, number, now + _ttlTicks));
            while (_order.Count > MaxEntries)
            {
                RemoveOldest();
            }
        }
    }

    /// <summary>Takes a room's remembered epoch, if any: it is removed, so that one activation only resumes it.</summary>
    public bool TryTake(string roomKey, out string epoch)
    {
        var room = Hash(roomKey);
        lock (_gate)
        {
            Prune(_time.GetTimestamp());
            if (_byRoom.Remove(room, out var entry))
            {
                epoch = entry.Epoch;
                return true;
            }
        }

        epoch = string.Empty;
        return false;
    }

    /// <summary>Drops a room's entry, if any: an activation of the room numbered a message since.</summary>
    public void Forget(string roomKey)
    {
        var room = Hash(roomKey);
        lock (_gate)
        {
            // Its queue entry is stale now and leaves in its turn.
            _byRoom.Remove(room);
        }
    }

    private static UInt128 Hash(string roomKey)
    {
        Span<byte> digest = stackalloc byte[SHA256.HashSizeInBytes];
        SHA256.HashData(Encoding.UTF8.GetBytes(roomKey), digest);
        return BinaryPrimitives.ReadUInt128LittleEndian(digest);
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
        var (room, number, _) = _order.Dequeue();

        // A room taken, or added again since, has no entry or a later one: keep it.
        if (_byRoom.TryGetValue(room, out var current) && current.Number == number)
        {
            _byRoom.Remove(room);
        }
    }

    private readonly record struct Entry(string Epoch, long Number);
}
