namespace Broker.Silo;

/// <summary>The standalone silo's own log lines (event ids 3000-3109, docs/operations.md "Logs").</summary>
internal static partial class SiloLog
{
    [LoggerMessage(EventId = 3000, Level = LogLevel.Information, Message = "Broker silo starting: {Clustering} clustering, {Store} room store, cluster {ClusterId}, advertised {Advertise}, silo port {SiloPort}, gateway port {GatewayPort}, health port {HealthPort}, dashboard {Dashboard}")]
    public static partial void Starting(ILogger logger, string clustering, string store, string clusterId, string advertise, int siloPort, int gatewayPort, int healthPort, string dashboard);

    // 3100-3109: the rooms' stream provider (docs/streams.md, "Providers").
    [LoggerMessage(EventId = 3100, Level = LogLevel.Information, Message = "Room streams: provider {Provider}, {Queues} queues, {Subscriptions} subscriptions")]
    public static partial void Streams(ILogger logger, string provider, int queues, string subscriptions);
}
