using System.Net;
using Microsoft.AspNetCore.Connections;

namespace Broker.Transport;

/// <summary>What the application decided about an upgrade request.</summary>
public enum AdmissionResult
{
    /// <summary>Not for this transport: the connection goes to the HTTP server with nothing consumed (which answers it, refusals included).</summary>
    NotOurs,

    /// <summary>Accepted: 101, then the socket runs with the decision's state.</summary>
    Accepted,

    /// <summary>Refused here: the decision's status and message are written, then the connection is closed.</summary>
    Refused,
}

/// <summary>An application's answer to an upgrade request (<see cref="IUpgradeAdmission.AdmitAsync"/>).</summary>
/// <param name="State">For <see cref="AdmissionResult.Accepted"/>: whatever the application needs to run the socket (kept for its life).</param>
/// <param name="RetryAfterSeconds">For a refusal: a Retry-After header, when set.</param>
public readonly record struct AdmissionDecision(AdmissionResult Result, object? State = null, int Status = 0, string? Message = null, int? RetryAfterSeconds = null)
{
    public static AdmissionDecision NotOurs => default;

    public static AdmissionDecision Accept(object state) => new(AdmissionResult.Accepted, state);

    public static AdmissionDecision Refuse(int status, string message, int? retryAfterSeconds = null) =>
        new(AdmissionResult.Refused, Status: status, Message: message, RetryAfterSeconds: retryAfterSeconds);
}

/// <summary>
/// The application's side of <see cref="WebSocketUpgrader"/>: it decides who may connect and
/// runs what is admitted. The transport reads and checks the upgrade request, answers 101 or the
/// refusal, and runs the RFC 6455 side of the socket; it knows nothing else.
/// </summary>
public interface IUpgradeAdmission
{
    /// <summary>Decides on a complete, valid upgrade request from <paramref name="address"/> (null if not IP).</summary>
    ValueTask<AdmissionDecision> AdmitAsync(UpgradeRequest request, IPAddress? address);

    /// <summary>Undoes an admission whose 101 could not be sent (the client left first).</summary>
    void Abandoned(object state);

    /// <summary>An admitted socket's life, to its close. Should not itself be an async method: an idle socket then holds the transport's state machine only.</summary>
    Task RunAsync(PipeWebSocket socket, object state);

    /// <summary>After <see cref="RunAsync"/> (whatever its outcome): release what the admission took; <see cref="PipeWebSocket.Failure"/> says how the client ended it.</summary>
    void Ended(PipeWebSocket socket, object state);

    /// <summary>A connection's first request was not complete within the handshake timeout: it is closed unanswered.</summary>
    void HandshakeTimedOut(IPAddress? address);

    /// <summary>A connection was refused at accept, past the server's connection limit.</summary>
    void RefusedAtAccept(IPAddress? address);
}
