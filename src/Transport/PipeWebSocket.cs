using System.Buffers;
using System.Buffers.Binary;
using System.IO.Pipelines;
using System.Net.Sockets;
using System.Net.WebSockets;
using System.Runtime.InteropServices;
using System.Text;
using Microsoft.AspNetCore.Connections;
using Microsoft.AspNetCore.Connections.Features;

namespace Broker.Transport;

/// <summary>
/// The server side of RFC 6455 on a Kestrel connection's own pipes: no HTTP request, no
/// upgraded stream and no <see cref="System.Net.WebSockets.ManagedWebSocket"/> in between. A
/// data frame is its 2–10 header bytes and the payload copied once into the transport's output
/// pipe; reads take frames straight from the input pipe, which holds no buffer while the socket
/// is idle. No extensions are negotiated. Protocol violations close with 1002, a text message
/// that is not valid UTF-8 with 1007 (checked as its bytes arrive); a message over
/// <see cref="MaxMessageBytes"/> throws <see cref="MessageTooBigException"/> as soon as its
/// header says so. Pings are answered here while the connection's frame budget
/// (<see cref="LimitControlFrames"/>) allows, and dropped unanswered beyond it; keep-alive pings
/// go out every <c>keepAliveInterval</c>, and a pong missing for <c>keepAliveTimeout</c> aborts
/// the connection. Headers are read and written by <see cref="WebSocketFrameCodec"/>.
/// </summary>
public sealed class PipeWebSocket : WebSocket
{
    private const int MaxControlPayload = WebSocketFrameCodec.MaxControlPayload;

    private readonly ConnectionContext _connection;
    private readonly PipeReader _input;
    private const int DirectScratchBytes = 16 * 1024;

    [ThreadStatic]
    private static byte[]? t_scratch;

    // The connection's socket while frames are sent on it directly; null once a send could not
    // take a whole frame (from then on every frame goes through Kestrel's output pipe, in order).
    private Socket? _direct;
    private readonly SemaphoreSlim _writeLock = new(1, 1);
    private readonly long _maxMessageBytes;
    private readonly ITimer? _keepAlive;
    private readonly long _keepAliveInterval;
    private readonly long _keepAliveTimeout;
    private readonly Lock _stateGate = new();
    private WebSocketState _state = WebSocketState.Open;
    private WebSocketFailure _failure;
    private WebSocketCloseStatus? _closeStatus;
    private string? _closeStatusDescription;

    // Receive state: touched only by the (single) receiving caller.
    private long _frameRemaining;
    private bool _frameFin;
    private uint _mask;
    private int _maskOffset;
    private bool _inMessage;
    private bool _inFrame;
    private WebSocketMessageType _messageType;
    private long _messageBytes;
    private Utf8Validator _utf8;

    // Control frames spend the connection's frame budget (set by its owner; null: unlimited).
    private IControlFrameBudget? _controlBudget;
    private int _maxControlDropped;
    private int _controlDropped;

    // Send state: touched only under _writeLock.
    private bool _sendContinuation;

    // Keep-alive: timestamps (Environment.TickCount64) of the last ping sent and pong received.
    private long _pingSentAt;
    private long _pongSeenAt;

    /// <param name="directWrites">
    /// Send frames on the connection's socket with a non-blocking send, not through Kestrel's
    /// output pipe and its send loop; the pipe takes over for good the first time the kernel's
    /// buffer cannot take a whole frame. Nothing may have been written to the pipe before.
    /// </param>
    public PipeWebSocket(ConnectionContext connection, long maxMessageBytes, TimeSpan keepAliveInterval, TimeSpan keepAliveTimeout, bool directWrites = false)
    {
        _connection = connection;
        _input = connection.Transport.Input;
        if (directWrites && ((connection as IConnectionSocketFeature) ?? connection.Features.Get<IConnectionSocketFeature>())?.Socket is { } socket)
        {
            socket.Blocking = false;
            _direct = socket;
        }

        _maxMessageBytes = maxMessageBytes;
        if (keepAliveInterval > TimeSpan.Zero)
        {
            _keepAliveInterval = (long)keepAliveInterval.TotalMilliseconds;
            _keepAliveTimeout = keepAliveTimeout > TimeSpan.Zero ? (long)keepAliveTimeout.TotalMilliseconds : 0;
            _keepAlive = TimeProvider.System.CreateTimer(static s => ((PipeWebSocket)s!).OnKeepAliveTick(), this, keepAliveInterval, Timeout.InfiniteTimeSpan);
        }
    }

    // The transport's writer, asked for only when a frame goes that way: a broker socket makes
    // its writer on first use, and a socket that always takes its frames whole never needs one.
    private PipeWriter Output => _connection.Transport.Output;

    /// <summary>Largest message (all its fragments) <see cref="ReceiveAsync(Memory{byte}, CancellationToken)"/> accepts.</summary>
    public long MaxMessageBytes => _maxMessageBytes;

    /// <summary>
    /// Makes every ping and pong the client sends spend one unit of <paramref name="budget"/>
    /// (the budget its data frames spend too). A ping that finds the budget empty is dropped
    /// unanswered — no pong written, nothing allocated; a pong over it still answers the
    /// keep-alive (a busy client at its rate limit is not taken for a dead one) but counts as
    /// dropped. <paramref name="maxDroppedInARow"/> control frames dropped with none taken in
    /// between fail the connection with 1008 (a flood that costs the node CPU for nothing).
    /// Called by the receiving side, before its first receive.
    /// </summary>
    public void LimitControlFrames(IControlFrameBudget budget, int maxDroppedInARow)
    {
        ArgumentOutOfRangeException.ThrowIfLessThan(maxDroppedInARow, 1);
        _controlBudget = budget;
        _maxControlDropped = maxDroppedInARow;
    }

    public override WebSocketCloseStatus? CloseStatus => _closeStatus;

    /// <summary>How the client ended the connection, when it broke a rule or vanished; <see cref="WebSocketFailure.None"/> otherwise.</summary>
    public WebSocketFailure Failure => _failure;

    public override string? CloseStatusDescription => _closeStatusDescription;

    public override WebSocketState State => _state;

    public override string? SubProtocol => null;

    public override void Abort()
    {
        lock (_stateGate)
        {
            if (_state is WebSocketState.Closed or WebSocketState.Aborted)
            {
                return;
            }

            _state = WebSocketState.Aborted;
        }

        _keepAlive?.Dispose();
        _connection.Abort(new ConnectionAbortedException("WebSocket aborted."));
    }

    public override void Dispose()
    {
        _keepAlive?.Dispose();
        lock (_stateGate)
        {
            if (_state is not WebSocketState.Aborted)
            {
                _state = WebSocketState.Closed;
            }
        }
    }

    public override Task CloseAsync(WebSocketCloseStatus closeStatus, string? statusDescription, CancellationToken cancellationToken) =>
        CloseOutputAsync(closeStatus, statusDescription, cancellationToken);

    public override async Task CloseOutputAsync(WebSocketCloseStatus closeStatus, string? statusDescription, CancellationToken cancellationToken)
    {
        lock (_stateGate)
        {
            switch (_state)
            {
                case WebSocketState.Open:
                    _state = WebSocketState.CloseSent;
                    break;
                case WebSocketState.CloseReceived:
                    _state = WebSocketState.Closed;
                    break;
                default:
                    return;
            }
        }

        _keepAlive?.Dispose();
        await WriteCloseFrameAsync((ushort)closeStatus, statusDescription, cancellationToken).ConfigureAwait(false);
    }

    public override Task SendAsync(ArraySegment<byte> buffer, WebSocketMessageType messageType, bool endOfMessage, CancellationToken cancellationToken) =>
        SendAsync(buffer.AsMemory(), messageType, endOfMessage, cancellationToken).AsTask();

    public override ValueTask SendAsync(ReadOnlyMemory<byte> buffer, WebSocketMessageType messageType, bool endOfMessage, CancellationToken cancellationToken)
    {
        if (messageType is not (WebSocketMessageType.Text or WebSocketMessageType.Binary))
        {
            throw new ArgumentException("Only text and binary messages can be sent; close with CloseOutputAsync.", nameof(messageType));
        }

        if (_state is not (WebSocketState.Open or WebSocketState.CloseReceived))
        {
            return ValueTask.FromException(new WebSocketException(WebSocketError.InvalidState, $"The WebSocket is {_state}; nothing more can be sent."));
        }

        if (!_writeLock.Wait(0))
        {
            return SendContendedAsync(buffer, messageType, endOfMessage, cancellationToken);
        }

        // The fast path: frame written and flushed on the caller's thread, without an await.
        var released = false;
        try
        {
            var flush = WriteDataFrame(buffer.Span, messageType, endOfMessage, cancellationToken);
            if (!flush.IsCompleted)
            {
                released = true;
                return FlushThenReleaseAsync(flush);
            }

            ThrowIfOutputClosed(flush.Result);
            return ValueTask.CompletedTask;
        }
        catch (Exception ex) when (ex is not WebSocketException)
        {
            return ValueTask.FromException(new WebSocketException(WebSocketError.ConnectionClosedPrematurely, ex));
        }
        catch (WebSocketException ex)
        {
            return ValueTask.FromException(ex);
        }
        finally
        {
            if (!released)
            {
                _writeLock.Release();
            }
        }
    }

    public override Task<WebSocketReceiveResult> ReceiveAsync(ArraySegment<byte> buffer, CancellationToken cancellationToken) =>
        ReceiveSegmentAsync(buffer, cancellationToken);

    /// <summary>
    /// Reads the next piece of a data message into <paramref name="buffer"/>; control frames are
    /// handled on the way. An empty buffer waits for the next data frame's header without
    /// taking any payload (a zero-byte read).
    /// </summary>
    public override ValueTask<ValueWebSocketReceiveResult> ReceiveAsync(Memory<byte> buffer, CancellationToken cancellationToken)
    {
        if (!buffer.IsEmpty || _inFrame || _state is not (WebSocketState.Open or WebSocketState.CloseSent))
        {
            return ReceiveCoreAsync(buffer, cancellationToken);
        }

        if (_connection is BrokerSocketConnection broker)
        {
            return WaitOnSocketThenReceive(broker, buffer, cancellationToken);
        }

        // A zero-byte read on an idle socket: wait for bytes with nothing but the pipe's own
        // awaitable, so that an idle connection holds one small state machine, not the frame
        // reader's. The bytes stay in the pipe (nothing consumed or examined) for the reader.
        ValueTask<ReadResult> read;
        try
        {
            read = _input.ReadAsync(cancellationToken);
        }
        catch (Exception ex) when (IsTransportFailure(ex))
        {
            return ValueTask.FromException<ValueWebSocketReceiveResult>(Lost(ex));
        }

        if (!read.IsCompleted)
        {
            return WaitForBytesThenReceiveAsync(read, cancellationToken);
        }

        _input.AdvanceTo(read.Result.Buffer.Start);
        return ReceiveCoreAsync(buffer, cancellationToken);
    }

    /// <summary>
    /// The idle wait on a broker socket: when its reader holds nothing unread, the socket's own
    /// zero-byte receive, so that an idle connection holds neither the reader's read nor its
    /// cancellation registrations, only the socket's operation and one small state machine.
    /// </summary>
    private ValueTask<ValueWebSocketReceiveResult> WaitOnSocketThenReceive(BrokerSocketConnection broker, Memory<byte> buffer, CancellationToken cancellationToken)
    {
        ValueTask<int> wait;
        try
        {
            if (_input.TryRead(out var unread))
            {
                _input.AdvanceTo(unread.Buffer.Start);
                return ReceiveCoreAsync(buffer, cancellationToken);
            }

            wait = broker.WaitForBytesAsync(cancellationToken);
        }
        catch (Exception ex) when (IsTransportFailure(ex) || ex is SocketException)
        {
            return ValueTask.FromException<ValueWebSocketReceiveResult>(Lost(ex));
        }

        return wait.IsCompletedSuccessfully ? ReceiveCoreAsync(buffer, cancellationToken) : WaitOnSocketThenReceiveAsync(wait, cancellationToken);
    }

    private async ValueTask<ValueWebSocketReceiveResult> WaitOnSocketThenReceiveAsync(ValueTask<int> wait, CancellationToken cancellationToken)
    {
        try
        {
            await wait.ConfigureAwait(false);
        }
        catch (Exception ex) when (IsTransportFailure(ex) || ex is SocketException)
        {
            throw Lost(ex);
        }

        return await ReceiveCoreAsync(Memory<byte>.Empty, cancellationToken).ConfigureAwait(false);
    }

    private async ValueTask<ValueWebSocketReceiveResult> WaitForBytesThenReceiveAsync(ValueTask<ReadResult> read, CancellationToken cancellationToken)
    {
        ReadResult result;
        try
        {
            result = await read.ConfigureAwait(false);
        }
        catch (Exception ex) when (IsTransportFailure(ex))
        {
            throw Lost(ex);
        }

        _input.AdvanceTo(result.Buffer.Start);
        return await ReceiveCoreAsync(Memory<byte>.Empty, cancellationToken).ConfigureAwait(false);
    }

    private async ValueTask<ValueWebSocketReceiveResult> ReceiveCoreAsync(Memory<byte> buffer, CancellationToken cancellationToken)
    {
        if (_state is not (WebSocketState.Open or WebSocketState.CloseSent))
        {
            throw new WebSocketException(WebSocketError.InvalidState, $"The WebSocket is {_state}; nothing more can be received.");
        }

        try
        {
            while (!_inFrame)
            {
                var header = await ReadHeaderAsync(cancellationToken).ConfigureAwait(false);
                if (header.IsControl)
                {
                    if (await HandleControlFrameAsync(header, cancellationToken).ConfigureAwait(false) is { } closed)
                    {
                        return closed;
                    }

                    continue;
                }

                StartDataFrame(header);
                if (_frameRemaining == 0)
                {
                    // An empty frame: the whole of it is its header.
                    _inFrame = false;
                    CheckText([]);
                    return EndFrame(0);
                }
            }

            if (buffer.IsEmpty)
            {
                return new ValueWebSocketReceiveResult(0, _messageType, endOfMessage: false);
            }

            var result = await _input.ReadAsync(cancellationToken).ConfigureAwait(false);
            var available = result.Buffer;
            if (available.IsEmpty && result.IsCompleted)
            {
                throw new WebSocketException(WebSocketError.ConnectionClosedPrematurely, "The peer closed the connection in the middle of a frame.");
            }

            var count = (int)Math.Min(Math.Min(available.Length, _frameRemaining), buffer.Length);
            var target = buffer.Span[..count];
            available.Slice(0, count).CopyTo(target);
            _input.AdvanceTo(available.GetPosition(count));
            _maskOffset = WebSocketFrameCodec.Mask(target, _mask, _maskOffset);
            _frameRemaining -= count;
            if (_frameRemaining == 0)
            {
                _inFrame = false;
            }

            CheckText(target);
            return EndFrame(count);
        }
        catch (ProtocolViolationException ex)
        {
            await FailAsync(ex.Status, ex.Message).ConfigureAwait(false);
            throw new WebSocketException(WebSocketError.Faulted, ex.Message, ex);
        }
        catch (Exception ex) when (IsTransportFailure(ex) && ex is not MessageTooBigException)
        {
            throw Lost(ex);
        }
    }

    private async Task<WebSocketReceiveResult> ReceiveSegmentAsync(ArraySegment<byte> buffer, CancellationToken cancellationToken)
    {
        var result = await ReceiveAsync(buffer.AsMemory(), cancellationToken).ConfigureAwait(false);
        return result.MessageType == WebSocketMessageType.Close
            ? new WebSocketReceiveResult(0, WebSocketMessageType.Close, true, _closeStatus, _closeStatusDescription)
            : new WebSocketReceiveResult(result.Count, result.MessageType, result.EndOfMessage);
    }

    /// <summary>Checks a text message's payload as it arrives (the frame state already advanced past it).</summary>
    private void CheckText(ReadOnlySpan<byte> payload)
    {
        if (_messageType == WebSocketMessageType.Text && !_utf8.Append(payload, endOfMessage: !_inFrame && _frameFin))
        {
            throw new ProtocolViolationException(WebSocketCloseStatus.InvalidPayloadData, "Text frames must be valid UTF-8.");
        }
    }

    private ValueWebSocketReceiveResult EndFrame(int count)
    {
        var endOfMessage = !_inFrame && _frameFin;
        if (endOfMessage)
        {
            _inMessage = false;
        }

        return new ValueWebSocketReceiveResult(count, _messageType, endOfMessage);
    }

    private void StartDataFrame(FrameHeader header)
    {
        if (header.Opcode == WebSocketOpcode.Continuation)
        {
            if (!_inMessage)
            {
                throw Violation("A continuation frame arrived with no message to continue.");
            }
        }
        else
        {
            if (_inMessage)
            {
                throw Violation("A new message started before the previous one's last fragment.");
            }

            _inMessage = true;
            _messageBytes = 0;
            _messageType = header.Opcode == WebSocketOpcode.Text ? WebSocketMessageType.Text : WebSocketMessageType.Binary;
            _utf8.Reset();
        }

        _messageBytes += header.Length;
        if (_messageBytes > _maxMessageBytes)
        {
            _failure = WebSocketFailure.MessageTooBig;
            throw new MessageTooBigException(_maxMessageBytes);
        }

        _inFrame = true;
        _frameFin = header.Fin;
        _frameRemaining = header.Length;
        _mask = header.Mask;
        _maskOffset = 0;
    }

    /// <summary>Reads one frame header, waiting for as many bytes as it needs.</summary>
    private async ValueTask<FrameHeader> ReadHeaderAsync(CancellationToken cancellationToken)
    {
        while (true)
        {
            var result = await _input.ReadAsync(cancellationToken).ConfigureAwait(false);
            var buffer = result.Buffer;
            switch (WebSocketFrameCodec.TryReadClientHeader(buffer, out var header, out var length, out var violation))
            {
                case FrameHeaderStatus.Parsed:
                    _input.AdvanceTo(buffer.GetPosition(length));
                    return header;
                case FrameHeaderStatus.Invalid:
                    _input.AdvanceTo(buffer.Start);
                    throw Violation(violation!);
            }

            if (result.IsCompleted)
            {
                // Gone without a close frame: a reset, or a FIN where a reset may be reported as
                // one (what the kernel says depends on timing); counted as one kind, abrupt.
                _input.AdvanceTo(buffer.End);
                if (_failure == WebSocketFailure.None)
                {
                    _failure = WebSocketFailure.Reset;
                }

                throw new WebSocketException(WebSocketError.ConnectionClosedPrematurely, "The peer closed the connection without a close frame.");
            }

            _input.AdvanceTo(buffer.Start, buffer.End);
        }
    }

    /// <summary>Handles a ping, pong or close; returns the result to hand the caller for a close.</summary>
    private async ValueTask<ValueWebSocketReceiveResult?> HandleControlFrameAsync(FrameHeader header, CancellationToken cancellationToken)
    {
        if (header.Opcode == WebSocketOpcode.Close)
        {
            return await HandleCloseFrameAsync(await ReadCloseFramePayloadAsync(header, cancellationToken).ConfigureAwait(false)).ConfigureAwait(false);
        }

        // A ping or pong (at most 125 bytes) is used where it lies in the input buffer: a flood
        // of them allocates nothing, and one over the budget costs only its parsing. Every ping
        // within the budget gets its own pong with its own payload (what Autobahn's 2.10 checks;
        // RFC 6455 5.5.3 would allow answering only the latest): a flood is the budget's to stop.
        var length = (int)header.Length;
        ValueTask answer;
        if (length == 0)
        {
            answer = OnPingOrPong(header, ReadOnlySequence<byte>.Empty, cancellationToken);
        }
        else
        {
            var result = await _input.ReadAtLeastAsync(length, cancellationToken).ConfigureAwait(false);
            var buffer = result.Buffer;
            if (buffer.Length < length)
            {
                _input.AdvanceTo(buffer.End);
                throw new WebSocketException(WebSocketError.ConnectionClosedPrematurely, "The peer closed the connection in the middle of a frame.");
            }

            var payload = buffer.Slice(0, length);
            try
            {
                answer = OnPingOrPong(header, payload, cancellationToken);
            }
            finally
            {
                _input.AdvanceTo(payload.End);
            }
        }

        await answer.ConfigureAwait(false);
        return null;
    }

    /// <summary>Spends the budget on a ping or pong and answers a ping; the pong's write is the result (synchronous when the socket takes it).</summary>
    private ValueTask OnPingOrPong(FrameHeader header, ReadOnlySequence<byte> maskedPayload, CancellationToken cancellationToken)
    {
        if (header.Opcode == WebSocketOpcode.Pong)
        {
            Volatile.Write(ref _pongSeenAt, Environment.TickCount64);
        }

        if (_controlBudget is { } budget)
        {
            if (!budget.TryTake())
            {
                if (++_controlDropped >= _maxControlDropped)
                {
                    throw new ProtocolViolationException(
                        WebSocketCloseStatus.PolicyViolation,
                        $"Too many control frames: {_controlDropped} in a row over the frame rate limit.");
                }

                return ValueTask.CompletedTask;
            }

            _controlDropped = 0;
        }

        if (header.Opcode == WebSocketOpcode.Pong)
        {
            return ValueTask.CompletedTask;
        }

        if (_state is not (WebSocketState.Open or WebSocketState.CloseReceived))
        {
            // Our close is out: nothing more is sent.
            return ValueTask.CompletedTask;
        }

        Span<byte> payload = stackalloc byte[MaxControlPayload];
        payload = payload[..(int)maskedPayload.Length];
        maskedPayload.CopyTo(payload);
        WebSocketFrameCodec.Mask(payload, header.Mask, 0);
        if (!_writeLock.Wait(0))
        {
            // Another write is in progress: the pong waits its turn with a copy of its own.
            return WriteControlFrameAsync(WebSocketOpcode.Pong, payload.ToArray(), cancellationToken);
        }

        var released = false;
        try
        {
            var flush = WriteFrame(WebSocketOpcode.Pong, fin: true, payload, cancellationToken);
            if (!flush.IsCompleted)
            {
                released = true;
                return FlushThenReleaseAsync(flush);
            }

            ThrowIfOutputClosed(flush.Result);
            return ValueTask.CompletedTask;
        }
        catch (Exception ex) when (IsTransportFailure(ex))
        {
            throw new WebSocketException(WebSocketError.ConnectionClosedPrematurely, ex);
        }
        finally
        {
            if (!released)
            {
                _writeLock.Release();
            }
        }
    }

    private async ValueTask<byte[]> ReadCloseFramePayloadAsync(FrameHeader header, CancellationToken cancellationToken)
    {
        var payload = new byte[header.Length];
        var read = 0;
        while (read < payload.Length)
        {
            var result = await _input.ReadAsync(cancellationToken).ConfigureAwait(false);
            var buffer = result.Buffer;
            var count = (int)Math.Min(buffer.Length, payload.Length - read);
            buffer.Slice(0, count).CopyTo(payload.AsSpan(read));
            _input.AdvanceTo(buffer.GetPosition(count));
            read += count;
            if (read < payload.Length && result.IsCompleted)
            {
                throw new WebSocketException(WebSocketError.ConnectionClosedPrematurely, "The peer closed the connection in the middle of a frame.");
            }
        }

        WebSocketFrameCodec.Mask(payload, header.Mask, 0);
        return payload;
    }

    private async ValueTask<ValueWebSocketReceiveResult?> HandleCloseFrameAsync(byte[] payload)
    {
        var status = WebSocketCloseStatus.Empty;
        string? description = null;
        if (payload.Length == 1)
        {
            throw Violation("A close frame's payload must be empty or hold a 2-byte code.");
        }

        if (payload.Length >= 2)
        {
            var code = BinaryPrimitives.ReadUInt16BigEndian(payload);
            if (!WebSocketFrameCodec.IsValidCloseCode(code))
            {
                throw Violation($"Close code {code} may not be sent.");
            }

            status = (WebSocketCloseStatus)code;
            if (!System.Text.Unicode.Utf8.IsValid(payload.AsSpan(2)))
            {
                await FailAsync(WebSocketCloseStatus.InvalidPayloadData, "The close reason is not valid UTF-8.").ConfigureAwait(false);
                throw new WebSocketException(WebSocketError.Faulted, "The close reason is not valid UTF-8.");
            }

            description = Encoding.UTF8.GetString(payload, 2, payload.Length - 2);
        }

        _closeStatus = status;
        _closeStatusDescription = description;
        lock (_stateGate)
        {
            _state = _state switch
            {
                WebSocketState.Open => WebSocketState.CloseReceived,
                WebSocketState.CloseSent => WebSocketState.Closed,
                _ => _state,
            };
        }

        return new ValueWebSocketReceiveResult(0, WebSocketMessageType.Close, endOfMessage: true);
    }

    private static ProtocolViolationException Violation(string reason) => new(WebSocketCloseStatus.ProtocolError, reason);

    /// <summary>Sends a close frame for a receive-side failure (no handshake wait) and marks the socket closed.</summary>
    private async Task FailAsync(WebSocketCloseStatus status, string reason)
    {
        _failure = status switch
        {
            WebSocketCloseStatus.InvalidPayloadData => WebSocketFailure.InvalidUtf8,
            WebSocketCloseStatus.PolicyViolation => WebSocketFailure.ControlFrameFlood,
            _ => WebSocketFailure.ProtocolError,
        };
        bool write;
        lock (_stateGate)
        {
            write = _state is WebSocketState.Open or WebSocketState.CloseReceived;
            if (_state is not WebSocketState.Aborted)
            {
                _state = WebSocketState.Closed;
            }
        }

        _keepAlive?.Dispose();
        if (write)
        {
            using var timeout = new CancellationTokenSource(TimeSpan.FromSeconds(5));
            try
            {
                await WriteCloseFrameAsync((ushort)status, reason, timeout.Token).ConfigureAwait(false);
            }
            catch (Exception ex) when (ex is WebSocketException or OperationCanceledException)
            {
                // The peer is gone or not reading: nothing more to say to it.
            }
        }
    }

    private Task WriteCloseFrameAsync(ushort code, string? reason, CancellationToken cancellationToken)
    {
        var payload = new byte[2 + Math.Min(Encoding.UTF8.GetByteCount(reason ?? string.Empty), MaxControlPayload - 2)];
        BinaryPrimitives.WriteUInt16BigEndian(payload, code);
        if (!string.IsNullOrEmpty(reason))
        {
            // A reason over 123 bytes is cut (at a character boundary).
            var encoder = Encoding.UTF8.GetEncoder();
            encoder.Convert(reason, payload.AsSpan(2), flush: true, out _, out _, out _);
        }

        return WriteControlFrameAsync(WebSocketOpcode.Close, payload, cancellationToken).AsTask();
    }

    private ValueTask WriteControlFrameAsync(WebSocketOpcode opcode, ReadOnlyMemory<byte> payload, CancellationToken cancellationToken) =>
        WriteLockedAsync(
            (Opcode: opcode, Payload: payload),
            static (socket, frame, ct) => socket.WriteFrame(frame.Opcode, fin: true, frame.Payload.Span, ct),
            cancellationToken);

    private ValueTask SendContendedAsync(ReadOnlyMemory<byte> buffer, WebSocketMessageType messageType, bool endOfMessage, CancellationToken cancellationToken) =>
        WriteLockedAsync(
            (Payload: buffer, Type: messageType, End: endOfMessage),
            static (socket, frame, ct) => socket._state is WebSocketState.Open or WebSocketState.CloseReceived
                ? socket.WriteDataFrame(frame.Payload.Span, frame.Type, frame.End, ct)
                : throw new WebSocketException(WebSocketError.InvalidState, $"The WebSocket is {socket._state}; nothing more can be sent."),
            cancellationToken);

    /// <summary>The 101 response: the first bytes of the connection, on the same path as the frames after it.</summary>
    internal ValueTask SendHandshakeResponseAsync(byte[] response) =>
        WriteLockedAsync(response, static (socket, bytes, ct) => socket.WriteBytes(bytes, ct), CancellationToken.None);

    /// <summary>Waits for the write lock, writes under it (synchronously) and releases it once the write is flushed.</summary>
    private async ValueTask WriteLockedAsync<TState>(TState state, Func<PipeWebSocket, TState, CancellationToken, ValueTask<FlushResult>> write, CancellationToken cancellationToken)
    {
        await _writeLock.WaitAsync(cancellationToken).ConfigureAwait(false);
        ValueTask<FlushResult> flush;
        try
        {
            flush = write(this, state, cancellationToken);
        }
        catch (Exception ex) when (IsTransportFailure(ex))
        {
            _writeLock.Release();
            throw new WebSocketException(WebSocketError.ConnectionClosedPrematurely, ex);
        }
        catch
        {
            _writeLock.Release();
            throw;
        }

        await FlushThenReleaseAsync(flush).ConfigureAwait(false);
    }

    /// <summary>Awaits a write's flush with the write lock held, then releases it.</summary>
    private async ValueTask FlushThenReleaseAsync(ValueTask<FlushResult> flush)
    {
        try
        {
            ThrowIfOutputClosed(await flush.ConfigureAwait(false));
        }
        catch (Exception ex) when (IsTransportFailure(ex))
        {
            throw new WebSocketException(WebSocketError.ConnectionClosedPrematurely, ex);
        }
        finally
        {
            _writeLock.Release();
        }
    }

    /// <summary>The receiving side's connection is gone: recorded as a <see cref="WebSocketFailure.Reset"/> when the peer reset it.</summary>
    private WebSocketException Lost(Exception ex)
    {
        if (ex is ConnectionResetException || (ex is SocketException socketError && BrokerSocketConnection.IsReset(socketError.SocketErrorCode)))
        {
            _failure = WebSocketFailure.Reset;
        }

        return new WebSocketException(WebSocketError.ConnectionClosedPrematurely, ex);
    }

    /// <summary>What a closed or reset connection throws from its pipes (ConnectionResetException is an IOException, ConnectionAbortedException an OperationCanceledException).</summary>
    private static bool IsTransportFailure(Exception ex) =>
        ex is InvalidOperationException or IOException or ConnectionAbortedException;

    private ValueTask<FlushResult> WriteDataFrame(ReadOnlySpan<byte> payload, WebSocketMessageType messageType, bool endOfMessage, CancellationToken cancellationToken)
    {
        var opcode = _sendContinuation ? WebSocketOpcode.Continuation : messageType == WebSocketMessageType.Text ? WebSocketOpcode.Text : WebSocketOpcode.Binary;
        _sendContinuation = !endOfMessage;
        return WriteFrame(opcode, endOfMessage, payload, cancellationToken);
    }

    /// <summary>
    /// One frame, header and payload (server frames are never masked), sent on the socket or
    /// written into the output pipe; the result is the pipe's flush (completed when sent
    /// directly). Under the write lock.
    /// </summary>
    private ValueTask<FlushResult> WriteFrame(WebSocketOpcode opcode, bool fin, ReadOnlySpan<byte> payload, CancellationToken cancellationToken)
    {
        Span<byte> header = stackalloc byte[WebSocketFrameCodec.MaxServerHeaderBytes];
        var headerLength = WebSocketFrameCodec.WriteServerHeader(header, opcode, fin, payload.Length);

        var total = headerLength + payload.Length;
        if (_direct is not null)
        {
            // One buffer, one send: the frame is copied once, into a per-thread scratch buffer.
            byte[]? rented = null;
            var frame = total <= DirectScratchBytes
                ? (t_scratch ??= new byte[DirectScratchBytes]).AsSpan(0, total)
                : (rented = ArrayPool<byte>.Shared.Rent(total)).AsSpan(0, total);
            try
            {
                header[..headerLength].CopyTo(frame);
                payload.CopyTo(frame[headerLength..]);
                return WriteBytes(frame, cancellationToken);
            }
            finally
            {
                if (rented is not null)
                {
                    ArrayPool<byte>.Shared.Return(rented);
                }
            }
        }

        var output = Output;
        var span = output.GetSpan(total <= 4096 ? total : headerLength);
        header[..headerLength].CopyTo(span);
        if (span.Length >= total)
        {
            // Usually one copy into one block.
            payload.CopyTo(span[headerLength..]);
            output.Advance(total);
        }
        else
        {
            output.Advance(headerLength);
            output.Write(payload);
        }

        return output.FlushAsync(cancellationToken);
    }

    /// <summary>Bytes on the socket directly while it takes them whole, else into the output pipe. Under the write lock.</summary>
    private ValueTask<FlushResult> WriteBytes(ReadOnlySpan<byte> bytes, CancellationToken cancellationToken)
    {
        if (_direct is { } socket)
        {
            int sent;
            SocketError error;
            try
            {
                sent = socket.Send(bytes, SocketFlags.None, out error);
            }
            catch (ObjectDisposedException ex)
            {
                throw new WebSocketException(WebSocketError.ConnectionClosedPrematurely, ex);
            }

            if (error == SocketError.Success && sent == bytes.Length)
            {
                return new ValueTask<FlushResult>(new FlushResult(isCanceled: false, isCompleted: false));
            }

            if (error is not (SocketError.Success or SocketError.WouldBlock))
            {
                if (BrokerSocketConnection.IsReset(error) && _failure == WebSocketFailure.None)
                {
                    _failure = WebSocketFailure.Reset;
                }

                throw new WebSocketException(WebSocketError.ConnectionClosedPrematurely, $"Send failed: {error}.");
            }

            // The kernel's buffer is full: the rest of this frame, and every frame after it, go
            // through Kestrel's output pipe, whose send loop waits for the socket; order is kept.
            _direct = null;
            bytes = bytes[Math.Max(0, sent)..];
        }

        var output = Output;
        output.Write(bytes);
        return output.FlushAsync(cancellationToken);
    }

    private static void ThrowIfOutputClosed(FlushResult result)
    {
        if (result.IsCompleted || result.IsCanceled)
        {
            throw new WebSocketException(WebSocketError.ConnectionClosedPrematurely, "The connection is closed.");
        }
    }

    private void OnKeepAliveTick()
    {
        if (_state is not WebSocketState.Open)
        {
            return;
        }

        var now = Environment.TickCount64;
        var pingSentAt = _pingSentAt;
        var awaitingPong = pingSentAt != 0 && Volatile.Read(ref _pongSeenAt) < pingSentAt;
        if (awaitingPong && _keepAliveTimeout > 0)
        {
            var late = now - pingSentAt;
            if (late >= _keepAliveTimeout)
            {
                // No pong within the timeout: the peer (or the path to it) is gone.
                Abort();
                return;
            }

            _keepAlive!.Change(TimeSpan.FromMilliseconds(_keepAliveTimeout - late), Timeout.InfiniteTimeSpan);
            return;
        }

        var sinceLastPing = pingSentAt == 0 ? _keepAliveInterval : now - pingSentAt;
        if (sinceLastPing < _keepAliveInterval)
        {
            _keepAlive!.Change(TimeSpan.FromMilliseconds(_keepAliveInterval - sinceLastPing), Timeout.InfiniteTimeSpan);
            return;
        }

        _pingSentAt = now;
        _ = SendKeepAlivePingAsync();
        var next = _keepAliveTimeout > 0 ? Math.Min(_keepAliveInterval, _keepAliveTimeout) : _keepAliveInterval;
        try
        {
            _keepAlive!.Change(TimeSpan.FromMilliseconds(next), Timeout.InfiniteTimeSpan);
        }
        catch (ObjectDisposedException)
        {
            // Closed meanwhile.
        }
    }

    private async Task SendKeepAlivePingAsync()
    {
        var payload = new byte[8];
        BinaryPrimitives.WriteInt64BigEndian(payload, _pingSentAt);
        try
        {
            await WriteControlFrameAsync(WebSocketOpcode.Ping, payload, CancellationToken.None).ConfigureAwait(false);
        }
        catch (WebSocketException)
        {
            // The connection is going; its receive loop will find out.
        }
    }

    /// <summary>A receive-side violation: the socket fails with <paramref name="status"/> (1002, 1007 or 1008).</summary>
    private sealed class ProtocolViolationException(WebSocketCloseStatus status, string message) : Exception(message)
    {
        public WebSocketCloseStatus Status { get; } = status;
    }
}

/// <summary>How a client broke off a <see cref="PipeWebSocket"/>, for the node's counts of client-caused events.</summary>
public enum WebSocketFailure : byte
{
    None,

    /// <summary>A frame broke RFC 6455: closed with 1002.</summary>
    ProtocolError,

    /// <summary>A text message was not valid UTF-8: closed with 1007.</summary>
    InvalidUtf8,

    /// <summary>Too many control frames over the frame budget in a row: closed with 1008.</summary>
    ControlFrameFlood,

    /// <summary>A message's headers announced more than the largest message taken (the receiver closes with 1009).</summary>
    MessageTooBig,

    /// <summary>The peer reset the TCP connection, or closed it without a close frame.</summary>
    Reset,
}

/// <summary>A message's header announced more than <see cref="PipeWebSocket.MaxMessageBytes"/> in total.</summary>
public sealed class MessageTooBigException(long limit)
    : IOException($"Message larger than {limit} bytes.");
