using System.Collections.Concurrent;
using System.Diagnostics;
using System.Diagnostics.Metrics;
using System.Net.WebSockets;
using Broker.Frontend.Protocol;
using Broker.Transport;

namespace Broker.Frontend.Diagnostics;

/// <summary>What kind of frame the front-end sent (broker.frames.sent's <c>type</c>).</summary>
public enum SentFrame
{
    Welcome,
    Message,
    Ack,
    Joined,
    Left,
    Presence,
    History,
    Error,
    Direct,
    Pong,
    Echo,
    Refreshed,
    MemberJoined,
    MemberLeft,
}

/// <summary>
/// The front-end's instruments on the <c>Broker</c> meter (docs/operations.md, "Metrics").
/// One static meter per process: an embedded front-end's co-hosted silo adds its own
/// (<c>Broker.Grains.Diagnostics.SiloMetrics</c>) under the same name.
/// <para>
/// Cost: nothing here runs per socket in a fan-out. Per-frame counts are plain interlocked
/// increments on per-type longs, read by observable instruments only when something collects;
/// deliveries are added once per delivered event with the number of local members; durations
/// are recorded once per publish and once per delivered message per front-end. Tags are
/// low-cardinality only: a namespace, a frame type, a code — never a room, user or connection.
/// </para>
/// </summary>
public static class FrontendMetrics
{
    public const string MeterName = "Broker";

    private static readonly Meter Meter = new(MeterName);

    private static readonly string[] ReceivedNames = [.. Enum.GetNames<ClientFrameType>().Select(n => n.ToLowerInvariant()), "invalid"];
    private static readonly long[] Received = new long[ReceivedNames.Length];
    private static readonly int InvalidIndex = ReceivedNames.Length - 1;

    private static readonly string[] SentNames = [.. Enum.GetNames<SentFrame>().Select(SnakeCase)];
    private static readonly long[] Sent = new long[SentNames.Length];

    private static readonly string[] EventNames = [.. Enum.GetNames<ClientEvent>().Select(SnakeCase)];
    private static readonly ConcurrentDictionary<ClientEventLog, bool> EventLogs = new();

    /// <summary>Close codes as tag values (1000–1015); anything else is "other".</summary>
    private static readonly string[] CloseCodeNames = [.. Enumerable.Range(1000, 16).Select(c => c.ToString(System.Globalization.CultureInfo.InvariantCulture))];

    private static readonly InstrumentAdvice<double> DurationAdvice = new()
    {
        HistogramBucketBoundaries = [0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10],
    };

    private static readonly UpDownCounter<long> Connections = Meter.CreateUpDownCounter<long>("broker.connections", "{connection}", "Open client WebSockets.");
    private static readonly Counter<long> ConnectionsOpened = Meter.CreateCounter<long>("broker.connections.opened", "{connection}", "Client WebSockets admitted.");
    private static readonly Counter<long> ConnectionsClosed = Meter.CreateCounter<long>("broker.connections.closed", "{connection}", "Client WebSockets ended, by close code (reset: no close frame).");
    private static readonly Counter<long> Deliveries = Meter.CreateCounter<long>("broker.deliveries", "{message}", "Room and direct messages queued toward local sockets.");
    private static readonly Histogram<double> PublishDuration = Meter.CreateHistogram("broker.publish.duration", "s", "Publish frame received to ack queued.", tags: null, advice: DurationAdvice);
    private static readonly Histogram<double> DeliveryDuration = Meter.CreateHistogram("broker.delivery.duration", "s", "Room commit on the silo to this front-end queuing the message to its sockets (once per message per front-end).", tags: null, advice: DurationAdvice);
    private static readonly Counter<long> Errors = Meter.CreateCounter<long>("broker.errors", "{error}", "Error frames sent, by code.");
    private static readonly Counter<long> ClusterCallsFailed = Meter.CreateCounter<long>("broker.cluster.calls.failed", "{call}", "Cluster calls that failed: timeout, overloaded (a silo or gateway shedding load) or error.");
    private static readonly Counter<long> ProxyRequests = Meter.CreateCounter<long>("broker.proxy.requests", "{request}", "Authorization proxy questions, by outcome.");
    private static readonly Counter<long> ApiRequests = Meter.CreateCounter<long>("broker.api.requests", "{request}", "Server API requests, by operation and HTTP status.");

    static FrontendMetrics()
    {
        Meter.CreateObservableCounter("broker.frames.received", ObserveReceived, "{frame}", "Client frames received, by type (invalid: not parsed).");
        Meter.CreateObservableCounter("broker.frames.sent", ObserveSent, "{frame}", "Frames queued toward client sockets, by type.");
        Meter.CreateObservableCounter("broker.client.events", ObserveClientEvents, "{event}", "Client-caused events (the client event log's totals), by kind.");
    }

    // ---- connections (once per connection) ----

    public static void Opened(string ns, WebSocket socket)
    {
        var transport = new KeyValuePair<string, object?>("transport", socket is PipeWebSocket ? "pipe" : "aspnetcore");
        var nsTag = new KeyValuePair<string, object?>("namespace", ns);
        Connections.Add(1, nsTag, transport);
        ConnectionsOpened.Add(1, nsTag, transport);
    }

    public static void Closed(string ns, WebSocket socket, WebSocketCloseStatus? sent)
    {
        var transport = new KeyValuePair<string, object?>("transport", socket is PipeWebSocket ? "pipe" : "aspnetcore");
        var nsTag = new KeyValuePair<string, object?>("namespace", ns);
        Connections.Add(-1, nsTag, transport);
        ConnectionsClosed.Add(1, nsTag, new KeyValuePair<string, object?>("code", CloseCode(socket, sent)));
    }

    /// <summary>The close code a connection ended with: what the socket itself closed with when the client broke a rule, reset when it vanished, else what the server sent.</summary>
    internal static string CloseCode(WebSocket socket, WebSocketCloseStatus? sent)
    {
        var code = socket switch
        {
            PipeWebSocket { Failure: WebSocketFailure.Reset } => -1,
            PipeWebSocket { Failure: WebSocketFailure.ProtocolError } => 1002,
            PipeWebSocket { Failure: WebSocketFailure.InvalidUtf8 } => 1007,
            PipeWebSocket { Failure: WebSocketFailure.ControlFrameFlood } => 1008,
            PipeWebSocket { Failure: WebSocketFailure.MessageTooBig } => 1009,
            not PipeWebSocket when socket.State == WebSocketState.Aborted && socket.CloseStatus is null => -1,
            _ => sent is { } status ? (int)status : -1,
        };
        return code switch
        {
            -1 => "reset",
            >= 1000 and < 1016 => CloseCodeNames[code - 1000],
            _ => "other",
        };
    }

    // ---- frames (one interlocked increment each) ----

    public static void FrameReceived(ClientFrameType type) => Interlocked.Increment(ref Received[(int)type]);

    /// <summary>A text frame: its type when it parsed, else invalid.</summary>
    public static void FrameReceived(bool parsed, ClientFrame? frame) =>
        Interlocked.Increment(ref Received[parsed && frame is not null ? (int)frame.Type : InvalidIndex]);

    public static void FrameSent(SentFrame type) => Interlocked.Increment(ref Sent[(int)type]);

    public static void FramesSent(SentFrame type, int count)
    {
        if (count > 0)
        {
            Interlocked.Add(ref Sent[(int)type], count);
        }
    }

    /// <summary>An error frame: counted as sent and by its code.</summary>
    public static void Error(string code)
    {
        Interlocked.Increment(ref Sent[(int)SentFrame.Error]);
        Errors.Add(1, new KeyValuePair<string, object?>("code", code));
    }

    // ---- deliveries (once per event per front-end, never per socket) ----

    /// <summary>One room message queued to <paramref name="members"/> local members.</summary>
    public static void DeliveredRoomMessage(string ns, int members, long committedUnixMs)
    {
        if (members <= 0)
        {
            return;
        }

        Interlocked.Add(ref Sent[(int)SentFrame.Message], members);
        Deliveries.Add(members, new KeyValuePair<string, object?>("namespace", ns));
        if (DeliveryDuration.Enabled)
        {
            var seconds = Math.Max(0, DateTimeOffset.UtcNow.ToUnixTimeMilliseconds() - committedUnixMs) / 1000.0;
            DeliveryDuration.Record(seconds, new KeyValuePair<string, object?>("namespace", ns));
        }
    }

    /// <summary>Direct messages queued: <paramref name="messages"/> to each of <paramref name="connections"/>.</summary>
    public static void DeliveredDirect(string ns, int messages, int connections)
    {
        var count = messages * connections;
        if (count <= 0)
        {
            return;
        }

        Interlocked.Add(ref Sent[(int)SentFrame.Direct], count);
        Deliveries.Add(count, new KeyValuePair<string, object?>("namespace", ns));
    }

    /// <summary>Publish frame received (<paramref name="started"/>, a <see cref="Stopwatch"/> timestamp) to its ack queued.</summary>
    public static void Published(string ns, long started)
    {
        if (PublishDuration.Enabled)
        {
            PublishDuration.Record(Stopwatch.GetElapsedTime(started).TotalSeconds, new KeyValuePair<string, object?>("namespace", ns));
        }
    }

    // ---- the cluster, the proxy, the server API ----

    /// <summary>A cluster call failed: timeout, overloaded (a silo or gateway refusing load), or error.</summary>
    public static void ClusterCallFailed(Exception exception) =>
        ClusterCallsFailed.Add(1, new KeyValuePair<string, object?>("reason", exception switch
        {
            TimeoutException => "timeout",
            Orleans.Runtime.GatewayTooBusyException or Broker.Grains.SiloOverloadedException => "overloaded",
            _ => "error",
        }));

    /// <summary>allow, deny, error (the application failed to answer properly) or timeout (no answer in time, or no connection).</summary>
    public static void ProxyAnswered(string outcome) => ProxyRequests.Add(1, new KeyValuePair<string, object?>("outcome", outcome));

    public static void ApiRequest(string operation, int status) =>
        ApiRequests.Add(1, new KeyValuePair<string, object?>("operation", operation), new KeyValuePair<string, object?>("status", StatusName(status)));

    private static string StatusName(int status) => status switch
    {
        200 => "200",
        400 => "400",
        401 => "401",
        403 => "403",
        404 => "404",
        413 => "413",
        415 => "415",
        500 => "500",
        503 => "503",
        _ => status.ToString(System.Globalization.CultureInfo.InvariantCulture),
    };

    // ---- the client event log ----

    /// <summary>A client event log whose totals broker.client.events reports (while it lives).</summary>
    internal static void Track(ClientEventLog log) => EventLogs.TryAdd(log, true);

    internal static void Untrack(ClientEventLog log) => EventLogs.TryRemove(log, out _);

    private static IEnumerable<Measurement<long>> ObserveReceived()
    {
        var measurements = new Measurement<long>[ReceivedNames.Length];
        for (var i = 0; i < measurements.Length; i++)
        {
            measurements[i] = new Measurement<long>(Interlocked.Read(ref Received[i]), new KeyValuePair<string, object?>("type", ReceivedNames[i]));
        }

        return measurements;
    }

    private static IEnumerable<Measurement<long>> ObserveSent()
    {
        var measurements = new Measurement<long>[SentNames.Length];
        for (var i = 0; i < measurements.Length; i++)
        {
            measurements[i] = new Measurement<long>(Interlocked.Read(ref Sent[i]), new KeyValuePair<string, object?>("type", SentNames[i]));
        }

        return measurements;
    }

    private static IEnumerable<Measurement<long>> ObserveClientEvents()
    {
        var totals = new long[EventNames.Length];
        foreach (var log in EventLogs.Keys)
        {
            for (var i = 0; i < totals.Length; i++)
            {
                totals[i] += log.Total((ClientEvent)i);
            }
        }

        var measurements = new Measurement<long>[totals.Length];
        for (var i = 0; i < totals.Length; i++)
        {
            measurements[i] = new Measurement<long>(totals[i], new KeyValuePair<string, object?>("event", EventNames[i]));
        }

        return measurements;
    }

    private static string SnakeCase(string name) =>
        string.Concat(name.Select((c, i) => char.IsUpper(c) ? (i > 0 ? "_" : string.Empty) + char.ToLowerInvariant(c) : c.ToString()));
}
