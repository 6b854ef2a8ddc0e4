using System.Net;
using System.Net.Sockets;
using System.Threading.Channels;
using Microsoft.AspNetCore.Connections;
using Microsoft.AspNetCore.Server.Kestrel.Core;
using Microsoft.AspNetCore.Server.Kestrel.Transport.Sockets;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Options;

namespace Broker.Transport;

/// <summary>
/// Kestrel's transport for TCP endpoints when the application speaks WebSocket itself. Every
/// accepted socket becomes a <see cref="BrokerSocketConnection"/>; its first request is read by
/// the <see cref="WebSocketUpgrader"/> registered in the services, and an upgrade that is
/// admitted runs on a <see cref="PipeWebSocket"/> here, without Kestrel ever seeing the
/// connection. Everything else — other paths, what the application leaves to the HTTP server,
/// TLS, anything unusual — is handed to Kestrel with nothing consumed, and served by the HTTP
/// server as before. Endpoints that are not IP (Unix sockets,
/// inherited handles) stay with Kestrel's own socket transport.
/// Kestrel's Limits:MaxConcurrentConnections is honoured here, where Kestrel cannot see the
/// connections it never gets: every TCP connection the listener holds counts (handshakes,
/// WebSockets and those handed to Kestrel), and one past the limit is answered 503 at once.
/// </summary>
public sealed partial class BrokerSocketTransportFactory : IConnectionListenerFactory, IConnectionListenerFactorySelector, IBrokerSocketOwner
{
    private static readonly TimeSpan AcceptRetryDelay = TimeSpan.FromMilliseconds(100);

    private readonly IServiceProvider _services;
    private readonly SocketTransportOptions _options;
    private readonly long? _maxConnections;
    private WebSocketUpgrader? _transport;
    private readonly ILogger<BrokerSocketTransportFactory> _logger;
    private int _open;

    public BrokerSocketTransportFactory(IServiceProvider services, IOptions<SocketTransportOptions> options, IOptions<KestrelServerOptions> kestrel, ILogger<BrokerSocketTransportFactory> logger)
    {
        _services = services;
        _options = options.Value;
        _maxConnections = kestrel.Value.Limits.MaxConcurrentConnections;
        _logger = logger;
    }

    /// <summary>TCP connections the listeners hold now (handshakes, WebSockets, and those handed to Kestrel).</summary>
    internal int OpenConnections => Volatile.Read(ref _open);

    public bool CanBind(EndPoint endpoint) => endpoint is IPEndPoint;

    public ValueTask<IConnectionListener> BindAsync(EndPoint endpoint, CancellationToken cancellationToken = default)
    {
        // Made when the server binds, not with the server: the handler needs the cluster client.
        var transport = _transport ??= _services.GetRequiredService<WebSocketUpgrader>();
        Socket socket;
        try
        {
            socket = SocketTransportOptions.CreateDefaultBoundListenSocket(endpoint);
        }
        catch (SocketException ex) when (ex.SocketErrorCode == SocketError.AddressAlreadyInUse)
        {
            throw new AddressInUseException(ex.Message, ex);
        }

        try
        {
            socket.Listen(_options.Backlog);
        }
        catch
        {
            socket.Dispose();
            throw;
        }

        return new ValueTask<IConnectionListener>(new Listener(this, transport, socket));
    }

    /// <summary>Counts a new connection; false (not counted) past Kestrel's MaxConcurrentConnections.</summary>
    private bool TryOpen()
    {
        if (Interlocked.Increment(ref _open) <= (_maxConnections ?? long.MaxValue))
        {
            return true;
        }

        Interlocked.Decrement(ref _open);
        return false;
    }

    void IBrokerSocketOwner.OnClosed(BrokerSocketConnection connection) => Interlocked.Decrement(ref _open);

    private static readonly byte[] ServerFull = WebSocketUpgrader.Response(
        503, "This server holds its maximum of connections; try again later or connect to another one.", RetryAfterSeconds);

    /// <summary>Retry-After of the 503 past MaxConcurrentConnections.</summary>
    public const int RetryAfterSeconds = 5;

    private sealed class Listener : IConnectionListener
    {
        private readonly BrokerSocketTransportFactory _factory;
        private readonly WebSocketUpgrader _transport;
        private readonly ILogger _logger;
        private readonly bool _noDelay;
        private readonly Socket _socket;
        private readonly Channel<ConnectionContext> _forKestrel = Channel.CreateUnbounded<ConnectionContext>(new UnboundedChannelOptions { SingleReader = true });

        public Listener(BrokerSocketTransportFactory factory, WebSocketUpgrader transport, Socket socket)
        {
            _factory = factory;
            _transport = transport;
            _logger = factory._logger;
            _noDelay = factory._options.NoDelay;
            _socket = socket;
            EndPoint = socket.LocalEndPoint!;
            _ = AcceptLoopAsync();
        }

        public EndPoint EndPoint { get; }

        public async ValueTask<ConnectionContext?> AcceptAsync(CancellationToken cancellationToken = default)
        {
            try
            {
                return await _forKestrel.Reader.ReadAsync(cancellationToken).ConfigureAwait(false);
            }
            catch (ChannelClosedException)
            {
                // Unbound: Kestrel's accept loop ends.
                return null;
            }
        }

        public ValueTask UnbindAsync(CancellationToken cancellationToken = default)
        {
            _socket.Dispose();
            return ValueTask.CompletedTask;
        }

        public async ValueTask DisposeAsync()
        {
            _socket.Dispose();
            _forKestrel.Writer.TryComplete();
            while (_forKestrel.Reader.TryRead(out var connection))
            {
                await connection.DisposeAsync().ConfigureAwait(false);
            }
        }

        private async Task AcceptLoopAsync()
        {
            while (true)
            {
                Socket accepted;
                try
                {
                    accepted = await _socket.AcceptAsync().ConfigureAwait(false);
                }
                catch (ObjectDisposedException)
                {
                    break;
                }
                catch (SocketException ex) when (ex.SocketErrorCode is SocketError.OperationAborted or SocketError.Interrupted or SocketError.InvalidArgument)
                {
                    break;
                }
                catch (SocketException ex) when (ex.SocketErrorCode == SocketError.ConnectionReset)
                {
                    // Reset while in the backlog: the next one.
                    continue;
                }
                catch (SocketException ex)
                {
                    // Out of descriptors or buffers: the listener goes on after a pause instead
                    // of spinning on accept while nothing can be accepted.
                    LogAcceptFailed(_logger, ex.SocketErrorCode, AcceptRetryDelay.TotalMilliseconds);
                    await Task.Delay(AcceptRetryDelay).ConfigureAwait(false);
                    continue;
                }

                if (!_factory.TryOpen())
                {
                    Refuse(accepted);
                    continue;
                }

                accepted.NoDelay = _noDelay;
                _ = RunAsync(new BrokerSocketConnection(accepted, _factory));
            }

            _forKestrel.Writer.TryComplete();
        }

        /// <summary>Past Kestrel's MaxConcurrentConnections: 503 without reading the request (a non-blocking send: it fits an empty socket buffer), then closed.</summary>
        private void Refuse(Socket accepted)
        {
            try
            {
                _transport.RefusedAtAccept((accepted.RemoteEndPoint as IPEndPoint)?.Address);
                accepted.Blocking = false;
                accepted.Send(ServerFull, SocketFlags.None, out _);
                accepted.Shutdown(SocketShutdown.Send);
            }
            catch (Exception ex) when (ex is SocketException or ObjectDisposedException)
            {
                // Gone already.
            }

            accepted.Dispose();
        }

        private async Task RunAsync(BrokerSocketConnection connection)
        {
            // One state machine for the connection's life besides the handler's: what an idle
            // socket holds is counted in bytes.
            try
            {
                var handshake = await _transport.AcceptAsync(connection).ConfigureAwait(false);
                if (handshake.Outcome != HandshakeOutcome.NotOurs)
                {
                    if (handshake.Outcome == HandshakeOutcome.Accepted)
                    {
                        using (handshake.Socket)
                        {
                            try
                            {
                                await _transport.RunAsync(handshake).ConfigureAwait(false);
                            }
                            finally
                            {
                                _transport.Ended(handshake);
                            }
                        }
                    }

                    await connection.DisposeAsync().ConfigureAwait(false);
                    return;
                }
            }
            catch (Exception ex)
            {
                LogConnectionFailed(_logger, ex);
                await connection.DisposeAsync().ConfigureAwait(false);
                return;
            }

            if (!_forKestrel.Writer.TryWrite(connection))
            {
                // Unbound while its first request was read: the server is stopping.
                await connection.DisposeAsync().ConfigureAwait(false);
            }
        }
    }

    [LoggerMessage(EventId = 4000, Level = LogLevel.Warning, Message = "Accepting a connection failed ({Error}); accepting again in {DelayMs} ms")]
    private static partial void LogAcceptFailed(ILogger logger, SocketError error, double delayMs);

    [LoggerMessage(EventId = 4001, Level = LogLevel.Warning, Message = "A WebSocket connection ended with an unexpected error")]
    private static partial void LogConnectionFailed(ILogger logger, Exception exception);
}
