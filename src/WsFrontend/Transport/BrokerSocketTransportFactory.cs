using System.Net;
using System.Net.Sockets;
using System.Threading.Channels;
using Microsoft.AspNetCore.Connections;
using Microsoft.AspNetCore.Server.Kestrel.Transport.Sockets;
using Microsoft.Extensions.Options;

namespace Broker.Frontend.Transport;

/// <summary>
/// Kestrel's transport for TCP endpoints when the broker speaks WebSocket itself
/// (<c>Broker:SocketTransport=Broker</c>, the default). Every accepted socket becomes a
/// <see cref="BrokerSocketConnection"/>; its first request is read by
/// <see cref="PipeTransportMiddleware"/>, and an upgrade that is admitted runs on a
/// <see cref="PipeWebSocket"/> here, without Kestrel ever seeing the connection. Everything
/// else — other paths, refusals, TLS, anything unusual — is handed to Kestrel with nothing
/// consumed, and served by the HTTP server as before. Endpoints that are not IP (Unix sockets,
/// inherited handles) stay with Kestrel's own socket transport.
/// </summary>
public sealed partial class BrokerSocketTransportFactory : IConnectionListenerFactory, IConnectionListenerFactorySelector
{
    private static readonly TimeSpan AcceptRetryDelay = TimeSpan.FromMilliseconds(100);

    private readonly IServiceProvider _services;
    private readonly SocketTransportOptions _options;
    private PipeTransportMiddleware? _transport;
    private readonly ILogger<BrokerSocketTransportFactory> _logger;

    public BrokerSocketTransportFactory(IServiceProvider services, IOptions<SocketTransportOptions> options, ILogger<BrokerSocketTransportFactory> logger)
    {
        _services = services;
        _options = options.Value;
        _logger = logger;
    }

    public bool CanBind(EndPoint endpoint) => endpoint is IPEndPoint;

    public ValueTask<IConnectionListener> BindAsync(EndPoint endpoint, CancellationToken cancellationToken = default)
    {
        // Made when the server binds, not with the server: the handler needs the cluster client.
        var transport = _transport ??= new PipeTransportMiddleware(_services);
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

        return new ValueTask<IConnectionListener>(new Listener(transport, _logger, _options.NoDelay, socket));
    }

    private sealed class Listener : IConnectionListener
    {
        private readonly PipeTransportMiddleware _transport;
        private readonly ILogger _logger;
        private readonly bool _noDelay;
        private readonly Socket _socket;
        private readonly Channel<ConnectionContext> _forKestrel = Channel.CreateUnbounded<ConnectionContext>(new UnboundedChannelOptions { SingleReader = true });

        public Listener(PipeTransportMiddleware transport, ILogger logger, bool noDelay, Socket socket)
        {
            _transport = transport;
            _logger = logger;
            _noDelay = noDelay;
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

                accepted.NoDelay = _noDelay;
                _ = RunAsync(new BrokerSocketConnection(accepted));
            }

            _forKestrel.Writer.TryComplete();
        }

        private async Task RunAsync(BrokerSocketConnection connection)
        {
            // One state machine for the connection's life besides the handler's: what an idle
            // socket holds is counted in bytes.
            try
            {
                var accepted = await _transport.AcceptAsync(connection).ConfigureAwait(false);
                if (accepted is { } websocket)
                {
                    using (websocket.Socket)
                    {
                        await _transport.RunAsync(websocket.Socket, websocket.Admitted).ConfigureAwait(false);
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

    [LoggerMessage(Level = LogLevel.Warning, Message = "Accepting a connection failed ({Error}); accepting again in {DelayMs} ms")]
    private static partial void LogAcceptFailed(ILogger logger, SocketError error, double delayMs);

    [LoggerMessage(Level = LogLevel.Warning, Message = "A WebSocket connection ended with an unexpected error")]
    private static partial void LogConnectionFailed(ILogger logger, Exception exception);
}
