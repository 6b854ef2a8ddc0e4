using Broker.Grains.Diagnostics;
using Broker.Grains.Streams;
using Microsoft.Extensions.Logging;
using Orleans.Streams;

namespace Broker.Grains;

/// <summary>
/// The ordered way from one room activation to its Orleans stream (docs/streams.md). The room
/// enqueues an item once it has committed a message, or announced a member's join or leave, in
/// the order it did so; one drain loop produces them, a batch at a time, never two batches at
/// once, so the stream gets them in that order. Nobody waits for it: a publish is acked when the
/// room commits, whether or not its item has reached the stream.
/// Bounded: at most <see cref="MaxItems"/> items and <see cref="MaxBytes"/> bytes wait (and
/// <see cref="MaxSiloBytes"/> in all the silo's rooms together); beyond
/// that, and when producing a batch still fails after <see cref="ProduceAttempts"/> attempts,
/// items are dropped and counted (broker.stream.items.dropped), with one Warning per episode (from
/// the first drop until the outbox is empty again after producing its last batch). Subscribers see the gap in the seqs and can
/// read the room's history. An item larger than <see cref="MaxItemBytes"/> is dropped as well:
/// the memory provider's cache takes no stream message over 1 MiB, and one that is refused there
/// loses the other rooms' items read with it.
/// Contract: every method is called on the owning activation's scheduler (no locks needed).
/// </summary>
internal sealed partial class RoomStreamOutbox
{
    /// <summary>Items that may wait, like a front-end's queue (FrontendQueue.MaxPending).</summary>
    public const int MaxItems = 10_000;

    /// <summary>Bytes that may wait (estimated: see <see cref="SizeOf"/>): four times a room's default history.</summary>
    public const long MaxBytes = 4 * 1024 * 1024;

    /// <summary>
    /// Bytes the outboxes of all rooms of a silo may hold together: when a stream provider stops
    /// answering, every room with Stream on fills its own outbox, and these add up.
    /// </summary>
    public const long MaxSiloBytes = 256L * 1024 * 1024;

    /// <summary>Items produced in one call at most.</summary>
    public const int MaxBatchItems = 256;

    /// <summary>Bytes produced in one call at most (a single larger item goes alone).</summary>
    public const int MaxBatchBytes = 256 * 1024;

    /// <summary>The largest item produced: below the memory provider's 1 MiB per stream message, with room for its envelope.</summary>
    public const int MaxItemBytes = 1024 * 1024 - 64 * 1024;

    /// <summary>What an item counts for besides its data and names (fields, envelope).</summary>
    public const int ItemOverheadBytes = 128;

    /// <summary>Attempts at producing one batch before it is dropped.</summary>
    public const int ProduceAttempts = 4;

    /// <summary>Pause before the first retry; doubled before each further one (0.1 s, 0.2 s, 0.4 s).</summary>
    public static readonly TimeSpan FirstRetryDelay = TimeSpan.FromMilliseconds(100);

    private static long s_siloBytes;

    private readonly Func<IAsyncStream<RoomStreamItem>> _open;
    private readonly ILogger _logger;
    private readonly string _namespace;
    private readonly string _room;
    private readonly Action _onDrained;
    private readonly Queue<Entry> _pending = new();
    private IAsyncStream<RoomStreamItem>? _stream;
    private long _pendingBytes;
    private int _inFlight;
    private bool _draining;
    private bool _abandoned;
    private long _droppedInEpisode;
    private TaskCompletionSource? _drained;

    /// <param name="open">Gets the room's stream (called once, at the first produce).</param>
    /// <param name="onDrained">Called each time the outbox becomes empty (the room may then go).</param>
    public RoomStreamOutbox(Func<IAsyncStream<RoomStreamItem>> open, ILogger logger, string @namespace, string room, Action onDrained)
    {
        _open = open;
        _logger = logger;
        _namespace = @namespace;
        _room = room;
        _onDrained = onDrained;
    }

    /// <summary>Nothing waiting and nothing being produced.</summary>
    public bool IsEmpty => !_draining && _pending.Count == 0;

    /// <summary>Items waiting or being produced.</summary>
    public int Count => _pending.Count + _inFlight;

    /// <summary>Items dropped since this outbox was created.</summary>
    public long Dropped { get; private set; }

    /// <summary>Queues an item behind the others; dropped (and counted) when the outbox is full.</summary>
    public void Enqueue(RoomStreamItem item)
    {
        if (_abandoned)
        {
            return;
        }

        var bytes = SizeOf(item);
        if (bytes > MaxItemBytes)
        {
            Drop(DropReason.TooLarge, 1, item);
            return;
        }

        if (_pending.Count + _inFlight >= MaxItems || _pendingBytes + bytes > MaxBytes || Interlocked.Read(ref s_siloBytes) + bytes > MaxSiloBytes)
        {
            Drop(DropReason.Full, 1, item);
            return;
        }

        _pending.Enqueue(new Entry(item, bytes));
        _pendingBytes += bytes;
        Interlocked.Add(ref s_siloBytes, bytes);
        SiloMetrics.StreamOutboxChanged(1);
        if (!_draining)
        {
            _draining = true;
            _ = DrainAsync();
        }
    }

    /// <summary>Completes once the outbox is empty (at once when it is).</summary>
    public Task WhenEmptyAsync()
    {
        if (IsEmpty)
        {
            return Task.CompletedTask;
        }

        _drained ??= new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        return _drained.Task;
    }

    /// <summary>
    /// The activation goes with items still here (its deactivation ran out of time): they are
    /// counted as dropped, and nothing is produced any more.
    /// </summary>
    public void Abandon()
    {
        if (_abandoned)
        {
            return;
        }

        _abandoned = true;
        var left = _pending.Count + _inFlight;
        if (left > 0)
        {
            var first = _pending.Count > 0 ? _pending.Peek().Item : null;
            SiloMetrics.StreamOutboxChanged(-left);
            Interlocked.Add(ref s_siloBytes, -_pendingBytes);
            _pending.Clear();
            _pendingBytes = 0;
            _inFlight = 0;
            Drop(DropReason.Failed, left, first);
        }
    }

    /// <summary>
    /// What an item counts for in the byte bound: its data, its strings at two bytes a character
    /// (their UTF-8 size at most, short of rare characters), and <see cref="ItemOverheadBytes"/>.
    /// </summary>
    internal static int SizeOf(RoomStreamItem item) =>
        (item.Data?.Length ?? 0)
        + 2 * (item.Namespace.Length + item.Room.Length + item.Epoch.Length + item.User.Length + (item.MsgId?.Length ?? 0))
        + ItemOverheadBytes;

    private async Task DrainAsync()
    {
        // Let the current turn finish first, so that everything it enqueues leaves in one call.
        await Task.Yield();
        var lastFailed = false;
        try
        {
            while (_pending.Count > 0 && !_abandoned)
            {
                var batch = TakeBatch(out var bytes);
                _inFlight = batch.Count;
                var error = await ProduceAsync(batch);
                if (_abandoned)
                {
                    // Counted by Abandon.
                    return;
                }

                _inFlight = 0;
                _pendingBytes -= bytes;
                Interlocked.Add(ref s_siloBytes, -bytes);
                SiloMetrics.StreamOutboxChanged(-batch.Count);
                lastFailed = error is not null;
                if (error is null)
                {
                    CountProduced(batch);
                }
                else
                {
                    Drop(DropReason.Failed, batch.Count, batch[0], error);
                }
            }
        }
        finally
        {
            _draining = false;
        }

        // The episode ends once the stream took the last batch and nothing waits; while producing
        // keeps failing (a provider that is down or missing) it goes on, however often the outbox empties.
        if (_droppedInEpisode > 0 && !lastFailed)
        {
            LogCaughtUp(_logger, _namespace, _room, _droppedInEpisode);
            _droppedInEpisode = 0;
        }

        var drained = _drained;
        _drained = null;
        drained?.TrySetResult();
        _onDrained();
    }

    private List<RoomStreamItem> TakeBatch(out long bytes)
    {
        var batch = new List<RoomStreamItem>(Math.Min(_pending.Count, MaxBatchItems));
        bytes = 0;
        while (_pending.Count > 0 && batch.Count < MaxBatchItems)
        {
            var next = _pending.Peek();
            if (batch.Count > 0 && bytes + next.Bytes > MaxBatchBytes)
            {
                break;
            }

            _pending.Dequeue();
            batch.Add(next.Item);
            bytes += next.Bytes;
        }

        return batch;
    }

    /// <summary>Produces one batch, retrying; null when produced, else the last error.</summary>
    private async Task<Exception?> ProduceAsync(List<RoomStreamItem> batch)
    {
        var delay = FirstRetryDelay;
        for (var attempt = 1; ; attempt++)
        {
            try
            {
                _stream ??= _open();
            }
            catch (KeyNotFoundException ex)
            {
                // This silo has no stream provider "broker" (AddBrokerStreams was not called):
                // retrying cannot help.
                return ex;
            }

            try
            {
                await _stream.OnNextBatchAsync(batch);
                return null;
            }
            catch (Exception ex) when (attempt < ProduceAttempts)
            {
                LogProduceRetried(_logger, _namespace, _room, batch.Count, attempt, ex.GetType().Name);
            }
            catch (Exception ex)
            {
                return ex;
            }

            await Task.Delay(delay);
            delay *= 2;
        }
    }

    private static void CountProduced(List<RoomStreamItem> batch)
    {
        int messages = 0, joined = 0, left = 0;
        foreach (var item in batch)
        {
            switch (item.Kind)
            {
                case RoomStreamItemKind.Message:
                    messages++;
                    break;
                case RoomStreamItemKind.MemberJoined:
                    joined++;
                    break;
                default:
                    left++;
                    break;
            }
        }

        SiloMetrics.StreamItemsProduced(messages, joined, left);
    }

    private void Drop(DropReason reason, int items, RoomStreamItem? first, Exception? error = null)
    {
        Dropped += items;
        var name = reason switch
        {
            DropReason.Full => "full",
            DropReason.TooLarge => "too_large",
            _ => "failed",
        };
        SiloMetrics.StreamItemsDropped(name, items);
        if (_droppedInEpisode == 0)
        {
            LogDropping(_logger, _namespace, _room, name, first?.Seq ?? 0, error);
        }

        _droppedInEpisode += items;
    }

    private enum DropReason
    {
        Full,
        Failed,
        TooLarge,
    }

    private readonly record struct Entry(RoomStreamItem Item, int Bytes);

    [LoggerMessage(EventId = 2010, Level = LogLevel.Warning, Message = "Room {Namespace}/{Room} is dropping stream items ({Reason}), the first at seq {Seq}; subscribers see a gap and can read the room's history. Logged once until its stream outbox is empty again")]
    private static partial void LogDropping(ILogger logger, string @namespace, string room, string reason, long seq, Exception? exception);

    [LoggerMessage(EventId = 2011, Level = LogLevel.Information, Message = "Room {Namespace}/{Room}'s stream outbox is empty again; {Dropped} items were dropped")]
    private static partial void LogCaughtUp(ILogger logger, string @namespace, string room, long dropped);

    [LoggerMessage(EventId = 2012, Level = LogLevel.Debug, Message = "Producing {Items} stream items of room {Namespace}/{Room} failed (attempt {Attempt}, {Error}); retrying")]
    private static partial void LogProduceRetried(ILogger logger, string @namespace, string room, int items, int attempt, string error);
}
