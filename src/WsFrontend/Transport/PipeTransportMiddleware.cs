using System.Buffers;
using System.IO.Pipelines;
using System.Net;
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
/// server. The whole request must arrive within <c>Broker:HandshakeTimeout</c> of the start, or
/// the connection is closed unanswered; an upgrade past the connection caps is answered 503
/// here. Every other connection — other paths, refusals (answered by the HTTP endpoint with the
/// same decision and its status), anything unusual — is handed to the HTTP server with nothing
/// consumed.
/// </summary>
public sealed partial class PipeTransportMiddleware
{
    private readonly BrokerOptions _options;
    private readonly IHostApplicationLifetime _lifetime;
    private readonly TokenAuthenticator _tokens;
    private readonly Connections.ConnectionHandler _handler;
    private readonly ConnectionLimits _limits;
    private readonly ClientEventLog _events;
    private readonly ILogger<PipeTransportMiddleware> _logger;
    private readonly int _maxHeadBytes;
    private readonly int _maxHeaders;

    public PipeTransportMiddleware(IServiceProvider services)
    {
        _options = services.GetRequiredService<IOptions<BrokerOptions>>().Value;
        _lifetime = services.GetRequiredService<IHostApplicationLifetime>();
        _tokens = services.GetRequiredService<TokenAuthenticator>();
        _handler = services.GetRequiredService<Connections.ConnectionHandler>();
        _limits = services.GetRequiredService<ConnectionLimits>();
        _events = services.GetRequiredService<ClientEventLog>();
        _logger = services.GetRequiredService<ILogger<PipeTransportMiddleware>>();
        var limits = services.GetRequiredService<IOptions<KestrelServerOptions>>().Value.Limits;
        _maxHeadBytes = limits.MaxRequestLineSize + limits.MaxRequestHeadersTotalSize;
        _maxHeaders = limits.MaxRequestHeaderCount;
    }

    /// <summary>What the first request of a connection came to.</summary>
    internal enum Outcome
    {
        /// <summary>Not an upgrade this transport takes: the HTTP server's, nothing consumed.</summary>
        NotOurs,

        /// <summary>Upgraded (101 sent): run the socket, then release its slot.</summary>
        Accepted,

        /// <summary>Answered here (503) or timed out: close the connection.</summary>
        Closed,
    }

    /// <summary>A handshake's result; Socket, Admitted and Slot are set when <see cref="Outcome.Accepted"/>.</summary>
    internal readonly record struct Handshake(Outcome Outcome, PipeWebSocket? Socket = null, Admitted? Admitted = null, ConnectionSlot Slot = default);

    public async Task OnConnectionAsync(ConnectionContext connection, ConnectionDelegate next)
    {
        if (!await TryRunAsync(connection))
        {
            await next(connection);
        }
    }

    /// <summary>
    /// Runs the connection as a WebSocket to its end when its first request is an upgrade this
    /// transport takes and the namespace admits, and returns true; true as well when it was
    /// answered or timed out here (the connection is then to be closed); false, with nothing
    /// consumed, for every other connection (the HTTP server's to serve).
    /// </summary>
    public async Task<bool> TryRunAsync(ConnectionContext connection)
    {
        // Split so that what stays alive for the socket's life is this small state machine.
        var handshake = await AcceptAsync(connection);
        switch (handshake.Outcome)
        {
            case Outcome.NotOurs:
                return false;
            case Outcome.Closed:
                connection.Abort();
                return true;
        }

        using var socket = handshake.Socket!;
        try
        {
            await RunAsync(socket, handshake.Admitted!);
        }
        finally
        {
            Ended(socket, handshake.Slot);
        }

        return true;
    }

    /// <summary>An accepted socket's life, from the welcome to its close. The caller calls <see cref="Ended"/> after it.</summary>
    /// <remarks>Not async itself: an idle connection holds the caller's state machine only.</remarks>
    internal Task RunAsync(PipeWebSocket socket, Admitted admitted) =>
        _handler.RunAsync(socket, admitted.Namespace, admitted.Options, admitted.User, admitted.Expires, admitted.GeneratedUser);

    /// <summary>After <see cref="RunAsync"/>: the socket's slot given back, and what the client did to end it counted.</summary>
    internal void Ended(PipeWebSocket socket, in ConnectionSlot slot)
    {
        _limits.Release(slot);
        CountFailure(socket);
    }

    /// <summary>
    /// The handshake: a socket when the connection's first request is an upgrade this
    /// transport takes and the namespace admits (101 sent); <see cref="Outcome.Closed"/> when
    /// it was refused here or did not arrive in time; <see cref="Outcome.NotOurs"/>, with
    /// nothing consumed, otherwise.
    /// </summary>
    internal async Task<Handshake> AcceptAsync(ConnectionContext connection)
    {
        var input = connection.Transport.Input;
        // A broker socket's reads fail by themselves when it closes; its own token would be
        // one more object kept for the connection's life.
        var closed = connection is BrokerSocketConnection ? CancellationToken.None : connection.ConnectionClosed;
        var (status, request, head) = await ReadUpgradeAsync(input, closed);
        if (status == UpgradeRequest.ParseStatus.NeedMore)
        {
            // The deadline passed with the request incomplete: one deadline, not a second one
            // in the HTTP server.
            _events.Count(ClientEvent.HandshakeTimeout);
            LogHandshakeTimeout(_logger, RemoteAddress(connection), _options.HandshakeTimeout.TotalSeconds);
            return new Handshake(Outcome.Closed);
        }

        if (request is null)
        {
            return new Handshake(Outcome.NotOurs);
        }

        // The caps first: cheap, and a flood at the cap costs no token validation.
        var address = RemoteAddress(connection);
        if (!_limits.TryAcquire(address, out var slot, out var refusal))
        {
            input.AdvanceTo(head.End);
            LogRefused(_logger, address, refusal.Status, refusal.Message);
            await AnswerAsync(connection, ConnectionLimits.RefusalResponse(refusal));
            return new Handshake(Outcome.Closed);
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
            _limits.Release(slot);
            input.AdvanceTo(head.Start);
            return new Handshake(Outcome.NotOurs);
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
            // Gone before the answer: nothing to run.
            _limits.Release(slot);
            socket.Dispose();
            return new Handshake(Outcome.Closed);
        }

        return new Handshake(Outcome.Accepted, socket, admitted, slot);
    }

    /// <summary>
    /// Reads until the first request head is complete, within the handshake deadline. Parsed:
    /// the upgrade request and the buffer holding its head, not yet consumed. NotOurs: the input
    /// rewound to where it started. NeedMore: the deadline passed first.
    /// </summary>
    private async Task<(UpgradeRequest.ParseStatus Status, UpgradeRequest? Request, ReadOnlySequence<byte> Head)> ReadUpgradeAsync(PipeReader input, CancellationToken closed)
    {
        using var timeout = CancellationTokenSource.CreateLinkedTokenSource(closed);
        timeout.CancelAfter(_options.HandshakeTimeout);
        long scanned = 0;
        while (true)
        {
            ReadResult result;
            try
            {
                result = await input.ReadAsync(timeout.Token);
            }
            catch (OperationCanceledException) when (!closed.IsCancellationRequested)
            {
                return (UpgradeRequest.ParseStatus.NeedMore, null, default);
            }
            catch (Exception ex) when (ex is OperationCanceledException or IOException or ConnectionAbortedException)
            {
                // Gone: the HTTP server finds the connection ended.
                return (UpgradeRequest.ParseStatus.NotOurs, null, default);
            }

            var buffer = result.Buffer;
            var status = UpgradeRequest.TryParse(buffer, _maxHeadBytes, _maxHeaders, ref scanned, out var request, out var headLength);
            switch (status)
            {
                case UpgradeRequest.ParseStatus.Parsed:
                    // Left unconsumed until admitted: a refusal hands the same bytes to the HTTP server.
                    return (status, request, buffer.Slice(0, headLength));
                case UpgradeRequest.ParseStatus.NeedMore when !result.IsCompleted && !result.IsCanceled:
                    input.AdvanceTo(buffer.Start, buffer.End);
                    continue;
                default:
                    input.AdvanceTo(buffer.Start);
                    return (UpgradeRequest.ParseStatus.NotOurs, null, default);
            }
        }
    }

    /// <summary>Writes a complete HTTP response (the connection is closed after it).</summary>
    private static async Task AnswerAsync(ConnectionContext connection, byte[] response)
    {
        try
        {
            using var timeout = new CancellationTokenSource(TimeSpan.FromSeconds(5));
            var output = connection.Transport.Output;
            await output.WriteAsync(response, timeout.Token);
            await output.CompleteAsync();
        }
        catch (Exception ex) when (ex is IOException or OperationCanceledException or InvalidOperationException or ObjectDisposedException)
        {
            // Gone, or not reading: it is closed either way.
        }
    }

    /// <summary>Counts what the client did to end the socket, if it broke a rule or reset.</summary>
    private void CountFailure(PipeWebSocket socket)
    {
        var kind = socket.Failure switch
        {
            WebSocketFailure.ProtocolError => ClientEvent.ProtocolViolation,
            WebSocketFailure.InvalidUtf8 => ClientEvent.InvalidUtf8,
            WebSocketFailure.ControlFrameFlood => ClientEvent.ControlFrameFlood,
            WebSocketFailure.MessageTooBig => ClientEvent.MessageTooBig,
            WebSocketFailure.Reset => ClientEvent.Reset,
            _ => (ClientEvent?)null,
        };
        if (kind is { } counted)
        {
            _events.Count(counted);
            LogClientFailure(_logger, socket.Failure);
        }
    }

    /// <summary>The client's address: read off a broker socket without keeping an endpoint object for the connection's life.</summary>
    private static IPAddress? RemoteAddress(ConnectionContext connection)
    {
        try
        {
            return ((connection is BrokerSocketConnection broker ? broker.Socket.RemoteEndPoint : connection.RemoteEndPoint) as IPEndPoint)?.Address;
        }
        catch (Exception ex) when (ex is System.Net.Sockets.SocketException or ObjectDisposedException)
        {
            return null;
        }
    }

    [LoggerMessage(EventId = 1310, Level = LogLevel.Debug, Message = "Upgrade request from {Address} not complete within {Seconds} s; closed")]
    private static partial void LogHandshakeTimeout(ILogger logger, IPAddress? address, double seconds);

    [LoggerMessage(EventId = 1311, Level = LogLevel.Debug, Message = "Upgrade request from {Address} refused with {Status}: {Reason}")]
    private static partial void LogRefused(ILogger logger, IPAddress? address, int status, string reason);

    [LoggerMessage(EventId = 1312, Level = LogLevel.Debug, Message = "WebSocket ended by the client: {Failure}")]
    private static partial void LogClientFailure(ILogger logger, WebSocketFailure failure);
}
