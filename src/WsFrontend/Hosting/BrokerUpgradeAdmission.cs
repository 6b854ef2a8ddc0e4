using System.Net;
using Broker.Frontend.Diagnostics;
using Broker.Frontend.Options;
using Broker.Frontend.Security;
using Broker.Transport;
using Microsoft.AspNetCore.Server.Kestrel.Core;
using Microsoft.AspNetCore.WebUtilities;
using Microsoft.Extensions.Options;

namespace Broker.Frontend.Hosting;

/// <summary>
/// The broker's side of the WebSocket transport (<see cref="WebSocketUpgrader"/>): who may
/// connect, and what an admitted socket runs. The connection caps first (cheap: a flood at the
/// cap costs no token validation), refused here with 503 and Retry-After; then the namespace's
/// admission (<see cref="ConnectAdmission"/>), whose refusals are left to the HTTP endpoint,
/// which reaches the same decision and answers it with its status. An admitted socket runs in
/// the <see cref="Connections.ConnectionHandler"/>; its slot is given back when it ends, and
/// what the client did to end it is counted in the <see cref="ClientEventLog"/>.
/// </summary>
public sealed partial class BrokerUpgradeAdmission : IUpgradeAdmission
{
    private readonly BrokerOptions _options;
    private readonly IHostApplicationLifetime _lifetime;
    private readonly TokenAuthenticator _tokens;
    private readonly Connections.ConnectionHandler _handler;
    private readonly ConnectionLimits _limits;
    private readonly ClientEventLog _events;
    private readonly ILogger<BrokerUpgradeAdmission> _logger;
    private readonly IClusterReadiness _cluster;
    private readonly FrontendWarmup _warmup;

    public BrokerUpgradeAdmission(
        IOptions<BrokerOptions> options,
        IHostApplicationLifetime lifetime,
        TokenAuthenticator tokens,
        Connections.ConnectionHandler handler,
        ConnectionLimits limits,
        ClientEventLog events,
        IClusterReadiness cluster,
        FrontendWarmup warmup,
        ILogger<BrokerUpgradeAdmission> logger)
    {
        _cluster = cluster;
        _warmup = warmup;
        _options = options.Value;
        _lifetime = lifetime;
        _tokens = tokens;
        _handler = handler;
        _limits = limits;
        _events = events;
        _logger = logger;
    }

    /// <summary>The transport's options, from the broker's and Kestrel's (the head limits are Kestrel's, so that both read the same requests).</summary>
    public static WebSocketUpgradeOptions UpgradeOptions(BrokerOptions options, KestrelServerLimits limits) => new()
    {
        MaxMessageBytes = options.MaxFrameBytes,
        KeepAliveInterval = options.KeepAliveInterval,
        KeepAliveTimeout = options.KeepAliveTimeout,
        DirectWrites = options.DirectSocketWrites,
        HandshakeTimeout = options.HandshakeTimeout,
        MaxHeadBytes = limits.MaxRequestLineSize + limits.MaxRequestHeadersTotalSize,
        MaxHeaders = limits.MaxRequestHeaderCount,
    };

    public async ValueTask<AdmissionDecision> AdmitAsync(UpgradeRequest request, IPAddress? address)
    {
        if (!_limits.TryAcquire(address, out var slot, out var full))
        {
            LogRefused(_logger, address, full.Status, full.Message);
            return AdmissionDecision.Refuse(full.Status, full.Message, ConnectionLimits.RetryAfterSeconds);
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
                query.TryGetValue("user", out var user) ? user.ToString() : string.Empty)
            {
                NoCluster = !_cluster.IsReady,
            },
            _options,
            _tokens,
            _warmup);
        if (admitted is null)
        {
            // The HTTP endpoint reaches the same decision and answers it (and counts it).
            _limits.Release(slot);
            return AdmissionDecision.NotOurs;
        }

        return AdmissionDecision.Accept(admitted with { Slot = slot });
    }

    public void Abandoned(object state) => _limits.Release(((Admitted)state).Slot);

    /// <remarks>Not async itself: an idle connection holds the transport's state machine only.</remarks>
    public Task RunAsync(PipeWebSocket socket, object state)
    {
        var admitted = (Admitted)state;
        return _handler.RunAsync(socket, admitted);
    }

    public void Ended(PipeWebSocket socket, object state)
    {
        _limits.Release(((Admitted)state).Slot);
        if (socket.Failure != WebSocketFailure.None)
        {
            _events.Count(socket.Failure);
            LogClientFailure(_logger, socket.Failure);
        }
    }

    public void HandshakeTimedOut(IPAddress? address)
    {
        _events.Count(ClientEvent.HandshakeTimeout);
        LogHandshakeTimeout(_logger, address, _options.HandshakeTimeout.TotalSeconds);
    }

    public void RefusedAtAccept(IPAddress? address)
    {
        _events.Count(ClientEvent.RefusedServerConnectionLimit);
        LogRefusedAtAccept(_logger, address);
    }

    [LoggerMessage(EventId = 1310, Level = LogLevel.Debug, Message = "Upgrade request from {Address} not complete within {Seconds} s; closed")]
    private static partial void LogHandshakeTimeout(ILogger logger, IPAddress? address, double seconds);

    [LoggerMessage(EventId = 1311, Level = LogLevel.Debug, Message = "Upgrade request from {Address} refused with {Status}: {Reason}")]
    private static partial void LogRefused(ILogger logger, IPAddress? address, int status, string reason);

    [LoggerMessage(EventId = 1312, Level = LogLevel.Debug, Message = "WebSocket ended by the client: {Failure}")]
    private static partial void LogClientFailure(ILogger logger, WebSocketFailure failure);

    [LoggerMessage(EventId = 1313, Level = LogLevel.Debug, Message = "Connection from {Address} refused at accept: Kestrel's MaxConcurrentConnections reached")]
    private static partial void LogRefusedAtAccept(ILogger logger, IPAddress? address);
}
