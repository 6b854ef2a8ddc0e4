using System.Collections.Concurrent;
using System.Text;
using Broker.Grains.Streams;
using Microsoft.Extensions.Logging;
using Orleans.Streams;
using Orleans.Streams.Core;

namespace Broker.Grains.Tests.Streams;

/// <summary>
/// What the test subscribers heard, per subscriber and room. The TestingHost silos run in the
/// test's process, so the subscriber grains write here and tests wait on it (no polling).
/// </summary>
public static class StreamRecordings
{
    /// <summary>The broker namespace of the stream tests' rooms; <see cref="ImplicitRoomRecorderGrain"/> hears all of it.</summary>
    public const string Namespace = "streamtest";

    public const string ImplicitStreamNamespace = BrokerStreams.NamespacePrefix + Namespace;

    private static readonly ConcurrentDictionary<string, StreamRecording> s_recordings = new(StringComparer.Ordinal);

    public static StreamRecording Implicit(string ns, string room) => Of("implicit", ns, room);

    public static StreamRecording Explicit(string ns, string room) => Of("explicit", ns, room);

    internal static StreamRecording Of(string subscriber, string ns, string room) =>
        s_recordings.GetOrAdd(string.Concat(subscriber, "|", ns, "|", room), _ => new StreamRecording($"{subscriber} subscriber of {ns}/{room}"));
}

/// <summary>Items in arrival order (thread-safe), with waiters woken when their condition holds.</summary>
public sealed class StreamRecording(string name)
{
    public static readonly TimeSpan DefaultTimeout = TimeSpan.FromSeconds(30);

    private readonly object _gate = new();
    private readonly List<RoomStreamItem> _items = [];
    private readonly List<(Func<IReadOnlyList<RoomStreamItem>, bool> Condition, TaskCompletionSource Done)> _waiters = [];

    public IReadOnlyList<RoomStreamItem> Items
    {
        get
        {
            lock (_gate)
            {
                return [.. _items];
            }
        }
    }

    public IReadOnlyList<RoomStreamItem> Messages => Items.Where(i => i.Kind == RoomStreamItemKind.Message).ToList();

    public void Add(RoomStreamItem item)
    {
        List<TaskCompletionSource> ready = [];
        lock (_gate)
        {
            _items.Add(item);
            for (var i = _waiters.Count - 1; i >= 0; i--)
            {
                if (_waiters[i].Condition(_items))
                {
                    ready.Add(_waiters[i].Done);
                    _waiters.RemoveAt(i);
                }
            }
        }

        foreach (var done in ready)
        {
            done.TrySetResult();
        }
    }

    /// <summary>Completes when <paramref name="condition"/> holds; throws TimeoutException (with what was heard) otherwise.</summary>
    public async Task WaitUntilAsync(Func<IReadOnlyList<RoomStreamItem>, bool> condition, string what, TimeSpan? timeout = null)
    {
        var entry = (condition, new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously));
        lock (_gate)
        {
            if (condition(_items))
            {
                return;
            }

            _waiters.Add(entry);
        }

        try
        {
            await entry.Item2.Task.WaitAsync(timeout ?? DefaultTimeout);
        }
        catch (TimeoutException)
        {
            lock (_gate)
            {
                _waiters.Remove(entry);
            }

            throw new TimeoutException($"The {name} did not hear {what} within {(timeout ?? DefaultTimeout).TotalSeconds} s. Heard: {Describe()}");
        }
    }

    /// <summary>Waits for the message with <paramref name="seq"/> (or a later one).</summary>
    public Task WaitForSeqAsync(long seq, TimeSpan? timeout = null) =>
        WaitUntilAsync(items => items.Any(i => i.Kind == RoomStreamItemKind.Message && i.Seq >= seq), $"seq {seq}", timeout);

    private string Describe()
    {
        var sb = new StringBuilder();
        var items = Items;
        foreach (var item in items.Take(50))
        {
            sb.Append(' ').Append(item.Kind).Append('/').Append(item.Seq).Append('/').Append(item.User);
        }

        if (items.Count > 50)
        {
            sb.Append(" … (").Append(items.Count).Append(" items)");
        }

        return sb.ToString();
    }
}

public interface IImplicitRoomRecorderGrain : IGrainWithStringKey
{
    Task<int> Count();
}

/// <summary>
/// An application grain in the style docs/streams.md shows: it hears every room of the
/// namespace <see cref="StreamRecordings.Namespace"/>, one activation per room (keyed by the
/// room's name), without subscribing.
/// </summary>
[ImplicitStreamSubscription(StreamRecordings.ImplicitStreamNamespace)]
public sealed class ImplicitRoomRecorderGrain : Grain, IImplicitRoomRecorderGrain, IStreamSubscriptionObserver, IAsyncObserver<RoomStreamItem>
{
    private int _count;

    public Task<int> Count() => Task.FromResult(_count);

    public async Task OnSubscribed(IStreamSubscriptionHandleFactory handleFactory) =>
        await handleFactory.Create<RoomStreamItem>().ResumeAsync(this);

    public Task OnNextAsync(RoomStreamItem item, StreamSequenceToken? token = null)
    {
        _count++;
        StreamRecordings.Implicit(item.Namespace, item.Room).Add(item);
        return Task.CompletedTask;
    }

    public Task OnCompletedAsync() => Task.CompletedTask;

    public Task OnErrorAsync(Exception ex) => Task.CompletedTask;
}

public interface IExplicitRoomRecorderGrain : IGrainWithStringKey
{
    /// <summary>Subscribes to the room the grain's key names ("{ns}/{room}"), once.</summary>
    Task Subscribe();
}

/// <summary>
/// An explicit subscriber of one room (key "{ns}/{room}"): it subscribes when asked, and
/// resumes its subscription whenever the stream activates it again.
/// </summary>
public sealed class ExplicitRoomRecorderGrain(ILogger<ExplicitRoomRecorderGrain> logger) : Grain, IExplicitRoomRecorderGrain, IAsyncObserver<RoomStreamItem>
{
    private IAsyncStream<RoomStreamItem> _stream = null!;

    public override async Task OnActivateAsync(CancellationToken cancellationToken)
    {
        var (ns, room) = GrainKeys.Split(this.GetPrimaryKeyString());
        _stream = this.GetStreamProvider(BrokerStreams.ProviderName).GetStream<RoomStreamItem>(BrokerStreams.RoomStream(ns, room));
        foreach (var handle in await _stream.GetAllSubscriptionHandles())
        {
            await handle.ResumeAsync(this);
        }
    }

    public async Task Subscribe()
    {
        if ((await _stream.GetAllSubscriptionHandles()).Count == 0)
        {
            await _stream.SubscribeAsync(this);
            logger.LogDebug("Subscribed to {Stream}", _stream.StreamId);
        }
    }

    public Task OnNextAsync(RoomStreamItem item, StreamSequenceToken? token = null)
    {
        StreamRecordings.Explicit(item.Namespace, item.Room).Add(item);
        return Task.CompletedTask;
    }

    public Task OnCompletedAsync() => Task.CompletedTask;

    public Task OnErrorAsync(Exception ex) => Task.CompletedTask;
}

public interface IStreamOutboxProbeGrain : IGrainWithStringKey
{
    /// <summary>
    /// Enqueues <paramref name="count"/> message items of <paramref name="dataBytes"/> bytes (seqs
    /// 1, 2, …) into a <see cref="RoomStreamOutbox"/> of the room the key names, all in one turn,
    /// and answers how many it dropped.
    /// </summary>
    Task<long> Burst(int count, int dataBytes);

    /// <summary>
    /// Enqueues <paramref name="count"/> items into an outbox whose stream provider does not
    /// exist, waits until it is empty again, and answers how many it has dropped in all; its
    /// log goes to <see cref="StreamOutboxProbeGrain.Logs"/>.
    /// </summary>
    Task<long> BurstToMissingProvider(int count);
}

/// <summary>A room's stream outbox on its own, producing to the room's real stream, for its bounds.</summary>
public sealed class StreamOutboxProbeGrain(ILogger<StreamOutboxProbeGrain> logger) : Grain, IStreamOutboxProbeGrain
{
    private RoomStreamOutbox? _outbox;
    private RoomStreamOutbox? _failing;

    /// <summary>What the outboxes of <see cref="BurstToMissingProvider"/> logged, by room: event id and level.</summary>
    public static ConcurrentDictionary<string, ConcurrentQueue<(int EventId, LogLevel Level)>> Logs { get; } = new(StringComparer.Ordinal);

    public async Task<long> BurstToMissingProvider(int count)
    {
        var (ns, room) = GrainKeys.Split(this.GetPrimaryKeyString());
        _failing ??= new RoomStreamOutbox(
            () => this.GetStreamProvider("no-such-provider").GetStream<RoomStreamItem>(BrokerStreams.RoomStream(ns, room)),
            new ListLogger(Logs.GetOrAdd(room, _ => new())),
            ns,
            room,
            () => { });
        for (var seq = 1; seq <= count; seq++)
        {
            _failing.Enqueue(Item(ns, room, seq, [(byte)'1']));
        }

        await _failing.WhenEmptyAsync();
        return _failing.Dropped;
    }

    public Task<long> Burst(int count, int dataBytes)
    {
        var (ns, room) = GrainKeys.Split(this.GetPrimaryKeyString());
        _outbox ??= new RoomStreamOutbox(
            () => this.GetStreamProvider(BrokerStreams.ProviderName).GetStream<RoomStreamItem>(BrokerStreams.RoomStream(ns, room)),
            logger,
            ns,
            room,
            () => { });
        var data = Enumerable.Repeat((byte)'7', dataBytes).ToArray();
        for (var seq = 1; seq <= count; seq++)
        {
            _outbox.Enqueue(Item(ns, room, seq, data));
        }

        return Task.FromResult(_outbox.Dropped);
    }

    public static RoomStreamItem Item(string ns, string room, long seq, byte[] data) =>
        new(RoomStreamItemKind.Message, ns, room, "probe", seq, "probe", 0, data);
}

/// <summary>A log that keeps each entry's event id and level.</summary>
public sealed class ListLogger(ConcurrentQueue<(int EventId, LogLevel Level)> entries) : ILogger
{
    public IDisposable? BeginScope<TState>(TState state)
        where TState : notnull => null;

    public bool IsEnabled(LogLevel logLevel) => true;

    public void Log<TState>(LogLevel logLevel, EventId eventId, TState state, Exception? exception, Func<TState, Exception?, string> formatter) =>
        entries.Enqueue((eventId.Id, logLevel));
}
