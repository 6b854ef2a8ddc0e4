using System.Net.WebSockets;
using System.Threading.Channels;

namespace Broker.Frontend.Tests.Units;

/// <summary>
/// A WebSocket whose peer reads only when the test says so: each send completes once the test
/// has released one frame (<see cref="Release"/>), so frames pile up behind it the way they do
/// behind a client that stops reading. Receiving is not needed by the units that use it.
/// </summary>
internal sealed class HeldWebSocket : WebSocket
{
    public static readonly TimeSpan Timeout = TimeSpan.FromSeconds(10);

    private readonly Channel<byte[]> _started = Channel.CreateUnbounded<byte[]>();
    private readonly SemaphoreSlim _credits = new(0);
    private WebSocketState _state = WebSocketState.Open;

    public override WebSocketCloseStatus? CloseStatus => SentCloseStatus;

    public override string? CloseStatusDescription => null;

    public override WebSocketState State => _state;

    public override string? SubProtocol => null;

    /// <summary>The close status the connection sent, once it did.</summary>
    public WebSocketCloseStatus? SentCloseStatus { get; private set; }

    /// <summary>Lets the peer take <paramref name="frames"/> more frames.</summary>
    public void Release(int frames) => _credits.Release(frames);

    /// <summary>The next frame the connection handed to the socket (its write may still be held).</summary>
    public async Task<byte[]> NextSentAsync() => await _started.Reader.ReadAsync().AsTask().WaitAsync(Timeout);

    public override ValueTask SendAsync(ReadOnlyMemory<byte> buffer, WebSocketMessageType messageType, bool endOfMessage, CancellationToken cancellationToken)
    {
        _started.Writer.TryWrite(buffer.ToArray());
        return _credits.Wait(0) ? ValueTask.CompletedTask : new ValueTask(_credits.WaitAsync(cancellationToken));
    }

    public override Task SendAsync(ArraySegment<byte> buffer, WebSocketMessageType messageType, bool endOfMessage, CancellationToken cancellationToken) =>
        SendAsync(buffer.AsMemory(), messageType, endOfMessage, cancellationToken).AsTask();

    public override Task CloseOutputAsync(WebSocketCloseStatus closeStatus, string? statusDescription, CancellationToken cancellationToken)
    {
        SentCloseStatus = closeStatus;
        _state = WebSocketState.CloseSent;
        return Task.CompletedTask;
    }

    public override Task CloseAsync(WebSocketCloseStatus closeStatus, string? statusDescription, CancellationToken cancellationToken) =>
        CloseOutputAsync(closeStatus, statusDescription, cancellationToken);

    public override Task<WebSocketReceiveResult> ReceiveAsync(ArraySegment<byte> buffer, CancellationToken cancellationToken) =>
        throw new NotSupportedException("The units that use this socket do not receive.");

    public override void Abort() => _state = WebSocketState.Aborted;

    public override void Dispose() => _state = WebSocketState.Closed;
}
