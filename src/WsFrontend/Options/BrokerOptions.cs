using Broker.Grains.Hosting;
using Broker.Grains.Models;

namespace Broker.Frontend.Options;

/// <summary>
/// Everything a front-end can be told, bound from the "Broker" configuration section
/// (appsettings.json, environment variables such as Broker__MaxFrameBytes, or --Broker:X=Y).
/// Every limit has a default here, validated at start-up, and documented in the README.
/// </summary>
public sealed class BrokerOptions
{
    public const string SectionName = "Broker";
    public const int DefaultMaxFrameBytes = 64 * 1024;
    public const int DefaultOutboxFrames = 1024;
    public const long DefaultOutboxBytes = 1024 * 1024;
    public const bool DefaultInlineSocketScheduling = true;
    public const int DefaultMaxRoomsPerConnection = 100;
    public const int DefaultMaxPublishesInFlight = 32;
    public const long DefaultMaxPublishBytesInFlight = 1024 * 1024;
    public const int DefaultRateLimitPerSecond = 500;
    public const int DefaultRateLimitBurst = 1000;
    public const int DefaultMaxNameLength = 200;
    public const int DefaultMaxReplyBytes = 256 * 1024;

    /// <summary>The most messages one history reply holds, whatever limit was asked (protocol.md "Bounds").</summary>
    public const int MaxHistoryLimit = 100;

    /// <summary>How much room a reply needs beyond its largest message: MaxReplyBytes must leave this above MaxFrameBytes.</summary>
    public const int ReplyHeadroomBytes = 16 * 1024;

    private const double RoomGrainIdleMinutes = Broker.Grains.RoomGrain.IdleMinutes;

    /// <summary>This front-end's name in welcome frames and logs; default "fe-" and 8 random hex digits.</summary>
    public string? NodeId { get; set; }

    /// <summary>Largest text frame accepted, in bytes; larger ones close the connection with 1009.</summary>
    public int MaxFrameBytes { get; set; } = DefaultMaxFrameBytes;

    /// <summary>Frames waiting to be written to one socket; when full the client is closed with 1013.</summary>
    public int OutboxFrames { get; set; } = DefaultOutboxFrames;

    /// <summary>
    /// Bytes waiting to be written to one socket, pushes and replies alike; a push past it closes
    /// the client with 1013, a reply waits for room. An empty outbox takes any one frame, however
    /// large. The default, 1 MiB, holds 16 frames of the default MaxFrameBytes, so a reader a few
    /// large messages behind is not closed, and bounds what a client that never reads makes the
    /// node hold to about a megabyte, plus the frame being written and one waiting reply.
    /// </summary>
    public long OutboxBytes { get; set; } = DefaultOutboxBytes;

    /// <summary>
    /// Socket reads and writes continue on the thread that completed them instead of being
    /// handed to another thread (Kestrel's UnsafePreferInlineScheduling): a frame written to a
    /// socket goes out in the caller's own send call. Nothing in the front-end blocks a thread.
    /// Applies to Kestrel's socket transport (<see cref="SocketTransport.Kestrel"/>, or the
    /// AspNetCore WebSocket transport); the broker's own sockets have no pipes to schedule.
    /// </summary>
    public bool InlineSocketScheduling { get; set; } = DefaultInlineSocketScheduling;

    /// <summary>
    /// Who speaks WebSocket on namespace connections. <see cref="WebSocketTransport.Pipe"/> (the
    /// default): the broker's own RFC 6455 server on the connection (see <see cref="SocketTransport"/>),
    /// once the upgrade request is read off it — no HTTP request objects kept per socket.
    /// <see cref="WebSocketTransport.AspNetCore"/>: ASP.NET Core's WebSocket middleware.
    /// Requests the pipe transport does not take (other paths, refusals, unusual requests) are
    /// always served by Kestrel's HTTP server.
    /// </summary>
    public WebSocketTransport WebSocketTransport { get; set; } = WebSocketTransport.Pipe;

    /// <summary>
    /// Who owns the TCP connections of IP endpoints, with the pipe transport.
    /// <see cref="SocketTransport.Broker"/> (the default): the broker accepts them, reads the first
    /// request itself and runs an admitted WebSocket on the bare socket (a zero-byte receive
    /// while idle, no pipes or receive loop, nothing of Kestrel's per connection); every other
    /// connection goes to Kestrel's HTTP server with nothing consumed.
    /// <see cref="SocketTransport.Kestrel"/>: Kestrel's socket transport for every connection.
    /// </summary>
    public SocketTransport SocketTransport { get; set; } = SocketTransport.Broker;

    /// <summary>
    /// With the pipe transport: frames are sent on the socket with a non-blocking send on the
    /// delivering thread instead of through the transport's writer; a socket whose kernel buffer
    /// fills up switches to the writer for good (order kept).
    /// </summary>
    public bool DirectSocketWrites { get; set; } = true;

    /// <summary>
    /// Largest history reply, in bytes of the frame: a reply cut short by it carries
    /// "more": true and the client pages on with since. At least MaxFrameBytes plus
    /// <see cref="ReplyHeadroomBytes"/>, so that any one message fits.
    /// </summary>
    public int MaxReplyBytes { get; set; } = DefaultMaxReplyBytes;

    /// <summary>Rooms one connection may be in at once; a join beyond it gets too_large.</summary>
    public int MaxRoomsPerConnection { get; set; } = DefaultMaxRoomsPerConnection;

    /// <summary>
    /// Publishes of one connection taken on before the earlier ones are answered (pipelining):
    /// the receive loop reads on while fewer are unanswered, and stops reading (the client's
    /// frames wait in TCP) until one is answered. Each room gets one call in flight per
    /// connection; what queues meanwhile goes in the next call, as one batch, so the order sent
    /// is the order the room gives them, and a durable room commits the batch in one write.
    /// Replies keep the order of the frames. Every other frame waits for the publishes before
    /// it to be answered. 1: one frame at a time, as before pipelining (and front-ends then call only
    /// <c>Publish</c>, which silos from before <c>PublishBatch</c> know).
    /// </summary>
    public int MaxPublishesInFlight { get; set; } = DefaultMaxPublishesInFlight;

    /// <summary>
    /// Bytes of data of one connection's unanswered publishes, the other bound of pipelining
    /// (<see cref="MaxPublishesInFlight"/>): past it the receive loop waits. With none in flight
    /// any one publish is taken, however large.
    /// </summary>
    public long MaxPublishBytesInFlight { get; set; } = DefaultMaxPublishBytesInFlight;

    /// <summary>Sustained frames per second one connection may send (token bucket); 0 turns the limit off.</summary>
    public int RateLimitPerSecond { get; set; } = DefaultRateLimitPerSecond;

    /// <summary>Frames a connection may send in a burst above the sustained rate.</summary>
    public int RateLimitBurst { get; set; } = DefaultRateLimitBurst;

    /// <summary>Longest room, user, msgId or recipient name, in characters.</summary>
    public int MaxNameLength { get; set; } = DefaultMaxNameLength;

    /// <summary>Interval of protocol-level WebSocket pings; 0 turns them off.</summary>
    public TimeSpan KeepAliveInterval { get; set; } = TimeSpan.FromSeconds(20);

    /// <summary>A connection whose pong does not come back within this time is closed; 0 waits forever.</summary>
    public TimeSpan KeepAliveTimeout { get; set; } = TimeSpan.FromSeconds(20);

    /// <summary>How long a closing handshake may take before the socket is aborted.</summary>
    public TimeSpan CloseTimeout { get; set; } = TimeSpan.FromSeconds(5);

    /// <summary>How long a frame may wait for the cluster before the client gets unavailable.</summary>
    public TimeSpan ClusterCallTimeout { get; set; } = TimeSpan.FromSeconds(5);

    /// <summary>How often the front-end restates its members to their rooms and users (keeps them active, rebuilds lost state).</summary>
    public TimeSpan HeartbeatInterval { get; set; } = TimeSpan.FromSeconds(30);

    /// <summary>JWT identity: a token's "sub" is the user (protocol.md "Connecting", v1.1 "Identity").</summary>
    public JwtOptions Jwt { get; set; } = new();

    /// <summary>
    /// Key for the server HTTP API (Authorization: Bearer KEY), at least <see cref="MinApiKeyLength"/>
    /// characters; unset serves direct loopback callers only (no Forwarded or X-Forwarded-For header).
    /// </summary>
    public string? ApiKey { get; set; }

    /// <summary>The shortest ApiKey accepted: 16 random characters are out of reach of guessing.</summary>
    public const int MinApiKeyLength = 16;

    /// <summary>First path segments the broker serves itself, so no namespace may take them.</summary>
    public static readonly string[] ReservedNamespaceNames = ["echo", "healthz", "health", "api", "openapi", "metrics", Hosting.ChatPage.Segment];

    /// <summary>How often the front-end renews its lease with the cluster.</summary>
    public TimeSpan LeaseInterval { get; set; } = TimeSpan.FromSeconds(2);

    /// <summary>A front-end that has not renewed for this long is declared lost: its members leave their rooms.</summary>
    public TimeSpan LeaseTtl { get; set; } = TimeSpan.FromSeconds(6);

    /// <summary>
    /// Serve the chat page: a plain GET / answers it (an upgrade to / is the default namespace
    /// either way) and its files are under /_broker/. False: GET / is 426 as on any namespace.
    /// </summary>
    public bool ChatPage { get; set; } = true;

    /// <summary>Browser origins allowed to connect; empty allows any. Others get HTTP 403.</summary>
    public List<string> AllowedOrigins { get; set; } = [];

    /// <summary>The namespaces served, by name; "default" is the path "/". Three ship by default.</summary>
    public Dictionary<string, NamespaceOptions> Namespaces { get; set; } = new(StringComparer.Ordinal)
    {
        ["default"] = new NamespaceOptions(),
        ["chat"] = new NamespaceOptions(),
        ["notifications"] = new NamespaceOptions { Presence = false, ClientPublish = false },
    };

    /// <summary>Cluster mode: with Cluster:Redis set the front-end is a pure Orleans client of silos found through Redis.</summary>
    public BrokerClusterOptions Cluster { get; set; } = new();

    /// <summary>The embedded silo (the default mode: one process, no Redis).</summary>
    public EmbeddedSiloOptions Embedded { get; set; } = new();

    public static readonly TimeSpan DefaultIdleTrimInterval = TimeSpan.FromSeconds(5);

    /// <summary>
    /// How often a front-end checks whether it is quiet after its connection count moved by
    /// <see cref="IdleTrimConnections"/> or more, and then gives the memory of that burst back
    /// with one full collection (<see cref="Hosting.IdleMemoryTrim"/>). 0 turns it off.
    /// </summary>
    public TimeSpan IdleTrimInterval { get; set; } = DefaultIdleTrimInterval;

    /// <summary>By how many connections the count must have moved since the last trim for the next one.</summary>
    public int IdleTrimConnections { get; set; } = 1000;

    /// <summary>Cluster mode: traffic through the hot path before the first ready (docs/performance.md, "Cold start").</summary>
    public WarmupOptions Warmup { get; set; } = new();

    // ---- Admission (protocol.md "Bounds"): added for issue 13 ----

    public const int DefaultMaxConnectionsPerIp = 1000;
    public static readonly TimeSpan DefaultHandshakeTimeout = TimeSpan.FromSeconds(10);
    public static readonly TimeSpan DefaultClientEventLogInterval = TimeSpan.FromSeconds(60);

    /// <summary>
    /// WebSocket connections this front-end holds at once (namespaces and /echo, every
    /// transport); past it the handshake is refused with HTTP 503 and Retry-After. Unset: the
    /// process's descriptor limit minus a reserve (<see cref="ConnectionLimits.DerivedMaxConnections"/>),
    /// so that /healthz, the cluster and handshakes in progress still find descriptors at the
    /// cap. 0 turns the cap off. Kestrel's Limits:MaxConcurrentUpgradedConnections, when set
    /// lower, is the cap.
    /// </summary>
    public int? MaxConnections { get; set; }

    /// <summary>
    /// WebSocket connections one client address holds at once on this front-end (an IPv4
    /// address, or an IPv6 /64); past it the handshake is refused with HTTP 503 and
    /// Retry-After. 0 turns the cap off (behind a proxy every client has the proxy's address).
    /// </summary>
    public int MaxConnectionsPerIp { get; set; } = DefaultMaxConnectionsPerIp;

    /// <summary>
    /// One deadline for a new connection's whole first request, counted from accept: an
    /// upgrade request not complete by then is closed without an answer. Kestrel's own
    /// RequestHeadersTimeout and KeepAliveTimeout are set to it unless configured
    /// (Kestrel:Limits), so plain HTTP connections are bounded the same way.
    /// </summary>
    public TimeSpan HandshakeTimeout { get; set; } = DefaultHandshakeTimeout;

    /// <summary>How often the counts of client-caused events (refusals, timeouts, protocol violations, resets) are logged, in one Information line, when any occurred.</summary>
    public TimeSpan ClientEventLogInterval { get; set; } = DefaultClientEventLogInterval;

    /// <summary>
    /// Settles the defaults that depend on other options, once they are all bound (registered as a
    /// post-configure step): a namespace's Anonymous is off by default once a token key is set.
    /// </summary>
    public void ResolveDefaults()
    {
        var keyed = Jwt.AnyKeyConfigured;
        foreach (var ns in Namespaces.Values)
        {
            ns.ResolveAnonymousDefault(keyed);
        }
    }

    public NamespaceOptions? FindNamespace(string name) =>
        Namespaces.TryGetValue(name, out var ns) && ns.Enabled ? ns : null;

    internal IEnumerable<string> Validate()
    {
        if (MaxFrameBytes < 256)
        {
            yield return "Broker:MaxFrameBytes must be at least 256.";
        }

        if (OutboxFrames < 1)
        {
            yield return "Broker:OutboxFrames must be at least 1.";
        }

        if (MaxReplyBytes < MaxFrameBytes + ReplyHeadroomBytes)
        {
            yield return $"Broker:MaxReplyBytes must be at least MaxFrameBytes + {ReplyHeadroomBytes} ({MaxFrameBytes + ReplyHeadroomBytes}), so that any one message fits in a history reply.";
        }

        if (OutboxBytes < 2L * MaxFrameBytes)
        {
            yield return $"Broker:OutboxBytes ({OutboxBytes}) must hold at least two frames of Broker:MaxFrameBytes ({MaxFrameBytes}), or a member could be closed for the second message of a burst.";
        }

        if (MaxRoomsPerConnection < 1)
        {
            yield return "Broker:MaxRoomsPerConnection must be at least 1.";
        }

        if (MaxPublishesInFlight < 1 || MaxPublishBytesInFlight < 1)
        {
            yield return "Broker:MaxPublishesInFlight and MaxPublishBytesInFlight must be at least 1 (MaxPublishesInFlight 1: no pipelining).";
        }

        if (RateLimitPerSecond < 0 || (RateLimitPerSecond > 0 && RateLimitBurst < 1))
        {
            yield return "Broker:RateLimitPerSecond must be 0 (off) or positive, with RateLimitBurst at least 1.";
        }

        if (MaxNameLength < 1)
        {
            yield return "Broker:MaxNameLength must be at least 1.";
        }

        if (CloseTimeout <= TimeSpan.Zero || ClusterCallTimeout <= TimeSpan.Zero || HeartbeatInterval <= TimeSpan.Zero || LeaseInterval <= TimeSpan.Zero)
        {
            yield return "Broker:CloseTimeout, ClusterCallTimeout, HeartbeatInterval and LeaseInterval must be positive.";
        }

        if (LeaseTtl < LeaseInterval + LeaseInterval)
        {
            yield return "Broker:LeaseTtl must be at least twice LeaseInterval, or a healthy front-end may be declared lost.";
        }

        foreach (var problem in Jwt.Validate($"{SectionName}:Jwt"))
        {
            yield return problem;
        }

        if (!string.IsNullOrEmpty(ApiKey) && (ApiKey.Length < MinApiKeyLength || ApiKey.Any(char.IsWhiteSpace)))
        {
            yield return $"Broker:ApiKey must be at least {MinApiKeyLength} characters, without spaces (or unset: loopback callers only).";
        }

        if (IdleTrimInterval < TimeSpan.Zero || IdleTrimConnections < 1)
        {
            yield return "Broker:IdleTrimInterval must not be negative (0 turns it off) and Broker:IdleTrimConnections must be at least 1.";
        }

        foreach (var problem in Warmup.Validate($"{SectionName}:Warmup"))
        {
            yield return problem;
        }

        foreach (var problem in Embedded.Memory.Validate($"{SectionName}:Embedded:Memory"))
        {
            yield return problem;
        }

        if (MaxConnections < 0 || MaxConnectionsPerIp < 0)
        {
            yield return "Broker:MaxConnections and Broker:MaxConnectionsPerIp must be 0 (no cap) or positive.";
        }

        if (HandshakeTimeout <= TimeSpan.Zero || ClientEventLogInterval <= TimeSpan.Zero)
        {
            yield return "Broker:HandshakeTimeout and Broker:ClientEventLogInterval must be positive.";
        }

        foreach (var (name, ns) in Namespaces)
        {
            if (name.Length == 0 || name.Contains('/') || ReservedNamespaceNames.Contains(name))
            {
                yield return $"Broker:Namespaces:{name} is not a valid namespace name (no '/', and not {string.Join(", ", ReservedNamespaceNames)}: those paths are the broker's own).";
            }

            if (ns.History < 0)
            {
                yield return $"Broker:Namespaces:{name}:History must be 0 or more.";
            }

            if (ns.HistoryBytes < 1)
            {
                yield return $"Broker:Namespaces:{name}:HistoryBytes must be at least 1 (History=0 keeps no history).";
            }

            if (ns.Authorize == RoomAuthorization.Proxy && string.IsNullOrEmpty(ns.ProxyUrl))
            {
                yield return $"Broker:Namespaces:{name}:ProxyUrl must be set with Authorize=Proxy: the URL of the application's endpoint that answers who may do what in which room.";
            }
            else if (!string.IsNullOrEmpty(ns.ProxyUrl) && ns.ProxyUri is null)
            {
                yield return $"Broker:Namespaces:{name}:ProxyUrl (\"{ns.ProxyUrl}\") must be an absolute http:// or https:// URL.";
            }

            if (ns.ProxyTimeout <= TimeSpan.Zero)
            {
                yield return $"Broker:Namespaces:{name}:ProxyTimeout must be positive.";
            }

            if (!Enum.IsDefined(ns.Authorize))
            {
                yield return $"Broker:Namespaces:{name}:Authorize must be Open, Token or Proxy.";
            }

            if (ns.EmptyRoomTimeout < TimeSpan.Zero || ns.EmptyRoomTimeout > TimeSpan.FromMinutes(RoomGrainIdleMinutes))
            {
                yield return $"Broker:Namespaces:{name}:EmptyRoomTimeout must be between 0 and {RoomGrainIdleMinutes} minutes (rooms nobody calls go after that anyway).";
            }
        }
    }
}

/// <summary>Per-namespace behaviour (protocol.md "Namespace options").</summary>
public sealed class NamespaceOptions
{
    /// <summary>false removes a namespace that ships by default.</summary>
    public bool Enabled { get; set; } = true;

    public const long DefaultHistoryBytes = RoomPolicy.DefaultHistoryBytes;

    /// <summary>Messages kept per room for history and recovery; 0 keeps none.</summary>
    public int History { get; set; } = 100;

    /// <summary>
    /// Bytes of history kept per room, besides <see cref="History"/> messages: each message counts
    /// as its data plus 128 bytes; the oldest go first (the newest is always kept). Recovery
    /// and history replies never reach further back than the window holds.
    /// </summary>
    public long HistoryBytes { get; set; } = DefaultHistoryBytes;

    /// <summary>
    /// How long a room with no members that still holds history (or msgIds to deduplicate) is
    /// kept after its last call; a room holding nothing is let go at once. With the memory store
    /// its history and epoch go with it (the next join gets a new epoch, recovered:false); with
    /// the Redis store nothing is lost. 0 lets every empty room go at once.
    /// </summary>
    public TimeSpan EmptyRoomTimeout { get; set; } = RoomPolicy.DefaultEmptyRoomTimeout;

    /// <summary>Presence queries and member_joined/member_left events.</summary>
    public bool Presence { get; set; } = true;

    /// <summary>
    /// Rooms also produce every committed message and every member join and leave to their
    /// Orleans stream "broker.{namespace}"/room of the provider "broker", for the application's
    /// own grains (docs/streams.md). Off: the rooms produce nothing and pay one bool check.
    /// </summary>
    public bool Stream { get; set; }

    /// <summary>Clients may publish; when false only the server's HTTP API may (clients get forbidden).</summary>
    public bool ClientPublish { get; set; } = true;

    /// <summary>A client may publish only to rooms it has joined (else not_member).</summary>
    public bool RequireMembership { get; set; } = true;

    /// <summary>
    /// A client may ask for the presence of rooms it has joined only (else not_member, and the
    /// room is not asked: no activation per room name a client makes up). false restores v1.
    /// </summary>
    public bool PresenceRequiresMembership { get; set; } = true;

    /// <summary>
    /// A client may ask for the history of rooms it has joined only (else not_member, and the
    /// room is not asked: no activation per room name a client makes up). false restores v1.
    /// </summary>
    public bool HistoryRequiresMembership { get; set; } = true;

    /// <summary>
    /// Allow ?user=NAME and anonymous ids; when false a connection needs a token (HTTP 401
    /// without one). Unset: on while no token key is configured (development), off once one is
    /// (protocol.md v1.1 "Identity"). Read <see cref="AllowsAnonymous"/>, the resolved value.
    /// </summary>
    public bool? Anonymous { get; set; }

    /// <summary>
    /// Whether this namespace takes ?user=NAME and anonymous ids: <see cref="Anonymous"/> where
    /// configured, else the default resolved at start-up (<see cref="BrokerOptions.ResolveDefaults"/>).
    /// </summary>
    public bool AllowsAnonymous => Anonymous ?? _anonymousByDefault;

    private bool _anonymousByDefault = true;

    internal void ResolveAnonymousDefault(bool tokenKeyConfigured) => _anonymousByDefault = !tokenKeyConfigured;

    public static readonly TimeSpan DefaultProxyTimeout = TimeSpan.FromSeconds(2);

    /// <summary>
    /// Who decides what a client may do in which room (protocol.md v1.1 "Authorization"):
    /// <see cref="RoomAuthorization.Open"/> (v1: anybody connected may do anything the options
    /// allow), <see cref="RoomAuthorization.Token"/> (the token's "rooms" claim), or
    /// <see cref="RoomAuthorization.Proxy"/> (the application, asked over HTTP at <see cref="ProxyUrl"/>).
    /// </summary>
    public RoomAuthorization Authorize { get; set; } = RoomAuthorization.Open;

    /// <summary>With Authorize=Proxy: the absolute http(s) URL the broker POSTs each question to.</summary>
    public string? ProxyUrl { get; set; }

    /// <summary>With Authorize=Proxy: how long the broker waits for an answer before the client gets unavailable.</summary>
    public TimeSpan ProxyTimeout { get; set; } = DefaultProxyTimeout;

    /// <summary>The validated <see cref="ProxyUrl"/> (null unless it is an absolute http or https URL).</summary>
    internal Uri? ProxyUri => Uri.TryCreate(ProxyUrl, UriKind.Absolute, out var uri) && (uri.Scheme == Uri.UriSchemeHttp || uri.Scheme == Uri.UriSchemeHttps) ? uri : null;

    internal RoomPolicy ToRoomPolicy() => new(History, Presence, HistoryBytes, EmptyRoomTimeout, Stream);
}

public sealed class EmbeddedSiloOptions
{
    /// <summary>Silo-to-silo port of the embedded silo (loopback only).</summary>
    public int SiloPort { get; set; } = 11111;

    /// <summary>Gateway port for outside Orleans clients; 0 (default) opens none.</summary>
    public int GatewayPort { get; set; }

    /// <summary>Redis ("HOST:PORT") where the embedded silo's rooms keep epoch, seq and history; unset keeps them in memory.</summary>
    public string? StoreRedis { get; set; }

    /// <summary>Bounds on the memory the embedded silo's activations take (Broker:Embedded:Memory:*).</summary>
    public SiloMemoryOptions Memory { get; set; } = new();
}

/// <summary>
/// Broker:Warmup:* — cluster mode: before it first reports ready (/health/ready, /healthz) and
/// takes clients, a front-end connects to itself on loopback and publishes into rooms of its own,
/// so that the runtime has compiled the hot path before clients arrive (docs/performance.md,
/// "Cold start"). Embedded mode serves at once and does not warm up.
/// </summary>
public sealed class WarmupOptions
{
    public static readonly TimeSpan DefaultTimeout = TimeSpan.FromSeconds(20);

    /// <summary>false: ready as soon as the cluster is reached (the first seconds of traffic then run on code still being compiled).</summary>
    public bool Enabled { get; set; } = true;

    /// <summary>Rooms the warm-up publishes into.</summary>
    public int Rooms { get; set; } = 2;

    /// <summary>Loopback connections per room; each one joins its room and publishes.</summary>
    public int MembersPerRoom { get; set; } = 20;

    /// <summary>Publishes in all (each delivered to every member of its room).</summary>
    public int Publishes { get; set; } = 4000;

    /// <summary>The longest the warm-up runs: no round starts after it (a round still running 10 s later is cut off, with a warning); the front-end is then ready.</summary>
    public TimeSpan Timeout { get; set; } = DefaultTimeout;

    internal IEnumerable<string> Validate(string section)
    {
        if (Rooms < 1 || Rooms > 100)
        {
            yield return $"{section}:Rooms must be between 1 and 100.";
        }

        if (MembersPerRoom < 1 || MembersPerRoom > 500)
        {
            yield return $"{section}:MembersPerRoom must be between 1 and 500.";
        }

        if (Publishes < 1 || Publishes > 1_000_000)
        {
            yield return $"{section}:Publishes must be between 1 and 1000000.";
        }

        if (Timeout <= TimeSpan.Zero)
        {
            yield return $"{section}:Timeout must be positive.";
        }
    }
}

/// <summary>See <see cref="NamespaceOptions.Authorize"/>. Bound case-insensitively ("token", "Token").</summary>
public enum RoomAuthorization
{
    /// <summary>v1: any connected user may join any room (the namespace's other options still apply).</summary>
    Open,

    /// <summary>The token's "rooms" claim grants, per namespace and room pattern, join, publish, presence and history.</summary>
    Token,

    /// <summary>The application decides: the broker POSTs each question to the namespace's ProxyUrl.</summary>
    Proxy,
}

/// <summary>See <see cref="BrokerOptions.SocketTransport"/>.</summary>
public enum SocketTransport
{
    Broker,
    Kestrel,
}

/// <summary>See <see cref="BrokerOptions.WebSocketTransport"/>.</summary>
public enum WebSocketTransport
{
    Pipe,
    AspNetCore,
}
