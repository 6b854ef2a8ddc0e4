namespace Broker.Client.Tests.Infrastructure;

/// <summary>Items raised by events, and a way to wait (with a timeout) until they satisfy a condition.</summary>
public sealed class Collector<T>
{
    private readonly List<T> _items = [];
    private TaskCompletionSource _changed = new(TaskCreationOptions.RunContinuationsAsynchronously);

    public IReadOnlyList<T> Items
    {
        get
        {
            lock (_items)
            {
                return [.. _items];
            }
        }
    }

    public void Add(T item)
    {
        TaskCompletionSource changed;
        lock (_items)
        {
            _items.Add(item);
            changed = _changed;
            _changed = new(TaskCreationOptions.RunContinuationsAsynchronously);
        }

        changed.TrySetResult();
    }

    public async Task<IReadOnlyList<T>> WaitAsync(Func<IReadOnlyList<T>, bool> condition, TimeSpan timeout, string what)
    {
        var deadline = DateTime.UtcNow + timeout;
        while (true)
        {
            Task changed;
            IReadOnlyList<T> items;
            lock (_items)
            {
                items = [.. _items];
                changed = _changed.Task;
            }

            if (condition(items))
            {
                return items;
            }

            var left = deadline - DateTime.UtcNow;
            if (left <= TimeSpan.Zero)
            {
                throw new TimeoutException($"Not within {timeout}: {what} ({items.Count} items: {string.Join(", ", items.TakeLast(5))}).");
            }

            try
            {
                await changed.WaitAsync(left);
            }
            catch (TimeoutException)
            {
                // Checked once more above.
            }
        }
    }

    public Task<IReadOnlyList<T>> WaitCountAsync(int count, TimeSpan timeout, string what) =>
        WaitAsync(items => items.Count >= count, timeout, what);
}
