using System.Net;
using Broker.Grains.Hosting;
using Broker.Streams;

namespace Broker.Silo;

/// <summary>The standalone silo's settings: the "Silo" section, or the switches in <see cref="Switches"/>.</summary>
public sealed class SiloHostOptions
{
    public const string SectionName = "Silo";

    /// <summary>Command-line switches and the settings they set.</summary>
    public static readonly Dictionary<string, string> Switches = new(StringComparer.Ordinal)
    {
        ["--redis"] = "Silo:Redis",
        ["--silo-port"] = "Silo:SiloPort",
        ["--gateway-port"] = "Silo:GatewayPort",
        ["--health-port"] = "Silo:HealthPort",
        ["--advertise"] = "Silo:Advertise",
        ["--cluster-id"] = "Silo:ClusterId",
        ["--service-id"] = "Silo:ServiceId",
        ["--store"] = "Silo:Store",
        ["--store-redis"] = "Silo:StoreRedis",
        ["--dashboard-port"] = "Silo:DashboardPort",
        ["--streams"] = "Silo:Streams:Provider",
    };

    /// <summary>Redis for cluster membership ("HOST:PORT" or a connection string); unset: a one-silo localhost cluster.</summary>
    public string? Redis { get; set; }

    /// <summary>Silo-to-silo port.</summary>
    public int SiloPort { get; set; } = 11111;

    /// <summary>Port front-ends (Orleans clients) connect to.</summary>
    public int GatewayPort { get; set; } = 30000;

    /// <summary>HTTP port of /healthz (loopback unless Advertise is not loopback).</summary>
    public int HealthPort { get; set; } = 8081;

    /// <summary>HTTP port of the Orleans Dashboard (bound like HealthPort); unset (the default): no dashboard.</summary>
    public int? DashboardPort { get; set; }

    /// <summary>The address other silos and front-ends reach this one at.</summary>
    public string Advertise { get; set; } = IPAddress.Loopback.ToString();

    public string ClusterId { get; set; } = BrokerClusterOptions.DefaultId;

    public string ServiceId { get; set; } = BrokerClusterOptions.DefaultId;

    /// <summary>Where rooms keep epoch, seq and history: "memory" (lost with the silo) or "redis" (durable acks).</summary>
    public string Store { get; set; } = "memory";

    /// <summary>Redis for the room store when it is not the membership Redis.</summary>
    public string? StoreRedis { get; set; }

    /// <summary>
    /// Whether room deliveries bound for one front-end share calls when they are due together
    /// (docs/design.md, "One call per front-end"). Default on; off sends each room's delivery in
    /// a call of its own, as versions before it did. Front-ends of those versions are detected
    /// and sent single deliveries either way (docs/operations.md, "Rolling upgrades").
    /// </summary>
    public bool CoalesceDeliveries { get; set; } = true;

    /// <summary>Bounds on the memory activations take ("Silo:Memory:*"): shedding, refusing new activations, gateway load shedding.</summary>
    public SiloMemoryOptions Memory { get; set; } = new();

    /// <summary>The rooms' stream provider ("Silo:Streams:*", docs/streams.md): the same on every silo of the cluster.</summary>
    public BrokerStreamOptions Streams { get; set; } = new();

    public IEnumerable<string> Validate()
    {
        foreach (var (name, port) in new[] { ("SiloPort", SiloPort), ("GatewayPort", GatewayPort), ("HealthPort", HealthPort) })
        {
            if (port is < 1 or > 65535)
            {
                yield return $"Silo:{name} must be a port number (1-65535).";
            }
        }

        if (DashboardPort is { } dashboard)
        {
            if (dashboard is < 1 or > 32767)
            {
                yield return "Silo:DashboardPort must be a port number (1-32767).";
            }
            else if (dashboard == SiloPort || dashboard == GatewayPort || dashboard == HealthPort)
            {
                yield return "Silo:DashboardPort must differ from SiloPort, GatewayPort and HealthPort.";
            }
        }

        if (Store is not ("memory" or "redis"))
        {
            yield return "Silo:Store must be \"memory\" or \"redis\".";
        }

        if (Store == "redis" && string.IsNullOrEmpty(StoreRedis) && string.IsNullOrEmpty(Redis))
        {
            yield return "Silo:Store=redis needs --redis or --store-redis.";
        }

        if (!IPAddress.TryParse(Advertise, out _))
        {
            yield return "Silo:Advertise must be an IP address.";
        }

        foreach (var problem in Memory.Validate($"{SectionName}:Memory"))
        {
            yield return problem;
        }

        foreach (var problem in Streams.Validate())
        {
            yield return $"{SectionName}:{problem}";
        }
    }
}
