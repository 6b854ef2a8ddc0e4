namespace Broker.Grains.Hosting;

/// <summary>
/// How a process finds the cluster ("Broker:Cluster" in front-ends, "Silo" switches in silos).
/// With Redis set, silos and front-ends are separate processes that meet through Redis;
/// without it a front-end co-hosts its own silo (embedded mode).
/// </summary>
public sealed class BrokerClusterOptions
{
    public const string DefaultId = "broker";

    /// <summary>Redis for cluster membership: "HOST:PORT" or a full StackExchange.Redis connection string.</summary>
    public string? Redis { get; set; }

    /// <summary>Orleans cluster id: silos and front-ends with the same id form one cluster.</summary>
    public string ClusterId { get; set; } = DefaultId;

    /// <summary>Orleans service id: stable across deployments of the same service.</summary>
    public string ServiceId { get; set; } = DefaultId;
}
