using System.IO.Pipelines;
using System.Net;
using System.Net.Sockets;
using Microsoft.AspNetCore.Connections;
using Microsoft.AspNetCore.Connections.Features;
using Microsoft.AspNetCore.Http.Features;

namespace Broker.Frontend.Transport;

/// <summary>
/// One accepted TCP connection of <see cref="BrokerSocketTransportFactory"/>: the socket with a
/// reader and a writer straight on it, and nothing else until asked for. The reader makes a
/// zero-byte receive before it takes a buffer, so a connection waiting for bytes holds none;
/// the writer exists only once something is written through it (a WebSocket sends its frames
/// on the socket directly). No receive or send loop, no pipes in between, no feature
/// collection, id or items unless the HTTP server asks for them — the connections the HTTP
/// server serves get all of them, a WebSocket on <see cref="PipeWebSocket"/> gets none.
/// </summary>
public sealed class BrokerSocketConnection : ConnectionContext, IDuplexPipe, IConnectionSocketFeature,
    IConnectionIdFeature, IConnectionTransportFeature, IConnectionItemsFeature, IConnectionEndPointFeature, IConnectionLifetimeFeature
{
    private const int ReadBufferBytes = 4096;
    private static long s_lastId;

    // One reader per connection, all with the same options (the shared array pool's buffers).
    private static readonly StreamPipeReaderOptions s_readerOptions = new(bufferSize: ReadBufferBytes, minimumReadSize: 1024, leaveOpen: true, useZeroByteReads: true);

    private readonly Socket _socket;
    private readonly NetworkStream _stream;
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

    public BrokerSocketConnection(Socket socket)
    {
        _socket = socket;

        // The stream must see a blocking socket when it is made; a PipeWebSocket may switch it
        // to non-blocking later for its direct sends (the stream only makes asynchronous calls).
        _stream = new NetworkStream(socket, ownsSocket: false);
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
        _stream.Dispose();
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
}
