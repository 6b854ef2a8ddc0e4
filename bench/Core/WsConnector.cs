using System.Buffers;
using System.Net;
using System.Net.Sockets;
using System.Net.WebSockets;
using System.Security.Cryptography;
using System.Text;

namespace Broker.Bench.Core;

/// <summary>
/// Opens client WebSockets with a hand-made HTTP/1.1 upgrade over a plain Socket, so that the
/// client side can be bound to a chosen source address (127.0.0.x): one address only has ~28k
/// ephemeral ports towards one server port. ClientWebSocket cannot bind a local address.
/// </summary>
public sealed class WsConnector
{
    // Linux: pick the source port at connect() time, not at bind(), so that (address, port) pairs
    // are only unique per destination.
    private const int SolIp = 0;
    private const int IpBindAddressNoPort = 24;
    private readonly IPAddress[] _sources;
    private int _next;

    public WsConnector(IReadOnlyList<IPAddress>? sources = null)
    {
        _sources = [.. sources ?? []];
    }

    public TimeSpan Timeout { get; init; } = TimeSpan.FromSeconds(15);

    /// <summary>Bytes of read buffer per connection (0: none, for idle connections): many small frames per recv().</summary>
    public int ReadBuffer { get; init; }

    /// <summary>Connects and upgrades; the returned socket has not read anything after the 101 response.</summary>
    public async Task<WebSocket> ConnectAsync(Uri uri, CancellationToken cancellationToken)
    {
        using var timeout = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken);
        timeout.CancelAfter(Timeout);
        var ct = timeout.Token;
        var socket = new Socket(AddressFamily.InterNetwork, SocketType.Stream, ProtocolType.Tcp) { NoDelay = true };
        try
        {
            if (_sources.Length > 0)
            {
                var source = _sources[(int)((uint)Interlocked.Increment(ref _next) % (uint)_sources.Length)];
                if (OperatingSystem.IsLinux())
                {
                    socket.SetRawSocketOption(SolIp, IpBindAddressNoPort, BitConverter.GetBytes(1));
                }

                socket.Bind(new IPEndPoint(source, 0));
            }

            EndPoint remote = IPAddress.TryParse(uri.Host, out var ip) ? new IPEndPoint(ip, uri.Port) : new DnsEndPoint(uri.Host, uri.Port);
            await socket.ConnectAsync(remote, ct);
            var stream = new NetworkStream(socket, ownsSocket: true);
            var leftover = await UpgradeAsync(stream, uri, ct);
            Stream transport = leftover.Length > 0 || ReadBuffer > 0 ? new ReadBufferedStream(stream, leftover, ReadBuffer) : stream;
            return WebSocket.CreateFromStream(transport, new WebSocketCreationOptions { IsServer = false, KeepAliveInterval = TimeSpan.Zero });
        }
        catch (OperationCanceledException) when (!cancellationToken.IsCancellationRequested)
        {
            socket.Dispose();
            throw new TimeoutException($"Connecting to {uri} took more than {Timeout.TotalSeconds:0} s.");
        }
        catch
        {
            socket.Dispose();
            throw;
        }
    }

    private static async Task<byte[]> UpgradeAsync(NetworkStream stream, Uri uri, CancellationToken ct)
    {
        var key = Convert.ToBase64String(RandomNumberGenerator.GetBytes(16));
        var request = $"GET {uri.PathAndQuery} HTTP/1.1\r\nHost: {uri.Authority}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
            + $"Sec-WebSocket-Key: {key}\r\nSec-WebSocket-Version: 13\r\n\r\n";
        await stream.WriteAsync(Encoding.ASCII.GetBytes(request), ct);

        var buffer = ArrayPool<byte>.Shared.Rent(4096);
        try
        {
            var count = 0;
            int end;
            while ((end = buffer.AsSpan(0, count).IndexOf("\r\n\r\n"u8)) < 0)
            {
                if (count == buffer.Length)
                {
                    throw new WebSocketException($"The upgrade response from {uri} has headers over {buffer.Length} bytes.");
                }

                var read = await stream.ReadAsync(buffer.AsMemory(count), ct);
                if (read == 0)
                {
                    throw new WebSocketException($"{uri} closed the connection during the upgrade.");
                }

                count += read;
            }

            var head = Encoding.ASCII.GetString(buffer, 0, end);
            var lineEnd = head.IndexOf('\r', StringComparison.Ordinal);
            var statusLine = lineEnd < 0 ? head : head[..lineEnd];
            if (!statusLine.StartsWith("HTTP/1.1 101", StringComparison.Ordinal))
            {
                throw new WebSocketException($"{uri} refused the upgrade: {statusLine}");
            }

            var expected = Convert.ToBase64String(SHA1.HashData(Encoding.ASCII.GetBytes(key + "258EAFA5-E914-47DA-95CA-C5AB0DC85B11")));
            if (!head.Contains("Sec-WebSocket-Accept: " + expected, StringComparison.OrdinalIgnoreCase))
            {
                throw new WebSocketException($"{uri} answered the upgrade with a wrong Sec-WebSocket-Accept.");
            }

            return buffer.AsSpan(end + 4, count - end - 4).ToArray();
        }
        finally
        {
            ArrayPool<byte>.Shared.Return(buffer);
        }
    }

    /// <summary>Adds the namespace path (when the URL has none) and a query, e.g. ?user=b-1.</summary>
    public static Uri Endpoint(Uri baseUrl, string ns, string? query)
    {
        var builder = new UriBuilder(baseUrl);
        if (builder.Path is "" or "/")
        {
            builder.Path = ns == "default" ? "/" : "/" + ns;
        }

        if (!string.IsNullOrEmpty(query))
        {
            builder.Query = string.IsNullOrEmpty(builder.Query) ? query : builder.Query.TrimStart('?') + "&" + query;
        }

        return builder.Uri;
    }
}

/// <summary>
/// Serves reads from a buffer (bytes already read past the upgrade response first): the managed
/// WebSocket reads each frame header and payload separately, so without it every small frame costs
/// two recv() calls. Writes go straight through.
/// </summary>
internal sealed class ReadBufferedStream : Stream
{
    private readonly Stream _inner;
    private readonly byte[] _buffer;
    private readonly bool _refill;
    private int _pos;
    private int _len;

    public ReadBufferedStream(Stream inner, ReadOnlySpan<byte> leftover, int bufferSize)
    {
        _inner = inner;
        _refill = bufferSize > 0;
        _buffer = new byte[Math.Max(bufferSize, leftover.Length)];
        leftover.CopyTo(_buffer);
        _len = leftover.Length;
    }

    public override bool CanRead => true;
    public override bool CanSeek => false;
    public override bool CanWrite => true;
    public override long Length => throw new NotSupportedException();
    public override long Position { get => throw new NotSupportedException(); set => throw new NotSupportedException(); }

    public override int Read(byte[] buffer, int offset, int count) => Read(buffer.AsSpan(offset, count));

    public override int Read(Span<byte> buffer)
    {
        if (_pos < _len)
        {
            return Take(buffer);
        }

        if (!_refill || buffer.Length >= _buffer.Length)
        {
            return _inner.Read(buffer);
        }

        _pos = 0;
        _len = _inner.Read(_buffer);
        return _len == 0 ? 0 : Take(buffer);
    }

    public override ValueTask<int> ReadAsync(Memory<byte> buffer, CancellationToken cancellationToken = default)
    {
        if (_pos < _len)
        {
            return ValueTask.FromResult(Take(buffer.Span));
        }

        return !_refill || buffer.Length >= _buffer.Length ? _inner.ReadAsync(buffer, cancellationToken) : FillAndReadAsync(buffer, cancellationToken);
    }

    private async ValueTask<int> FillAndReadAsync(Memory<byte> buffer, CancellationToken cancellationToken)
    {
        _pos = 0;
        _len = 0;
        _len = await _inner.ReadAsync(_buffer, cancellationToken);
        return _len == 0 ? 0 : Take(buffer.Span);
    }

    private int Take(Span<byte> destination)
    {
        var n = Math.Min(destination.Length, _len - _pos);
        _buffer.AsSpan(_pos, n).CopyTo(destination);
        _pos += n;
        return n;
    }

    public override Task<int> ReadAsync(byte[] buffer, int offset, int count, CancellationToken cancellationToken) =>
        ReadAsync(buffer.AsMemory(offset, count), cancellationToken).AsTask();

    public override void Write(byte[] buffer, int offset, int count) => _inner.Write(buffer, offset, count);

    public override void Write(ReadOnlySpan<byte> buffer) => _inner.Write(buffer);

    public override ValueTask WriteAsync(ReadOnlyMemory<byte> buffer, CancellationToken cancellationToken = default) =>
        _inner.WriteAsync(buffer, cancellationToken);

    public override Task WriteAsync(byte[] buffer, int offset, int count, CancellationToken cancellationToken) =>
        _inner.WriteAsync(buffer, offset, count, cancellationToken);

    public override void Flush() => _inner.Flush();

    public override Task FlushAsync(CancellationToken cancellationToken) => _inner.FlushAsync(cancellationToken);

    public override long Seek(long offset, SeekOrigin origin) => throw new NotSupportedException();

    public override void SetLength(long value) => throw new NotSupportedException();

    protected override void Dispose(bool disposing)
    {
        if (disposing)
        {
            _inner.Dispose();
        }

        base.Dispose(disposing);
    }
}
