using System.Collections.Concurrent;

namespace Broker.Frontend.Connections;

/// <summary>
/// Which local items sit under which key ("{namespace}/{room}" → memberships,
/// "{namespace}/{user}" → connections). Readers get an immutable snapshot array without
/// locking — delivery reads it once per batch; writers (joins, leaves) copy on write.
/// </summary>
public sealed class LocalIndex<T>
    where T : class
{
    private readonly ConcurrentDictionary<string, T[]> _items = new(StringComparer.Ordinal);
    private readonly Lock _gate = new();

    public int Count => _items.Count;

    public T[] Get(string key) => _items.TryGetValue(key, out var items) ? items : [];

    public void Add(string key, T item)
    {
        lock (_gate)
        {
            var current = Get(key);
            if (Array.IndexOf(current, item) >= 0)
            {
                return;
            }

            var next = new T[current.Length + 1];
            current.CopyTo(next, 0);
            next[^1] = item;
            _items[key] = next;
        }
    }

    public void Remove(string key, T item)
    {
        lock (_gate)
        {
            var current = Get(key);
            var at = Array.IndexOf(current, item);
            if (at < 0)
            {
                return;
            }

            if (current.Length == 1)
            {
                _items.TryRemove(key, out _);
                return;
            }

            var next = new T[current.Length - 1];
            Array.Copy(current, 0, next, 0, at);
            Array.Copy(current, at + 1, next, at, current.Length - at - 1);
            _items[key] = next;
        }
    }

    public IEnumerable<KeyValuePair<string, T[]>> Snapshot() => _items.ToArray();
}
