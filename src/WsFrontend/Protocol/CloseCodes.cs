using System.Net.WebSockets;

namespace Broker.Frontend.Protocol;

/// <summary>The WebSocket close codes the broker sends, defined once with their meaning.</summary>
public static class CloseCodes
{
    /// <summary>1000: the client closed, or the server answers a client's close.</summary>
    public const WebSocketCloseStatus Normal = WebSocketCloseStatus.NormalClosure;

    /// <summary>1003: a binary frame, which no namespace accepts in protocol v1.</summary>
    public const WebSocketCloseStatus BinaryNotAccepted = WebSocketCloseStatus.InvalidMessageType;

    /// <summary>1008: authorization revoked or expired mid-connection.</summary>
    public const WebSocketCloseStatus PolicyViolation = WebSocketCloseStatus.PolicyViolation;

    /// <summary>1009: a frame over the configured size limit.</summary>
    public const WebSocketCloseStatus FrameTooLarge = WebSocketCloseStatus.MessageTooBig;

    /// <summary>1011: an unexpected server failure.</summary>
    public const WebSocketCloseStatus Internal = WebSocketCloseStatus.InternalServerError;

    /// <summary>1012: the node is shutting down; reconnect to any node.</summary>
    public const WebSocketCloseStatus ServiceRestart = (WebSocketCloseStatus)1012;

    /// <summary>1013: overloaded or slow consumer (its outbox filled); reconnect later.</summary>
    public const WebSocketCloseStatus TryAgainLater = (WebSocketCloseStatus)1013;
}
