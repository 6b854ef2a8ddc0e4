using System.Text;
using Broker.Frontend.Options;
using Broker.Transport;
using Microsoft.Extensions.Options;

namespace Broker.Frontend.Diagnostics;

/// <summary>What a client did that the node refused or ended; counted by <see cref="ClientEventLog"/>.</summary>
public enum ClientEvent
{
    /// <summary>Handshake refused with 503: the front-end holds <c>MaxConnections</c> WebSockets.</summary>
    RefusedConnectionCap,

    /// <summary>Handshake refused with 503: the client's address holds <c>MaxConnectionsPerIp</c> WebSockets.</summary>
    RefusedPerIpCap,

    /// <summary>TCP connection refused with 503 at accept: Kestrel's Limits:MaxConcurrentConnections.</summary>
    RefusedServerConnectionLimit,

    /// <summary>The first request was not complete within <c>HandshakeTimeout</c>: closed unanswered.</summary>
    HandshakeTimeout,

    /// <summary>An upgrade request refused by admission (unknown namespace, identity, origin, HTTP/1.0): 4xx.</summary>
    HandshakeRefused,

    /// <summary>A frame broke RFC 6455 (masking, reserved bits, opcodes, fragmentation, control frame rules): 1002.</summary>
    ProtocolViolation,

    /// <summary>A text message that is not valid UTF-8: 1007.</summary>
    InvalidUtf8,

    /// <summary>Control frames past the frame budget, too many in a row: 1008.</summary>
    ControlFrameFlood,

    /// <summary>A message over <c>MaxFrameBytes</c>: 1009.</summary>
    MessageTooBig,

    /// <summary>The client reset the TCP connection, or closed it without a close frame.</summary>
    Reset,

    /// <summary>A frame answered with error bad_request.</summary>
    BadRequest,

    /// <summary>A frame dropped over the rate limit (rate_limited).</summary>
    RateLimited,

    /// <summary>A client closed with 1013 for not reading what it was sent.</summary>
    SlowConsumer,

    /// <summary>A frame answered unavailable: the cluster did not answer in time, or a silo short of memory refused a new room or user.</summary>
    Unavailable,
}

/// <summary>
/// Counts client-caused events by kind and logs them as one Information line per interval
/// (only when any occurred), so that an attack costs one log line a minute, not a line (let
/// alone a stack trace) per connection. The details of each event are the caller's to log at
/// Debug. <see cref="Count"/> is one interlocked increment: safe on any path.
/// </summary>
public sealed partial class ClientEventLog : IHostedService, IDisposable
{
    private static readonly ClientEvent[] Kinds = Enum.GetValues<ClientEvent>();

    private readonly long[] _sinceLastLine = new long[Kinds.Length];
    private readonly long[] _totals = new long[Kinds.Length];
    private readonly TimeSpan _interval;
    private readonly TimeProvider _time;
    private readonly ILogger<ClientEventLog> _logger;
    private ITimer? _timer;
    private long _lastLine;

    public ClientEventLog(IOptions<BrokerOptions> options, TimeProvider time, ILogger<ClientEventLog> logger)
    {
        _interval = options.Value.ClientEventLogInterval;
        _time = time;
        _logger = logger;
        _lastLine = time.GetTimestamp();
        FrontendMetrics.Track(this);
    }

    /// <summary>One more event of this kind.</summary>
    public void Count(ClientEvent kind)
    {
        Interlocked.Increment(ref _sinceLastLine[(int)kind]);
        Interlocked.Increment(ref _totals[(int)kind]);
    }

    /// <summary>Counts how a client broke off a socket, if it did (a protocol violation, bad UTF-8, a ping flood, a message too big, a reset).</summary>
    public void Count(WebSocketFailure failure)
    {
        ClientEvent? kind = failure switch
        {
            WebSocketFailure.ProtocolError => ClientEvent.ProtocolViolation,
            WebSocketFailure.InvalidUtf8 => ClientEvent.InvalidUtf8,
            WebSocketFailure.ControlFrameFlood => ClientEvent.ControlFrameFlood,
            WebSocketFailure.MessageTooBig => ClientEvent.MessageTooBig,
            WebSocketFailure.Reset => ClientEvent.Reset,
            _ => null,
        };
        if (kind is { } counted)
        {
            Count(counted);
        }
    }

    /// <summary>Events of this kind since start (for tests and diagnostics).</summary>
    public long Total(ClientEvent kind) => Interlocked.Read(ref _totals[(int)kind]);

    public Task StartAsync(CancellationToken cancellationToken)
    {
        _timer = _time.CreateTimer(static s => ((ClientEventLog)s!).Flush(), this, _interval, _interval);
        return Task.CompletedTask;
    }

    public Task StopAsync(CancellationToken cancellationToken)
    {
        _timer?.Dispose();
        FrontendMetrics.Untrack(this);
        Flush();
        return Task.CompletedTask;
    }

    public void Dispose()
    {
        _timer?.Dispose();
        FrontendMetrics.Untrack(this);
    }

    /// <summary>Logs and resets the counts since the last line, if any is non-zero.</summary>
    internal void Flush()
    {
        StringBuilder? line = null;
        foreach (var kind in Kinds)
        {
            var count = Interlocked.Exchange(ref _sinceLastLine[(int)kind], 0);
            if (count != 0)
            {
                line ??= new StringBuilder();
                line.Append(line.Length == 0 ? string.Empty : ", ").Append(kind).Append(' ').Append(count);
            }
        }

        var now = _time.GetTimestamp();
        var seconds = Math.Round(_time.GetElapsedTime(Interlocked.Exchange(ref _lastLine, now), now).TotalSeconds);
        if (line is not null)
        {
            LogEvents(_logger, seconds, line.ToString());
        }
    }

    [LoggerMessage(EventId = 1300, Level = LogLevel.Information, Message = "Client events in the last {Seconds} s: {Counts}")]
    private static partial void LogEvents(ILogger logger, double seconds, string counts);
}
