using System.IO.Pipelines;
using System.Net;
using System.Net.Sockets;
using Microsoft.AspNetCore.Connections;
using Microsoft.AspNetCore.Connections.Features;
using Microsoft.AspNetCore.Http.Features;

namespace Broker.Transport;

/// <summary>
/// One accepted TCP connection of <see cref="BrokerSocketTransportFactory"/>: the socket with a
/// reader and a writer straight on it, and nothing else until asked for. The reader makes a
/// zero-byte receive before it takes a buffer, so a connection waiting for bytes holds none;
/// the writer exists only once something is written through it (a WebSocket sends its frames
/// on the socket directly). No receive or send loop, no pipes in between, no feature
/// collection, id or items unless the HTTP server asks for them — the connections the HTTP
/// server serves get all of them, a WebSocket on <see cref="PipeWebSocket"/> gets none.
/// Failures surface the way Kestrel's own socket transport surfaces them, so that Kestrel logs
/// a client's reset at Debug, not as an error with a stack trace: a reset read is a
/// <see cref="ConnectionResetException"/>, a read after the connection was closed here is the
/// end of input, and a write that fails closes the connection instead of throwing (Kestrel's
/// flusher expects nothing but cancellation from a flush).
/// </summary>
public sealed class BrokerSocketConnection : ConnectionContext, IDuplexPipe, IConnectionSocketFeature,
    IConnectionIdFeature, IConnectionTransportFeature, IConnectionItemsFeature, IConnectionEndPointFeature, IConnectionLifetimeFeature
{
    private const int ReadBufferBytes = 4096;
    private static long s_lastId;

    // One reader per connection, all with the same options (the shared array pool's buffers).
    private static readonly StreamPipeReaderOptions s_readerOptions = new(bufferSize: ReadBufferBytes, minimumReadSize: 1024, leaveOpen: true, useZeroByteReads: true);

    private readonly Socket _socket;
    private readonly SocketStream _stream;
    private readonly IBrokerSocketOwner? _owner;
    private readonly PipeReader _reader;
    private readonly Lock _gate = new();
    private PipeWriter? _writer;
    private IDuplexPipe? _transport;
    private FeatureCollection? _features;
    private IDictionary<object, object?>? _items;
    private string? _id;
    private CancellationTokenSource? _closed;
    private EndPoint? _local;
    private EndPoint? _remote;
    private int _disposed;

    /// <param name="owner">Told once when the connection closes (the listener's count of open connections).</param>
    public BrokerSocketConnection(Socket socket, IBrokerSocketOwner? owner = null)
    {
        _socket = socket;
        _owner = owner;

        // The stream makes only asynchronous calls: a PipeWebSocket may switch the socket to
        // non-blocking for its direct sends.
        _stream = new SocketStream(this);
        _reader = PipeReader.Create(_stream, s_readerOptions);
    }

    public Socket Socket => _socket;

    public override string ConnectionId
    {
        get => _id ??= "B" + Interlocked.Increment(ref s_lastId).ToString("X8", System.Globalization.CultureInfo.InvariantCulture);
        set => _id = value;
    }

    public override IFeatureCollection Features => _features ??= CreateFeatures();

    public override IDictionary<object, object?> Items
    {
        get => _items ??= new ConnectionItems();
        set => _items = value;
    }

    /// <summary>The socket's own reader and writer until the HTTP server layers something on top (TLS, say).</summary>
    public override IDuplexPipe Transport
    {
        get => _transport ?? this;
        set => _transport = value;
    }

    PipeReader IDuplexPipe.Input => _reader;

    PipeWriter IDuplexPipe.Output
    {
        get
        {
            if (_writer is { } writer)
            {
                return writer;
            }

            lock (_gate)
            {
                return _writer ??= PipeWriter.Create(_stream, new StreamPipeWriterOptions(minimumBufferSize: ReadBufferBytes, leaveOpen: true));
            }
        }
    }

    public override CancellationToken ConnectionClosed
    {
        get
        {
            lock (_gate)
            {
                _closed ??= new CancellationTokenSource();
                if (_disposed != 0 && !_closed.IsCancellationRequested)
                {
                    _closed.Cancel();
                }

                return _closed.Token;
            }
        }
        set => throw new NotSupportedException("ConnectionClosed is the connection's own.");
    }

    public override EndPoint? LocalEndPoint
    {
        get => _local ??= TryGet(static s => s.LocalEndPoint, _socket);
        set => _local = value;
    }

    public override EndPoint? RemoteEndPoint
    {
        get => _remote ??= TryGet(static s => s.RemoteEndPoint, _socket);
        set => _remote = value;
    }

    /// <summary>
    /// Completes when the socket has bytes to read, or has been closed, without taking them or
    /// any buffer (a zero-byte receive). For a caller that found the reader holding nothing unread.
    /// </summary>
    internal ValueTask<int> WaitForBytesAsync(CancellationToken cancellationToken) =>
        _socket.ReceiveAsync(Memory<byte>.Empty, SocketFlags.None, cancellationToken);

    /// <summary>Closes the socket at once; pending reads and writes fail.</summary>
    public override void Abort(ConnectionAbortedException abortReason) => Close();

    public override void Abort() => Close();

    /// <summary>Flushes what the writer holds, then closes the socket (FIN, not RST, where the peer allows).</summary>
    public override async ValueTask DisposeAsync()
    {
        if (_writer is { } writer && Volatile.Read(ref _disposed) == 0)
        {
            try
            {
                await writer.CompleteAsync().ConfigureAwait(false);
            }
            catch (Exception ex) when (ex is IOException or ObjectDisposedException or InvalidOperationException)
            {
                // The peer is gone; there is nothing left to flush to.
            }
        }

        Close();
        await _reader.CompleteAsync().ConfigureAwait(false);
    }

    private void Close()
    {
        if (Interlocked.Exchange(ref _disposed, 1) != 0)
        {
            return;
        }

        try
        {
            _socket.Shutdown(SocketShutdown.Both);
        }
        catch (Exception ex) when (ex is SocketException or ObjectDisposedException)
        {
            // Already reset or closed by the peer.
        }

        _socket.Dispose();
        _owner?.OnClosed(this);
        CancellationTokenSource? closed;
        lock (_gate)
        {
            closed = _closed;
        }

        try
        {
            closed?.Cancel();
        }
        catch (AggregateException)
        {
            // A callback registered on ConnectionClosed failed; the connection is closed regardless.
        }
    }

    /// <summary>Whether a socket error means the peer reset or dropped the connection (not a failure of ours).</summary>
    internal static bool IsReset(SocketError error) =>
        error is SocketError.ConnectionReset or SocketError.ConnectionAborted or SocketError.Shutdown or SocketError.TimedOut or SocketError.NetworkReset or SocketError.HostUnreachable or SocketError.NetworkUnreachable;

    private FeatureCollection CreateFeatures()
    {
        var features = new FeatureCollection();
        features.Set<IConnectionIdFeature>(this);
        features.Set<IConnectionTransportFeature>(this);
        features.Set<IConnectionItemsFeature>(this);
        features.Set<IConnectionEndPointFeature>(this);
        features.Set<IConnectionLifetimeFeature>(this);
        features.Set<IConnectionSocketFeature>(this);
        return features;
    }

    private static EndPoint? TryGet(Func<Socket, EndPoint?> get, Socket socket)
    {
        try
        {
            return get(socket);
        }
        catch (Exception ex) when (ex is SocketException or ObjectDisposedException)
        {
            return null;
        }
    }

    /// <summary>
    /// The socket as a stream for the reader and writer, with errors mapped as Kestrel's socket
    /// transport maps them (see the class remarks). Replaces NetworkStream, whose errors
    /// (IOException wrapping SocketException, ObjectDisposedException) Kestrel logs as unexpected.
    /// </summary>
    private sealed class SocketStream(BrokerSocketConnection connection) : Stream
    {
        private readonly Socket _socket = connection._socket;

        public override bool CanRead => true;

        public override bool CanSeek => false;

        public override bool CanWrite => true;

        public override long Length => throw new NotSupportedException();

        public override long Position
        {
            get => throw new NotSupportedException();
            set => throw new NotSupportedException();
        }

        public override ValueTask<int> ReadAsync(Memory<byte> buffer, CancellationToken cancellationToken = default)
        {
            ValueTask<int> receive;
            try
            {
                receive = _socket.ReceiveAsync(buffer, SocketFlags.None, cancellationToken);
            }
            catch (Exception ex) when (ex is SocketException or ObjectDisposedException)
            {
                return ValueTask.FromResult(ReadFailed(ex));
            }

            return receive.IsCompletedSuccessfully ? receive : ReadAwaitedAsync(receive);
        }

        public override Task<int> ReadAsync(byte[] buffer, int offset, int count, CancellationToken cancellationToken) =>
            ReadAsync(buffer.AsMemory(offset, count), cancellationToken).AsTask();

        public override async ValueTask WriteAsync(ReadOnlyMemory<byte> buffer, CancellationToken cancellationToken = default)
        {
            try
            {
                while (!buffer.IsEmpty)
                {
                    var sent = await _socket.SendAsync(buffer, SocketFlags.None, cancellationToken).ConfigureAwait(false);
                    buffer = buffer[sent..];
                }
            }
            catch (Exception ex) when (ex is SocketException or ObjectDisposedException)
            {
                // The peer is gone (or we closed): nothing written from now on can arrive. The
                // reads end too, and whoever runs the connection finds out there.
                connection.Close();
            }
        }

        public override Task WriteAsync(byte[] buffer, int offset, int count, CancellationToken cancellationToken) =>
            WriteAsync(buffer.AsMemory(offset, count), cancellationToken).AsTask();

        public override Task FlushAsync(CancellationToken cancellationToken) => Task.CompletedTask;

        public override void Flush()
        {
        }

        public override int Read(byte[] buffer, int offset, int count) => throw new NotSupportedException("Asynchronous reads only.");

        public override void Write(byte[] buffer, int offset, int count) => throw new NotSupportedException("Asynchronous writes only.");

        public override long Seek(long offset, SeekOrigin origin) => throw new NotSupportedException();

        public override void SetLength(long value) => throw new NotSupportedException();

        private static async ValueTask<int> ReadAwaitedAsync(ValueTask<int> receive)
        {
            try
            {
                return await receive.ConfigureAwait(false);
            }
            catch (Exception ex) when (ex is SocketException or ObjectDisposedException)
            {
                return ReadFailed(ex);
            }
        }

        /// <summary>
        /// A reset is a ConnectionResetException (an IOException Kestrel logs at Debug); a socket
        /// closed here (aborted, disposed) is the end of the input; anything else an IOException.
        /// </summary>
        private static int ReadFailed(Exception ex) => ex switch
        {
            SocketException reset when IsReset(reset.SocketErrorCode) => throw new ConnectionResetException(reset.Message, reset),
            SocketException { SocketErrorCode: SocketError.OperationAborted or SocketError.Interrupted or SocketError.NotSocket } => 0,
            SocketException other => throw new IOException(other.Message, other),
            _ => 0,
        };
    }
}

/// <summary>Whoever accepted a <see cref="BrokerSocketConnection"/>, told once when it closes.</summary>
public interface IBrokerSocketOwner
{
    void OnClosed(BrokerSocketConnection connection);
}
