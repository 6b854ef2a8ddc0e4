using System.Buffers;
using System.IO.Pipelines;
using System.Net.WebSockets;
using System.Text;
using Broker.Frontend.Hosting;
using Microsoft.AspNetCore.Connections;
using Microsoft.AspNetCore.Server.Kestrel.Core;
using Microsoft.AspNetCore.WebUtilities;
using Microsoft.Extensions.Options;

namespace Broker.Frontend.Transport;

/// <summary>
/// Reads the first request off a new connection and, when it is a plain upgrade to a namespace
/// that admits it, answers 101 itself and runs the connection on a <see cref="PipeWebSocket"/>.
/// Called by <see cref="BrokerSocketTransportFactory"/> for every socket it accepts, or, with
/// <c>Broker:SocketTransport=Kestrel</c>, as Kestrel connection middleware in front of the HTTP
/// server. Every other connection — other paths, refusals (answered by the HTTP endpoint with
/// the same decision and its status), anything unusual — is handed to the HTTP server with
/// nothing consumed.
/// </summary>
public sealed class PipeTransportMiddleware
{
    private readonly BrokerOptions _options;
    private readonly IHostApplicationLifetime _lifetime;
    private readonly TokenAuthenticator _tokens;
    private readonly Connections.ConnectionHandler _handler;
    private readonly TimeSpan _headTimeout;
    private readonly int _maxHeadBytes;

    public PipeTransportMiddleware(IServiceProvider services)
    {
        _options = services.GetRequiredService<IOptions<BrokerOptions>>().Value;
        _lifetime = services.GetRequiredService<IHostApplicationLifetime>();
        _tokens = services.GetRequiredService<TokenAuthenticator>();
        _handler = services.GetRequiredService<Connections.ConnectionHandler>();
        var limits = services.GetRequiredService<IOptions<KestrelServerOptions>>().Value.Limits;
        _headTimeout = limits.RequestHeadersTimeout;
        _maxHeadBytes = limits.MaxRequestLineSize + limits.MaxRequestHeadersTotalSize;
    }

    public async Task OnConnectionAsync(ConnectionContext connection, ConnectionDelegate next)
    {
        if (!await TryRunAsync(connection))
        {
            await next(connection);
        }
    }

    /// <summary>
    /// Runs the connection as a WebSocket to its end when its first request is an upgrade this
    /// transport takes and the namespace admits, and returns true; returns false, with nothing
    /// consumed, for every other connection (the HTTP server's to serve).
    /// </summary>
    public async Task<bool> TryRunAsync(ConnectionContext connection)
    {
        // Split so that what stays alive for the socket's life is this small state machine.
        var accepted = await AcceptAsync(connection);
        if (accepted is null)
        {
            return false;
        }

        using var socket = accepted.Value.Socket;
        await RunAsync(socket, accepted.Value.Admitted);
        return true;
    }

    /// <summary>An accepted socket's life, from the welcome to its close.</summary>
    internal Task RunAsync(PipeWebSocket socket, Admitted admitted) =>
        _handler.RunAsync(socket, admitted.Namespace, admitted.Options, admitted.User, admitted.Expires, admitted.GeneratedUser);

    /// <summary>
    /// The handshake: a socket when the connection's first request is an upgrade this
    /// transport takes and the namespace admits (101 sent); null, with nothing consumed, otherwise.
    /// </summary>
    internal async Task<(PipeWebSocket Socket, Admitted Admitted)?> AcceptAsync(ConnectionContext connection)
    {
        var input = connection.Transport.Input;
        // A broker socket's reads fail by themselves when it closes; its own token would be
        // one more object kept for the connection's life.
        var closed = connection is BrokerSocketConnection ? CancellationToken.None : connection.ConnectionClosed;
        var (request, head) = await ReadUpgradeAsync(input, closed);
        if (request is null)
        {
            return null;
        }

        var query = QueryHelpers.ParseQuery(request.Query);
        var (admitted, _) = await ConnectAdmission.AdmitAsync(
            new ConnectRequest(
                request.Path,
                IsWebSocket: true,
                _lifetime.ApplicationStopping.IsCancellationRequested,
                request.Authorization,
                request.Origin,
                query.TryGetValue("token", out var token) ? token.ToString() : null,
                query.TryGetValue("user", out var user) ? user.ToString() : string.Empty),
            _options,
            _tokens);
        if (admitted is null)
        {
            // Refused: the HTTP endpoint reaches the same decision and answers it with its status.
            input.AdvanceTo(head.Start);
            return null;
        }

        input.AdvanceTo(head.End);
        var socket = new PipeWebSocket(connection, _options.MaxFrameBytes, _options.KeepAliveInterval, _options.KeepAliveTimeout, _options.DirectSocketWrites);

        try
        {
            await socket.SendHandshakeResponseAsync(Encoding.ASCII.GetBytes(
                "HTTP/1.1 101 Switching Protocols\r\nConnection: Upgrade\r\nUpgrade: websocket\r\nSec-WebSocket-Accept: " + request.AcceptKey() + "\r\n\r\n"));
        }
        catch (WebSocketException)
        {
            // Gone before the answer: nothing to run; the HTTP server finds the connection aborted.
            socket.Dispose();
            connection.Abort();
            return null;
        }

        return (socket, admitted);
    }

    /// <summary>
    /// Reads until the first request head is complete. Returns the upgrade request and the
    /// buffer holding its head, not yet consumed; or null with the input rewound to where it
    /// started, when the request is not one for this transport.
    /// </summary>
    private async Task<(UpgradeRequest? Request, ReadOnlySequence<byte> Head)> ReadUpgradeAsync(PipeReader input, CancellationToken closed)
    {
        using var timeout = CancellationTokenSource.CreateLinkedTokenSource(closed);
        timeout.CancelAfter(_headTimeout);
        while (true)
        {
            ReadResult result;
            try
            {
                result = await input.ReadAsync(timeout.Token);
            }
            catch (OperationCanceledException)
            {
                // Too slow (or gone): Kestrel's own request timeout deals with it.
                return (null, default);
            }

            var buffer = result.Buffer;
            switch (UpgradeRequest.TryParse(buffer, _maxHeadBytes, out var request, out var headLength))
            {
                case UpgradeRequest.ParseStatus.Parsed:
                    // Left unconsumed until admitted: a refusal hands the same bytes to the HTTP server.
                    return (request, buffer.Slice(0, headLength));
                case UpgradeRequest.ParseStatus.NeedMore when !result.IsCompleted && !result.IsCanceled:
                    input.AdvanceTo(buffer.Start, buffer.End);
                    continue;
                default:
                    input.AdvanceTo(buffer.Start);
                    return (null, default);
            }
        }
    }
}
