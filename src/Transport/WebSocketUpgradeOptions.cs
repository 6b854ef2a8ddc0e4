namespace Broker.Transport;

/// <summary>How <see cref="WebSocketUpgrader"/> reads upgrade requests and runs sockets.</summary>
public sealed class WebSocketUpgradeOptions
{
    public const int DefaultMaxHeaders = UpgradeRequest.DefaultMaxHeaders;

    /// <summary>Largest message (all its fragments) a socket accepts; more is <see cref="MessageTooBigException"/>.</summary>
    public long MaxMessageBytes { get; init; } = 64 * 1024;

    /// <summary>Interval of keep-alive pings; zero: none.</summary>
    public TimeSpan KeepAliveInterval { get; init; } = TimeSpan.FromSeconds(20);

    /// <summary>A socket whose pong is this late is aborted; zero: never.</summary>
    public TimeSpan KeepAliveTimeout { get; init; } = TimeSpan.FromSeconds(20);

    /// <summary>Send frames on the socket directly while it takes them whole (see <see cref="PipeWebSocket"/>).</summary>
    public bool DirectWrites { get; init; } = true;

    /// <summary>One deadline, from the start, for the whole first request; past it the connection is closed unanswered.</summary>
    public TimeSpan HandshakeTimeout { get; init; } = TimeSpan.FromSeconds(10);

    /// <summary>The longest request head taken; a longer one is left to the HTTP server (Kestrel's request line and header limits together).</summary>
    public int MaxHeadBytes { get; init; } = 8 * 1024 + 32 * 1024;

    /// <summary>The most header lines taken; with more the request is left to the HTTP server (Kestrel answers 431).</summary>
    public int MaxHeaders { get; init; } = DefaultMaxHeaders;
}
