using System.Collections.Immutable;
using Broker.Grains.Models;

namespace Broker.Grains;

/// <summary>
/// The last messages of a room, in seq order (a ring buffer): at most a number of messages and
/// at most a number of bytes, the oldest going first; both bounds may change at run time.
/// A message counts as its data bytes plus <see cref="MessageOverheadBytes"/>. The newest
/// message is always kept, whatever its size, so that a member who missed only it can recover.
/// </summary>
internal sealed class HistoryWindow
{
    /// <summary>
    /// What a message costs beyond its data: the record, its sender and timestamp in memory, and
    /// roughly the fields of its message frame on the wire (type, room, seq, epoch, from, ts).
    /// Fixed, so that the bound is cheap to keep (no per-message measuring) and predictable.
    /// </summary>
    public const int MessageOverheadBytes = 128;

    private RoomMessage[] _items = [];
    private int _start;
    private int _count;
    private long _bytes;
    private long _maxBytes = long.MaxValue;

    public int Count => _count;

    /// <summary>What the held messages count for (data plus overhead each).</summary>
    public long Bytes => _bytes;

    /// <summary>The seq of the oldest message held, or null when empty.</summary>
    public long? OldestSeq => _count == 0 ? null : _items[_start].Seq;

    public static long SizeOf(RoomMessage message) => message.Payload.Length + (long)MessageOverheadBytes;

    /// <summary>Sets both bounds; the oldest messages go until the window fits them.</summary>
    public void Resize(int capacity, long maxBytes = long.MaxValue)
    {
        capacity = Math.Max(0, capacity);
        _maxBytes = Math.Max(0, maxBytes);
        if (capacity != _items.Length)
        {
            var keep = Math.Min(_count, capacity);
            var next = new RoomMessage[capacity];
            _bytes = 0;
            for (var i = 0; i < keep; i++)
            {
                next[i] = At(_count - keep + i);
                _bytes += SizeOf(next[i]);
            }

            _items = next;
            _start = 0;
            _count = keep;
        }

        TrimToBytes();
    }

    public void Add(RoomMessage message)
    {
        if (_items.Length == 0)
        {
            return;
        }

        if (_count < _items.Length)
        {
            _items[(_start + _count) % _items.Length] = message;
            _count++;
        }
        else
        {
            _bytes -= SizeOf(_items[_start]);
            _items[_start] = message;
            _start = (_start + 1) % _items.Length;
        }

        _bytes += SizeOf(message);
        TrimToBytes();
    }

    /// <summary>
    /// How many messages the window would hold if <paramref name="added"/> (newer than every
    /// message held, oldest first) were added now: what a durable store keeps of its log, so
    /// that the log and the window hold the same messages.
    /// </summary>
    public int CountAfterAdding(IReadOnlyList<RoomMessage> added)
    {
        var kept = 0;
        long bytes = 0;
        for (var i = added.Count - 1 + _count; i >= 0 && kept < _items.Length; i--)
        {
            var message = i >= _count ? added[i - _count] : At(i);
            bytes += SizeOf(message);
            if (kept > 0 && bytes > _maxBytes)
            {
                break;
            }

            kept++;
        }

        return kept;
    }

    /// <summary>
    /// Messages with seq greater than <paramref name="since"/>, oldest first: at most
    /// <paramref name="limit"/>, and no more than <paramref name="maxBytes"/> counted as in the
    /// window — except that a page holds at least one message when one is there, so that a
    /// client paging on always moves. More is true when messages after the last one returned
    /// were left out.
    /// </summary>
    public ImmutableArray<RoomMessage> After(long since, int limit, long maxBytes, out bool more)
    {
        var first = 0;
        while (first < _count && At(first).Seq <= since)
        {
            first++;
        }

        return Page(first, _count, limit, maxBytes, out more);
    }

    /// <summary>
    /// The latest <paramref name="limit"/> messages, oldest first, cut (from the newest end) to
    /// <paramref name="maxBytes"/> as in <see cref="After"/>: the client pages on with since.
    /// </summary>
    public ImmutableArray<RoomMessage> Latest(int limit, long maxBytes, out bool more)
    {
        var take = Math.Clamp(limit, 0, _count);
        return Page(_count - take, _count, int.MaxValue, maxBytes, out more);
    }

    private ImmutableArray<RoomMessage> Page(int from, int to, int limit, long maxBytes, out bool more)
    {
        var builder = ImmutableArray.CreateBuilder<RoomMessage>(Math.Clamp(Math.Min(limit, to - from), 0, 128));
        long bytes = 0;
        var i = from;
        for (; i < to && builder.Count < limit; i++)
        {
            var message = At(i);
            bytes += SizeOf(message);
            if (builder.Count > 0 && bytes > maxBytes)
            {
                break;
            }

            builder.Add(message);
        }

        more = i < to;
        return builder.ToImmutable();
    }

    private void TrimToBytes()
    {
        while (_count > 1 && _bytes > _maxBytes)
        {
            _bytes -= SizeOf(_items[_start]);
            _items[_start] = null!;
            _start = (_start + 1) % _items.Length;
            _count--;
        }
    }

    private RoomMessage At(int index) => _items[(_start + index) % _items.Length];
}
