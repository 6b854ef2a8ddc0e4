using System.Collections.Immutable;
using Broker.Grains.Models;

namespace Broker.Grains;

/// <summary>The last N messages of a room, in seq order (a ring buffer; N may change at run time).</summary>
internal sealed class HistoryWindow
{
    private RoomMessage[] _items = [];
    private int _start;
    private int _count;

    public int Count => _count;

    /// <summary>The seq of the oldest message held, or null when empty.</summary>
    public long? OldestSeq => _count == 0 ? null : _items[_start].Seq;

    public void Resize(int capacity)
    {
        capacity = Math.Max(0, capacity);
        if (capacity == _items.Length)
        {
            return;
        }

        var keep = Math.Min(_count, capacity);
        var next = new RoomMessage[capacity];
        for (var i = 0; i < keep; i++)
        {
            next[i] = At(_count - keep + i);
        }

        _items = next;
        _start = 0;
        _count = keep;
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
            _items[_start] = message;
            _start = (_start + 1) % _items.Length;
        }
    }

    /// <summary>Messages with seq greater than <paramref name="since"/>, oldest first, at most <paramref name="limit"/>.</summary>
    public ImmutableArray<RoomMessage> After(long since, int limit)
    {
        var builder = ImmutableArray.CreateBuilder<RoomMessage>();
        for (var i = 0; i < _count && builder.Count < limit; i++)
        {
            var message = At(i);
            if (message.Seq > since)
            {
                builder.Add(message);
            }
        }

        return builder.ToImmutable();
    }

    /// <summary>The latest <paramref name="limit"/> messages, oldest first.</summary>
    public ImmutableArray<RoomMessage> Latest(int limit)
    {
        var take = Math.Min(limit, _count);
        var builder = ImmutableArray.CreateBuilder<RoomMessage>(take);
        for (var i = _count - take; i < _count; i++)
        {
            builder.Add(At(i));
        }

        return builder.MoveToImmutable();
    }

    private RoomMessage At(int index) => _items[(_start + index) % _items.Length];
}
