using System.Net.WebSockets;
using System.Threading.Channels;
using Broker.Frontend.Hosting;
using Broker.Frontend.Protocol;
using Broker.Grains.Models;

namespace Broker.Frontend.Connections;

/// <summary>
/// One client socket: who it is, the rooms it sits in, and its bounded outbox. Anybody may call
/// <see cref="Send"/> from any thread; it never blocks: a full outbox closes the connection with
/// 1013 instead of making the room (or anybody else) wait. One writer task owns every send on
/// the socket, the close frame included.
/// </summary>
public sealed class ClientConnection
{
    private readonly WebSocket _socket;
    private readonly Channel<byte[]> _outbox;
    private readonly TimeSpan _closeTimeout;
    private readonly CancellationTokenSource _receiveAbort = new();
    private readonly TaskCompletionSource _finished = new(TaskCreationOptions.RunContinuationsAsynchronously);
    private int _closeRequested;
    private volatile bool _dropPending;
    private WebSocketCloseStatus _closeStatus;
    private string _closeReason = string.Empty;

    public ClientConnection(
        string id,
        string user,
        string ns,
        NamespaceOptions options,
        WebSocket socket,
        int outboxFrames,
        TimeSpan closeTimeout)
    {
        Id = id;
        User = user;
        Namespace = ns;
        Options = options;
        Policy = options.ToRoomPolicy();
        _socket = socket;
        _closeTimeout = closeTimeout;
        _outbox = Channel.CreateBounded<byte[]>(new BoundedChannelOptions(outboxFrames)
        {
            SingleReader = true,
            SingleWriter = false,
            FullMode = BoundedChannelFullMode.Wait,
        });
    }

    public string Id { get; }

    public string User { get; }

    public string Namespace { get; }

    public NamespaceOptions Options { get; }

    public RoomPolicy Policy { get; }

    public WebSocket Socket => _socket;

    /// <summary>Rooms joined (or being joined), by room name. Touched only by this connection's receive loop.</summary>
    public Dictionary<string, RoomMembership> Rooms { get; } = new(StringComparer.Ordinal);

    /// <summary>Cancelled when the receive loop must stop waiting (close handshake timed out, shutdown).</summary>
    public CancellationToken ReceiveAborted => _receiveAbort.Token;

    /// <summary>Completes when the connection's handler has finished, cleanup included.</summary>
    public Task Finished => _finished.Task;

    public TimeSpan CloseTimeout => _closeTimeout;

    public void MarkFinished() => _finished.TrySetResult();

    public bool IsClosing => Volatile.Read(ref _closeRequested) != 0;

    /// <summary>The close status this side asked for, once it asked.</summary>
    public WebSocketCloseStatus? CloseStatus => IsClosing ? _closeStatus : null;

    /// <summary>Queues a frame; false when the connection is closing or its outbox overflowed (it is then closed with 1013).</summary>
    public bool Send(byte[] frame)
    {
        if (_outbox.Writer.TryWrite(frame))
        {
            return true;
        }

        if (!IsClosing)
        {
            Close(CloseCodes.TryAgainLater, "Slow consumer: outbox full. Reconnect and recover with since+epoch.", dropPending: true);
        }

        return false;
    }

    /// <summary>
    /// Queues a reply to the client's own frame, waiting for outbox space: a client that sends
    /// faster than it reads is slowed down (its frames wait in TCP), not disconnected.
    /// Pushes from rooms use <see cref="Send"/> and never wait.
    /// </summary>
    public async ValueTask ReplyAsync(byte[] frame)
    {
        try
        {
            await _outbox.Writer.WriteAsync(frame, _receiveAbort.Token).ConfigureAwait(false);
        }
        catch (Exception ex) when (ex is ChannelClosedException or OperationCanceledException)
        {
            // Closing: the reply has nobody to go to.
        }
    }

    /// <summary>
    /// Waits until at most <paramref name="frames"/> frames are queued (or the connection
    /// closes): a catch-up hands over to the live stream only with room left in the outbox,
    /// since live pushes never wait.
    /// </summary>
    public async Task WaitForOutboxBelowAsync(int frames)
    {
        try
        {
            while (!IsClosing && _outbox.Reader.Count > frames)
            {
                await Task.Delay(2, _receiveAbort.Token).ConfigureAwait(false);
            }
        }
        catch (OperationCanceledException)
        {
            // Closing.
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
        _dropPending = dropPending;
        _outbox.Writer.TryComplete();

        // The peer has CloseTimeout to finish the handshake; then the socket is aborted.
        _receiveAbort.CancelAfter(_closeTimeout + _closeTimeout);
    }

    /// <summary>Writes queued frames until the outbox completes, then the close frame. Owns every send.</summary>
    public async Task RunWriterAsync()
    {
        var reader = _outbox.Reader;
        try
        {
            while (await reader.WaitToReadAsync().ConfigureAwait(false))
            {
                while (!_dropPending && reader.TryRead(out var frame))
                {
                    await _socket.SendAsync(frame, WebSocketMessageType.Text, endOfMessage: true, CancellationToken.None).ConfigureAwait(false);
                }

                if (_dropPending)
                {
                    break;
                }
            }
        }
        catch (Exception ex) when (ex is WebSocketException or ObjectDisposedException or OperationCanceledException or IOException)
        {
            // The socket broke; there is nobody left to write to.
            _receiveAbort.Cancel();
            return;
        }

        if (IsClosing && _socket.State is WebSocketState.Open or WebSocketState.CloseReceived)
        {
            using var timeout = new CancellationTokenSource(_closeTimeout);
            try
            {
                await _socket.CloseOutputAsync(_closeStatus, _closeReason, timeout.Token).ConfigureAwait(false);
            }
            catch (Exception ex) when (ex is WebSocketException or ObjectDisposedException or OperationCanceledException or IOException)
            {
                _socket.Abort();
                _receiveAbort.Cancel();
            }
        }
    }
}
