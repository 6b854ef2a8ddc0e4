using System.Net.WebSockets;
using Broker.Frontend.Commands;
using Broker.Frontend.Diagnostics;
using Broker.Frontend.Options;
using Broker.Frontend.Protocol;
using Broker.Grains.Models;

namespace Broker.Frontend.Connections;

/// <summary>
/// One client socket: who it is, the rooms it sits in, and its bounded outbox. Anybody may call
/// <see cref="Send"/> from any thread; it never blocks: a full outbox closes the connection with
/// 1013 instead of making the room (or anybody else) wait. The outbox is bounded twice, in
/// frames (OutboxFrames) and in bytes (OutboxBytes): everything queued for the socket, pushes
/// and replies alike, counts against both; an empty outbox takes any one frame, so a frame
/// larger than the byte budget still goes, alone. Whoever queues a frame while no write
/// is in progress writes it at once on its own thread (one socket write per frame, no hand-off
/// to another thread); a write the socket cannot take at once goes on asynchronously, and frames
/// queued meanwhile are written by that same writer, in order. One writer at a time owns the
/// socket, the close frame included.
/// </summary>
public sealed class ClientConnection
{
    private readonly WebSocket _socket;
    private Commands.Caller? _caller;
    private Queue<byte[]>? _outbox;
    private readonly int _outboxFrames;
    private readonly long _outboxBytes;
    private long _queuedBytes;
    private int _waiting;
    private readonly TimeSpan _closeTimeout;
    private readonly CancellationTokenSource _receiveAbort = new();
    private readonly TaskCompletionSource _finished = new(TaskCreationOptions.RunContinuationsAsynchronously);
    private readonly TaskCompletionSource _writerFinished = new(TaskCreationOptions.RunContinuationsAsynchronously);
    private readonly Lock _gate = new();
    private TaskCompletionSource? _space;
    private bool _writing;
    private bool _outboxCompleted;
    private bool _broken;
    private bool _userGrainKnows;
    private bool _slowConsumer;
    private readonly ClientEventLog? _events;
    private int _closeRequested;
    private WebSocketCloseStatus _closeStatus;
    private string _closeReason = string.Empty;
    private ITimer? _expiry;
    private DateTimeOffset? _expires;
    private bool _expiryStopped;

    public ClientConnection(
        string id,
        string user,
        string ns,
        NamespaceOptions options,
        WebSocket socket,
        int outboxFrames,
        long outboxBytes,
        TimeSpan closeTimeout,
        ClientEventLog? events = null)
    {
        _events = events;
        Id = id;
        User = user;
        Namespace = ns;
        Options = options;
        Policy = options.ToRoomPolicy();
        _socket = socket;
        _closeTimeout = closeTimeout;
        _outboxFrames = outboxFrames;
        _outboxBytes = outboxBytes;
    }

    public string Id { get; }

    public string User { get; }

    public string Namespace { get; }

    public NamespaceOptions Options { get; }

    public RoomPolicy Policy { get; }

    /// <summary>This connection as the dispatcher's caller: made once, not per frame.</summary>
    public Commands.Caller Caller => _caller ??= Commands.Caller.For(this);

    public WebSocket Socket => _socket;

    /// <summary>The connection came in with a valid token (its user is verified); false for ?user= and anonymous ids.</summary>
    public bool Verified { get; init; }

    /// <summary>
    /// What the token's "rooms" claim grants in this namespace (Authorize=Token; <see cref="RoomGrants.None"/>
    /// elsewhere and without a token). Replaced by a refresh. Touched only by this connection's receive loop.
    /// </summary>
    public RoomGrants Grants { get; set; } = RoomGrants.None;

    /// <summary>The authorization proxy's answers (Authorize=Proxy), made at the first question. Touched only by this connection's receive loop.</summary>
    public ProxyAnswers? ProxyAnswers { get; set; }

    /// <summary>When the connection's token expires (then it is closed with 1008); null when it never does.</summary>
    public DateTimeOffset? Expires
    {
        get
        {
            lock (_gate)
            {
                return _expires;
            }
        }
    }

    /// <summary>
    /// Sets when the connection's token expires, replacing the time set before (a refresh): at
    /// that moment the connection is closed with 1008. Null: it never expires.
    /// </summary>
    public void ExpireAt(DateTimeOffset? at, TimeProvider time)
    {
        ITimer? old;
        lock (_gate)
        {
            old = _expiry;
            _expires = at;
            _expiry = at is { } when && !_expiryStopped ? ArmExpiry(when, time) : null;
        }

        old?.Dispose();
    }

    /// <summary>
    /// The longest a single expiry timer is set for. A timer cannot wait longer than about 49.7
    /// days (uint.MaxValue - 1 ms: longer throws), and tokens valid for months or years are
    /// common (service tokens); such an expiry is reached in steps of this length.
    /// </summary>
    internal static readonly TimeSpan MaxExpiryStep = TimeSpan.FromDays(30);

    /// <summary>A timer for the expiry at <paramref name="when"/>: it closes the connection then, or, when that is further off than one step, sets the next step.</summary>
    private ITimer ArmExpiry(DateTimeOffset when, TimeProvider time)
    {
        var due = TimeSpan.FromTicks(Math.Clamp((when - time.GetUtcNow()).Ticks, 0, MaxExpiryStep.Ticks));
        return time.CreateTimer(static state => ((ExpiryStep)state!).Reached(), new ExpiryStep(this, when, time), due, Timeout.InfiniteTimeSpan);
    }

    private void OnExpiryStep(DateTimeOffset when, TimeProvider time)
    {
        ITimer? fired;
        bool expired;
        lock (_gate)
        {
            if (_expiryStopped || _expires != when)
            {
                // Ended, or a refresh set another expiry (with its own timer).
                return;
            }

            // At the expiry, or only a step of the way there: then the next step.
            fired = _expiry;
            expired = time.GetUtcNow() >= when;
            _expiry = expired ? null : ArmExpiry(when, time);
        }

        fired?.Dispose();
        if (expired)
        {
            Close(CloseCodes.PolicyViolation, "The token expired; reconnect with a fresh one.");
        }
    }

    private sealed record ExpiryStep(ClientConnection Connection, DateTimeOffset When, TimeProvider Time)
    {
        public void Reached() => Connection.OnExpiryStep(When, Time);
    }

    /// <summary>Stops the expiry timer for good (the connection has ended).</summary>
    public void StopExpiry()
    {
        ITimer? old;
        lock (_gate)
        {
            _expiryStopped = true;
            old = _expiry;
            _expiry = null;
        }

        old?.Dispose();
    }

    /// <summary>The connection's publishes in flight, made at its first publish. Touched only by this connection's receive loop (and its finally).</summary>
    public PublishPipeline? Publishes { get; set; }

    /// <summary>Rooms joined (or being joined), by room name. Touched only by this connection's receive loop.</summary>
    public Dictionary<string, RoomMembership> Rooms { get; } = new(StringComparer.Ordinal);

    /// <summary>Cancelled when the receive loop must stop waiting (close handshake timed out, shutdown).</summary>
    public CancellationToken ReceiveAborted => _receiveAbort.Token;

    /// <summary>Completes when the connection's handler has finished, cleanup included.</summary>
    public Task Finished => _finished.Task;

    /// <summary>
    /// Completes once the connection is closing and every frame it was going to write (the close
    /// frame included) has been written, or the socket broke.
    /// </summary>
    public Task WriterFinished => _writerFinished.Task;

    public TimeSpan CloseTimeout => _closeTimeout;

    /// <summary>Frames queued and not yet handed to the socket.</summary>
    public int QueuedFrames
    {
        get
        {
            lock (_gate)
            {
                return _outbox?.Count ?? 0;
            }
        }
    }

    /// <summary>The outbox's frame budget (Broker:OutboxFrames).</summary>
    public int MaxQueuedFrames => _outboxFrames;

    /// <summary>The outbox's byte budget (Broker:OutboxBytes).</summary>
    public long MaxQueuedBytes => _outboxBytes;

    /// <summary>Bytes of the frames queued and not yet handed to the socket (the frame being written is not counted).</summary>
    public long QueuedBytes
    {
        get
        {
            lock (_gate)
            {
                return _queuedBytes;
            }
        }
    }

    /// <summary>
    /// Whether this connection's receive loop is waiting on its outbox: for room (the client is
    /// not reading what it asked for, and nothing more of its input is read until it does), or
    /// for it to drain before a join hands over to the live stream.
    /// </summary>
    public bool IsWaitingForRoom => Volatile.Read(ref _waiting) != 0;

    public void MarkFinished() => _finished.TrySetResult();

    public bool IsClosing => Volatile.Read(ref _closeRequested) != 0;

    /// <summary>
    /// Whether the user grain knows this connection: told at connect, or asked for it by the
    /// grain (the rebuild before a direct message to a generated anonymous id). Only then is it
    /// told of the disconnect and restated by the heartbeat.
    /// </summary>
    public bool UserGrainKnows
    {
        get => Volatile.Read(ref _userGrainKnows);
        set => Volatile.Write(ref _userGrainKnows, value);
    }

    /// <summary>The close status this side asked for, once it asked.</summary>
    public WebSocketCloseStatus? CloseStatus => IsClosing ? _closeStatus : null;

    /// <summary>Whether this side closed the connection with 1013 because the client did not read what it was sent.</summary>
    public bool ClosedAsSlowConsumer => Volatile.Read(ref _slowConsumer);

    /// <summary>Closes with 1013 for a client that does not keep up, dropping what is queued; its resume point is intact.</summary>
    public void CloseSlowConsumer(string reason)
    {
        if (!IsClosing)
        {
            Volatile.Write(ref _slowConsumer, true);
            _events?.Count(ClientEvent.SlowConsumer);
        }

        Close(CloseCodes.TryAgainLater, reason, dropPending: true);
    }

    /// <summary>Queues a frame; false when the connection is closing or its outbox overflowed (it is then closed with 1013).</summary>
    public bool Send(byte[] frame)
    {
        switch (TryQueue(frame))
        {
            case Queued.Yes:
                return true;
            case Queued.Full:
                CloseSlowConsumer("Slow consumer: outbox full (frames or bytes). Reconnect and recover with since+epoch.");
                return false;
            default:
                return false;
        }
    }

    /// <summary>
    /// Queues a reply to the client's own frame, waiting for outbox space (frames and bytes): a
    /// client that sends faster than it reads is slowed down (its frames wait in TCP), not
    /// disconnected. Only this connection's receive loop replies, one frame at a time, or, while
    /// publishes are in flight, their <see cref="PublishPipeline"/>'s single writer (the loop
    /// waits for it before any other reply), so at most one reply waits;
    /// <see cref="WaitForRoomAsync"/> before handling a frame keeps the loop from taking on
    /// more while the outbox is full.
    /// Pushes from rooms use <see cref="Send"/> and never wait.
    /// </summary>
    public async ValueTask ReplyAsync(byte[] frame)
    {
        while (TryQueue(frame) == Queued.Full)
        {
            if (!await WaitUntilAsync(static (c, length) => c.HasRoomFor(length), frame.Length).ConfigureAwait(false))
            {
                // Closing: the reply has nobody to go to.
                return;
            }
        }
    }

    /// <summary>
    /// Waits until the outbox is below both budgets: true then, false once the connection is
    /// closing. The receive loop waits here before it takes on a client frame, so a client that
    /// does not read gets no more work done for it — no cluster call, no reply built and held —
    /// until it reads. Completes at once, without allocating, while there is room.
    /// </summary>
    public ValueTask<bool> WaitForRoomAsync() => WaitUntilAsync(static (c, _) => c.BelowBudget(), 0);

    /// <summary>
    /// Waits until at most <paramref name="frames"/> frames are queued (or the connection
    /// closes): a catch-up hands over to the live stream only with room left in the outbox,
    /// since live pushes never wait.
    /// </summary>
    public async Task WaitForOutboxBelowAsync(int frames) =>
        await WaitUntilAsync(static (c, most) => c._outbox is null || c._outbox.Count <= most, frames).ConfigureAwait(false);

    /// <summary>
    /// Waits, woken by the writer as it takes each frame (no polling), until
    /// <paramref name="ready"/> holds under the lock; false once the connection is closing.
    /// </summary>
    private async ValueTask<bool> WaitUntilAsync(Func<ClientConnection, int, bool> ready, int argument)
    {
        while (true)
        {
            Task space;
            lock (_gate)
            {
                if (_outboxCompleted)
                {
                    return false;
                }

                if (ready(this, argument))
                {
                    return true;
                }

                _space ??= new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
                space = _space.Task;
            }

            Interlocked.Increment(ref _waiting);
            try
            {
                await space.WaitAsync(_receiveAbort.Token).ConfigureAwait(false);
            }
            catch (OperationCanceledException)
            {
                return false;
            }
            finally
            {
                Interlocked.Decrement(ref _waiting);
            }
        }
    }

    /// <summary>
    /// Starts the closing handshake once (later calls are ignored). With dropPending the frames
    /// still queued are discarded; otherwise they are written before the close frame.
    /// </summary>
    public void Close(WebSocketCloseStatus status, string reason, bool dropPending = false)
    {
        if (Interlocked.Exchange(ref _closeRequested, 1) != 0)
        {
            return;
        }

        _closeStatus = status;
        _closeReason = reason;
        bool write;
        TaskCompletionSource? space;
        lock (_gate)
        {
            _outboxCompleted = true;
            if (dropPending)
            {
                _outbox?.Clear();
                _queuedBytes = 0;
            }

            write = !_writing;
            _writing = true;
            space = TakeSpaceWaiter();
        }

        space?.TrySetResult();

        // The peer has CloseTimeout to finish the handshake; then the socket is aborted.
        _receiveAbort.CancelAfter(_closeTimeout + _closeTimeout);
        if (write)
        {
            // Not inline: Close is called from under other locks (a membership's, on overflow).
            ThreadPool.UnsafeQueueUserWorkItem(static c => _ = c.WriteQueuedAsync(null), this, preferLocal: false);
        }
    }

    /// <summary>
    /// The single writer: writes queued frames until none are left, then (when closing) the
    /// close frame. Runs on the thread that queued the first frame until a write cannot
    /// complete at once.
    /// </summary>
    private async Task WriteQueuedAsync(byte[]? first)
    {
        var frame = first;
        while (true)
        {
            if (frame is null)
            {
                TaskCompletionSource? space;
                lock (_gate)
                {
                    if (_broken || _outbox is null || _outbox.Count == 0)
                    {
                        _writing = false;
                        if (!_outboxCompleted)
                        {
                            return;
                        }

                        // Closing and nothing left: this writer keeps the socket for the close frame.
                        _writing = true;
                        break;
                    }

                    frame = _outbox.Dequeue();
                    _queuedBytes -= frame.Length;
                    space = TakeSpaceWaiter();
                }

                space?.TrySetResult();
            }

            try
            {
                var pending = _socket.SendAsync(frame, WebSocketMessageType.Text, endOfMessage: true, CancellationToken.None);
                if (!pending.IsCompletedSuccessfully)
                {
                    await pending.ConfigureAwait(false);
                }
            }
            catch (Exception ex) when (ex is WebSocketException or ObjectDisposedException or OperationCanceledException or IOException or InvalidOperationException)
            {
                // The socket broke; there is nobody left to write to.
                Broken();
                return;
            }

            frame = null;
        }

        if (!_broken && _socket.State is WebSocketState.Open or WebSocketState.CloseReceived)
        {
            using var timeout = new CancellationTokenSource(_closeTimeout);
            try
            {
                await _socket.CloseOutputAsync(_closeStatus, _closeReason, timeout.Token).ConfigureAwait(false);
            }
            catch (Exception ex) when (ex is WebSocketException or ObjectDisposedException or OperationCanceledException or IOException or InvalidOperationException)
            {
                _socket.Abort();
                _ = _receiveAbort.CancelAsync();
            }
        }

        _writerFinished.TrySetResult();
    }

    /// <summary>Queues a frame unless closing or full; starts the writer when none is running.</summary>
    private Queued TryQueue(byte[] frame)
    {
        bool write;
        lock (_gate)
        {
            if (_outboxCompleted)
            {
                return Queued.Closing;
            }

            write = !_writing;
            if (write)
            {
                // Nothing being written, so nothing queued: this frame goes straight to the socket.
                _writing = true;
            }
            else
            {
                _outbox ??= new Queue<byte[]>(4);
                if (!HasRoomFor(frame.Length))
                {
                    return Queued.Full;
                }

                _outbox.Enqueue(frame);
                _queuedBytes += frame.Length;
            }
        }

        if (write)
        {
            _ = WriteQueuedAsync(frame);
        }

        return Queued.Yes;
    }

    /// <summary>Whether a frame of <paramref name="length"/> bytes fits in the outbox: an empty one takes any frame. Under the lock.</summary>
    private bool HasRoomFor(int length) =>
        _outbox is null || _outbox.Count == 0 || (_outbox.Count < _outboxFrames && _queuedBytes + length <= _outboxBytes);

    /// <summary>Whether the outbox is below both budgets. Under the lock.</summary>
    private bool BelowBudget() =>
        _outbox is null || (_outbox.Count < _outboxFrames && _queuedBytes < _outboxBytes);

    /// <summary>The reply waiting for outbox space, if any, to be woken once the lock is released. Under the lock.</summary>
    private TaskCompletionSource? TakeSpaceWaiter()
    {
        var space = _space;
        _space = null;
        return space;
    }

    private void Broken()
    {
        TaskCompletionSource? space;
        lock (_gate)
        {
            _broken = true;
            _outboxCompleted = true;
            _outbox?.Clear();
            _queuedBytes = 0;
            space = TakeSpaceWaiter();
        }

        space?.TrySetResult();
        // Not inline: the receive loop's continuation must not run under the caller's locks.
        _ = _receiveAbort.CancelAsync();
        _writerFinished.TrySetResult();
    }

    private enum Queued
    {
        Yes,
        Full,
        Closing,
    }
}
