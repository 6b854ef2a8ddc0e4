using System.IO.Pipelines;
using Microsoft.AspNetCore.Connections;
using Microsoft.AspNetCore.Http.Features;

namespace Broker.Transport;

/// <summary>
/// A connection made of a stream that an HTTP server has already upgraded (Kestrel's HTTP/1.1
/// <c>IHttpUpgradeFeature</c>), so that a <see cref="PipeWebSocket"/> can run on a request
/// that arrived through the HTTP server — with the same frame rules, UTF-8 checks and
/// control-frame budget as on the transport's own connections. Aborting it aborts the request.
/// </summary>
public sealed class UpgradedStreamConnection : ConnectionContext
{
    private static readonly StreamPipeReaderOptions ReaderOptions = new(bufferSize: 4096, minimumReadSize: 1024, leaveOpen: true, useZeroByteReads: true);
    private static readonly StreamPipeWriterOptions WriterOptions = new(minimumBufferSize: 4096, leaveOpen: true);

    private readonly Action _abort;
    private readonly PipeReader _reader;
    private readonly PipeWriter _writer;
    private IDuplexPipe _transport;

    /// <param name="stream">The upgraded stream (left open: its owner closes it).</param>
    /// <param name="abort">Aborts the underlying connection (HttpContext.Abort).</param>
    public UpgradedStreamConnection(Stream stream, string connectionId, Action abort)
    {
        _abort = abort;
        _reader = PipeReader.Create(stream, ReaderOptions);
        _writer = PipeWriter.Create(stream, WriterOptions);
        _transport = new Pipes(_reader, _writer);
        ConnectionId = connectionId;
    }

    public override string ConnectionId { get; set; }

    public override IFeatureCollection Features { get; } = new FeatureCollection();

    public override IDictionary<object, object?> Items { get; set; } = new Dictionary<object, object?>();

    public override IDuplexPipe Transport
    {
        get => _transport;
        set => _transport = value;
    }

    public override void Abort(ConnectionAbortedException abortReason) => _abort();

    public override void Abort() => _abort();

    /// <summary>Completes the reader and writer (returning their buffers); the stream stays its owner's.</summary>
    public override async ValueTask DisposeAsync()
    {
        try
        {
            await _writer.CompleteAsync().ConfigureAwait(false);
        }
        catch (Exception ex) when (ex is IOException or ObjectDisposedException or InvalidOperationException or OperationCanceledException)
        {
            // The peer is gone; there is nothing left to flush to.
        }

        await _reader.CompleteAsync().ConfigureAwait(false);
    }

    private sealed class Pipes(PipeReader input, PipeWriter output) : IDuplexPipe
    {
        public PipeReader Input { get; } = input;

        public PipeWriter Output { get; } = output;
    }
}
