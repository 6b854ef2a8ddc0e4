using Broker.Frontend.Commands;
using Broker.Frontend.Connections;
using Broker.Frontend.Diagnostics;
using Broker.Frontend.Options;
using Broker.Frontend.Security;
using Broker.Transport;
using Broker.Grains.Hosting;
using Broker.Streams;
using Broker.Hosting;
using Broker.Telemetry;
using Orleans.Configuration;
using Microsoft.Extensions.Options;

namespace Broker.Frontend.Hosting;

public static partial class BrokerHostingExtensions
{
    public const string DefaultUrls = "http://localhost:8000";

    /// <summary>How often a cluster-mode front-end asks a gateway which silos host which grain types (Orleans: 1 minute).</summary>
    public static readonly TimeSpan ManifestRefreshInterval = TimeSpan.FromSeconds(5);

    /// <summary>Command-line switches and the settings they set.</summary>
    public static readonly Dictionary<string, string> Switches = new(StringComparer.Ordinal)
    {
        ["--redis"] = "Broker:Cluster:Redis",
        ["--cluster-id"] = "Broker:Cluster:ClusterId",
        ["--service-id"] = "Broker:Cluster:ServiceId",
        ["--node-id"] = "Broker:NodeId",
    };

    /// <summary>
    /// Everything a front-end needs. Embedded mode (the default): the process co-hosts a silo
    /// with localhost clustering and in-memory state, so one command runs a complete broker.
    /// </summary>
    public static WebApplicationBuilder AddBrokerFrontend(this WebApplicationBuilder builder)
    {
        if (string.IsNullOrEmpty(builder.Configuration[WebHostDefaults.ServerUrlsKey])
            && string.IsNullOrEmpty(builder.Configuration["ASPNETCORE_HTTP_PORTS"]))
        {
            builder.WebHost.UseUrls(DefaultUrls);
        }

        // The console formatter is Logging:Console:FormatterName (simple by default, json, systemd).
        builder.Services.AddConsoleLogFormat();
        builder.Logging.AddFilter("Orleans", LogLevel.Warning);
        builder.Logging.AddFilter("Polly", LogLevel.Warning);
        builder.Logging.AddFilter("Microsoft.AspNetCore", LogLevel.Warning);

        // Off entirely, not just below Warning: while this category is enabled at any level,
        // ASP.NET Core keeps an Activity and a log scope alive for every request — for the
        // whole life of every WebSocket (~0.3 KB per idle connection, measured by gcdump).
        builder.Logging.AddFilter("Microsoft.AspNetCore.Hosting.Diagnostics", LogLevel.None);
        builder.Logging.AddFilter("Microsoft.Hosting.Lifetime", LogLevel.Information);

        var section = builder.Configuration.GetSection(BrokerOptions.SectionName);
        var inline = section.GetValue(nameof(BrokerOptions.InlineSocketScheduling), BrokerOptions.DefaultInlineSocketScheduling);
        builder.WebHost.UseSockets(o => o.UnsafePreferInlineScheduling = inline);
        ConfigureKestrelLimits(builder, section.GetValue(nameof(BrokerOptions.HandshakeTimeout), BrokerOptions.DefaultHandshakeTimeout));
        var pipe = section.GetValue(nameof(BrokerOptions.WebSocketTransport), WebSocketTransport.Pipe) == WebSocketTransport.Pipe;
        if (pipe && section.GetValue(nameof(BrokerOptions.SocketTransport), SocketTransport.Broker) == SocketTransport.Broker)
        {
            // Registered after Kestrel's socket transport, so Kestrel binds IP endpoints with it.
            builder.Services.AddSingleton<Microsoft.AspNetCore.Connections.IConnectionListenerFactory, BrokerSocketTransportFactory>();
        }
        else if (pipe)
        {
            builder.WebHost.ConfigureKestrel(kestrel => kestrel.ConfigureEndpointDefaults(endpoint =>
            {
                // Resolved at the first connection, not here: the handler needs the cluster client.
                WebSocketUpgrader? transport = null;
                endpoint.Use(next => connection => (transport ??= endpoint.ApplicationServices.GetRequiredService<WebSocketUpgrader>()).OnConnectionAsync(connection, next));
            }));
        }

        builder.Services.AddOptions<BrokerOptions>()
            .Bind(section)
            .ValidateOnStart();
        builder.Services.PostConfigure<BrokerOptions>(options => options.ResolveDefaults());
        builder.Services.AddSingleton<IValidateOptions<BrokerOptions>, BrokerOptionsValidator>();
        builder.Services.AddSingleton<IValidateOptions<BrokerOptions>, TokenKeyValidation>();

        var cluster = section.GetSection("Cluster").Get<BrokerClusterOptions>() ?? new BrokerClusterOptions();
        if (string.IsNullOrEmpty(cluster.Redis))
        {
            var embedded = section.GetSection("Embedded").Get<EmbeddedSiloOptions>() ?? new EmbeddedSiloOptions();
            builder.UseOrleans(silo =>
            {
                silo.UseLocalhostClustering(siloPort: embedded.SiloPort, gatewayPort: embedded.GatewayPort);
                silo.AddBrokerGrains(embedded.Memory);
                // Rooms of namespaces with Stream on produce to the "broker" stream provider (docs/streams.md).
                silo.AddBrokerStreams(new BrokerStreamOptions());
                if (!string.IsNullOrEmpty(embedded.StoreRedis))
                {
                    silo.UseBrokerRedisRoomStore(embedded.StoreRedis, cluster.ServiceId);
                }
            });
            builder.Services.AddSingleton<IClusterReadiness, EmbeddedReadiness>();
        }
        else
        {
            // A pure Orleans client: it finds gateways through Redis and keeps trying until one
            // answers — in the background (ClusterConnector), so that HTTP is served meanwhile.
            var readiness = new GatewayReadiness();
            builder.Services.AddSingleton<IClusterReadiness>(readiness);
            var hostedBefore = ClusterConnector.HostedServices(builder.Services);
            builder.UseOrleansClient(client =>
            {
                client.UseRedisClustering(o => o.ConfigurationOptions = BrokerSiloExtensions.RedisConfiguration(cluster.Redis));
                client.Configure<ClusterOptions>(o =>
                {
                    o.ClusterId = cluster.ClusterId;
                    o.ServiceId = cluster.ServiceId;
                });

                // New silos are used, and dead ones dropped, within seconds rather than a minute.
                client.Configure<GatewayOptions>(o => o.GatewayListRefreshPeriod = TimeSpan.FromSeconds(5));

                // Which silos host which grain types: asked of a gateway every 5 s instead of every
                // minute. A front-end that first reached an application's silo (docs/streams.md)
                // before any broker silo had joined otherwise answered "unavailable" for up to a
                // minute after the broker's silos were there. An unchanged manifest is a small reply.
                client.Configure<TypeManagementOptions>(o => o.TypeMapRefreshInterval = ManifestRefreshInterval);
                client.Configure<ClientMessagingOptions>(o => o.ResponseTimeout = BrokerSiloExtensions.ResponseTimeout);
                client.AddActivityPropagation();
                client.AddClusterConnectionStatusObserver(readiness);
            });
            ClusterConnector.ReplaceClientStart(builder.Services, hostedBefore, readiness);

            // The client warns at every attempt that finds no gateway; ClusterConnector says it once.
            builder.Logging.AddFilter("Orleans.Messaging.GatewayManager", level =>
                level >= LogLevel.Error || (level >= LogLevel.Warning && readiness.Connected.IsCompleted));
        }

        builder.AddBrokerTelemetry("broker-frontend");
        builder.Services.AddSingleton(TimeProvider.System);
        builder.Services.AddSingleton<FrontendNode>();
        builder.Services.AddFrontendHealth();
        builder.Services.AddSingleton<FrontendWarmup>();
        builder.Services.AddHostedService(provider => provider.GetRequiredService<FrontendWarmup>());
        builder.Services.AddHostedService<IdleMemoryTrim>();
        builder.Services.AddSingleton<ConnectionHandler>();
        builder.Services.AddSingleton<CommandDispatcher>();
        builder.Services.AddSingleton<RoomAuthorizer>();
        builder.Services.AddSingleton<RoomProxy>();

        // The authorization proxy's client: no redirects (an answer is the URL's own), no
        // Information line per request, and each question's own deadline (ProxyTimeout).
        builder.Services.AddHttpClient(RoomProxy.HttpClientName, client => client.Timeout = Timeout.InfiniteTimeSpan)
            .ConfigurePrimaryHttpMessageHandler(() => new SocketsHttpHandler { AllowAutoRedirect = false, PooledConnectionLifetime = TimeSpan.FromMinutes(5), MaxConnectionsPerServer = RoomProxy.MaxConnectionsPerServer })
            .RemoveAllLoggers();
        builder.Services.AddSingleton<TokenAuthenticator>();
        builder.Services.AddHostedService<UnverifiedIdentityWarning>();
        builder.Services.AddSingleton<ClientEventLog>();
        builder.Services.AddHostedService(services => services.GetRequiredService<ClientEventLog>());
        builder.Services.AddSingleton<ConnectionLimits>();
        builder.Services.AddSingleton<ServerApiGuard>();
        builder.Services.AddSingleton<ClusterInfo>();
        builder.Services.AddServerApiDocument();

        // Numbers are numbers: the web default also reads them from strings, and the OpenAPI
        // document would then say "integer or string" for every count and seq.
        builder.Services.ConfigureHttpJsonOptions(json => json.SerializerOptions.NumberHandling = System.Text.Json.Serialization.JsonNumberHandling.Strict);
        builder.Services.AddSingleton<IUpgradeAdmission, BrokerUpgradeAdmission>();
        builder.Services.AddSingleton(services => new WebSocketUpgrader(
            BrokerUpgradeAdmission.UpgradeOptions(
                services.GetRequiredService<IOptions<BrokerOptions>>().Value,
                services.GetRequiredService<IOptions<Microsoft.AspNetCore.Server.Kestrel.Core.KestrelServerOptions>>().Value.Limits),
            services.GetRequiredService<IUpgradeAdmission>()));
        builder.Services.AddHostedService<FrontendHeartbeat>();
        builder.Services.AddHostedService<ConnectionDrainService>();
        builder.Services.AddHostedService<StartupLog>();
        return builder;
    }

    /// <summary>
    /// Kestrel's limits from configuration (Kestrel:Limits:*, e.g. MaxConcurrentConnections,
    /// which the host does not bind by itself), and Kestrel's own waits for a request — for
    /// the first bytes (KeepAliveTimeout, also between requests) and for the rest of the head
    /// (RequestHeadersTimeout) — set to the handshake timeout unless configured there, so that
    /// no connection, HTTP or upgrade, on any transport, sits for Kestrel's defaults (130 s
    /// and 30 s, back to back).
    /// </summary>
    private static void ConfigureKestrelLimits(WebApplicationBuilder builder, TimeSpan handshakeTimeout)
    {
        var limits = builder.Configuration.GetSection("Kestrel:Limits");
        builder.WebHost.ConfigureKestrel(kestrel =>
        {
            limits.Bind(kestrel.Limits);
            if (handshakeTimeout <= TimeSpan.Zero)
            {
                // Invalid: the options validation says so at start.
                return;
            }

            if (limits[nameof(kestrel.Limits.RequestHeadersTimeout)] is null)
            {
                kestrel.Limits.RequestHeadersTimeout = handshakeTimeout;
            }

            if (limits[nameof(kestrel.Limits.KeepAliveTimeout)] is null)
            {
                kestrel.Limits.KeepAliveTimeout = handshakeTimeout;
            }
        });
    }

    private sealed class BrokerOptionsValidator : IValidateOptions<BrokerOptions>
    {
        public ValidateOptionsResult Validate(string? name, BrokerOptions options)
        {
            var failures = options.Validate().ToList();
            return failures.Count == 0 ? ValidateOptionsResult.Success : ValidateOptionsResult.Fail(failures);
        }
    }

    private sealed partial class StartupLog(FrontendNode node, IOptions<BrokerOptions> options, ILogger<StartupLog> logger) : IHostedService
    {
        public Task StartAsync(CancellationToken cancellationToken)
        {
            var o = options.Value;
            var namespaces = string.Join(", ", o.Namespaces.Where(n => n.Value.Enabled).Select(n => (n.Key == "default" ? "/ (default)" : "/" + n.Key) + (n.Value.Stream ? " (stream)" : string.Empty)));
            if (string.IsNullOrEmpty(o.Cluster.Redis))
            {
                LogStartedEmbedded(logger, node.Id, o.Embedded.SiloPort, namespaces);
            }
            else
            {
                LogStartedCluster(logger, node.Id, o.Cluster.Redis, o.Cluster.ClusterId, namespaces);
            }

            return Task.CompletedTask;
        }

        public Task StopAsync(CancellationToken cancellationToken) => Task.CompletedTask;

        [LoggerMessage(EventId = 1000, Level = LogLevel.Information, Message = "Broker front-end {NodeId} started in embedded mode (co-hosted silo on port {SiloPort}); namespaces: {Namespaces}")]
        private static partial void LogStartedEmbedded(ILogger logger, string nodeId, int siloPort, string namespaces);

        [LoggerMessage(EventId = 1001, Level = LogLevel.Information, Message = "Broker front-end {NodeId} started in cluster mode (Redis {Redis}, cluster {ClusterId}); namespaces: {Namespaces}")]
        private static partial void LogStartedCluster(ILogger logger, string nodeId, string redis, string clusterId, string namespaces);
    }
}
