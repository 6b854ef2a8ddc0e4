using System.Net;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.DependencyInjection.Extensions;
using Microsoft.Extensions.Hosting;
using Broker.Grains.Storage;
using Orleans.Configuration;
using StackExchange.Redis;

namespace Broker.Grains.Hosting;

public static class BrokerSiloExtensions
{
    /// <summary>
    /// How long a cluster call may wait for its answer. Orleans' default (30 s) would let a call
    /// to a dead process hang long after the front-end gave the client "unavailable".
    /// </summary>
    public static readonly TimeSpan ResponseTimeout = TimeSpan.FromSeconds(10);

    /// <summary>
    /// What every silo of the broker needs, whatever process hosts it, including the bounds on
    /// the memory its activations take (<see cref="SiloMemoryOptions"/>; defaults when null).
    /// <paramref name="coalesceDeliveries"/> false sends every room delivery in a call of its own
    /// (<see cref="FrontendLanes"/>; Silo:CoalesceDeliveries).
    /// </summary>
    public static ISiloBuilder AddBrokerGrains(this ISiloBuilder silo, SiloMemoryOptions? memory = null, bool coalesceDeliveries = true)
    {
        memory ??= new SiloMemoryOptions();
        Diagnostics.SiloMetrics.EnsureCreated();
        silo.Services.TryAddSingleton(TimeProvider.System);
        silo.Services.TryAddSingleton(sp => new FrontendLanes(coalesceDeliveries, logger: sp.GetService<Microsoft.Extensions.Logging.ILogger<FrontendLanes>>()));
        // Epochs of rooms that went holding nothing, for their next activation (memory store only).
        silo.Services.TryAddSingleton(sp => new EpochTombstones(sp.GetRequiredService<TimeProvider>()));
        silo.Services.TryAddSingleton<IRoomStore, MemoryRoomStore>();
        silo.Services.TryAddSingleton<IActivationGate>(new MemoryActivationGate(memory));
        silo.Configure<SiloMessagingOptions>(o => o.ResponseTimeout = ResponseTimeout);

        // The strongly consistent grain directory: a silo's death no longer deactivates the rooms
        // on the survivors whose directory entries it held (docs/design.md, "The grain directory").
        // Every silo of a cluster must use the same directory: application silos get it from
        // AddBrokerStreams, which they call as well.
#pragma warning disable ORLEANSEXP003 // Experimental in Orleans 10; measured in docs/design.md.
        silo.AddDistributedGrainDirectory();
#pragma warning restore ORLEANSEXP003

        // No false "Participant check thread has not completed for <uptime>" at start (WatchdogClock).
        WatchdogClock.Use(silo.Services);

        // Grain calls carry the caller's trace context (W3C traceparent in the request context),
        // so a room's commit joins the trace of the publish that caused it. Orleans makes its
        // spans only while a listener samples its source (Microsoft.Orleans.Application).
        silo.AddActivityPropagation();

        // Under memory pressure Orleans deactivates idle activations, least recently used first
        // (rooms with members come back when next called, rebuilt from the front-ends).
        silo.Configure<GrainCollectionOptions>(o =>
        {
            o.EnableActivationSheddingOnMemoryPressure = memory.ShedAbovePercent < 100;
            o.MemoryUsageLimitPercentage = memory.ShedAbovePercent;
            o.MemoryUsageTargetPercentage = memory.ShedToPercent;
            o.MemoryUsagePollingPeriod = SiloMemoryOptions.PollingPeriod;
        });

        // The gateway refuses outside clients' requests (GatewayTooBusyException) past these;
        // the embedded front-end does not pass through a gateway.
        silo.Configure<LoadSheddingOptions>(o =>
        {
            o.LoadSheddingEnabled = memory.GatewayShedAbovePercent < 100 || memory.GatewayCpuShedAbovePercent < 100;
            o.MemoryThreshold = memory.GatewayShedAbovePercent;
            o.CpuThreshold = memory.GatewayCpuShedAbovePercent;
        });
        return silo;
    }

    /// <summary>
    /// How often silos probe each other. Orleans probes every 5 s by default and declares a silo
    /// dead after 3 failed probes: measured here, a SIGKILLed silo was declared dead 15 s later,
    /// and its rooms could not be reached until then. Probing every 2 s brings that to ~6 s.
    /// </summary>
    public static readonly TimeSpan ProbeTimeout = TimeSpan.FromSeconds(2);

    /// <summary>Joins the cluster through Redis (the membership table) and listens on the given ports.</summary>
    public static ISiloBuilder UseBrokerRedisClustering(this ISiloBuilder silo, BrokerClusterOptions cluster, IPAddress advertise, int siloPort, int gatewayPort)
    {
        silo.UseRedisClustering(o =>
        {
            o.ConfigurationOptions = RedisConfiguration(cluster.Redis!);
        });
        silo.Configure<ClusterOptions>(o =>
        {
            o.ClusterId = cluster.ClusterId;
            o.ServiceId = cluster.ServiceId;
        });
        silo.ConfigureEndpoints(advertise, siloPort, gatewayPort, listenOnAnyHostAddress: !IPAddress.IsLoopback(advertise));
        silo.Configure<ClusterMembershipOptions>(o => o.ProbeTimeout = ProbeTimeout);
        return silo;
    }

    /// <summary>
    /// Rooms keep epoch, seq and history in Redis: a publish is acked once committed there, and
    /// survives the silo. Keys are prefixed with the service id.
    /// </summary>
    public static ISiloBuilder UseBrokerRedisRoomStore(this ISiloBuilder silo, string redis, string serviceId)
    {
        var options = new RoomStoreOptions { KeyPrefix = $"broker:{serviceId}:room:" };
        silo.Services.AddSingleton<IRoomStore>(_ => new RedisRoomStore(
            async () => await ConnectionMultiplexer.ConnectAsync(RedisConfiguration(redis)).ConfigureAwait(false),
            options));
        return silo;
    }

    /// <summary>
    /// Parses "HOST:PORT" or a full connection string. A process keeps retrying when Redis is
    /// briefly away instead of failing at start.
    /// </summary>
    public static ConfigurationOptions RedisConfiguration(string redis)
    {
        var options = ConfigurationOptions.Parse(redis);
        options.AbortOnConnectFail = false;
        return options;
    }
}
