namespace Broker.Silo;

/// <summary>The standalone silo's own log lines (event ids 3000-3099, docs/operations.md "Logs").</summary>
internal static partial class SiloLog
{
    [LoggerMessage(EventId = 3000, Level = LogLevel.Information, Message = "Broker silo starting: {Clustering} clustering, {Store} room store, cluster {ClusterId}, advertised {Advertise}, silo port {SiloPort}, gateway port {GatewayPort}, health port {HealthPort}, dashboard {Dashboard}")]
    public static partial void Starting(ILogger logger, string clustering, string store, string clusterId, string advertise, int siloPort, int gatewayPort, int healthPort, string dashboard);
}
