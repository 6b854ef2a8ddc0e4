using System.Net;
using Broker.Streams;

namespace Broker.Samples.Bot;

/// <summary>
/// The bot silo's settings. It reads the broker silo's own section ("Silo") and switches for
/// what the two share, so one environment (<c>Silo__Redis</c>, <c>Silo__Streams__Provider</c>)
/// configures both; only the defaults of the ports differ, so that both run on one host.
/// </summary>
public sealed class BotOptions
{
    public const string SectionName = "Silo";

    /// <summary>Command-line switches and the settings they set: the broker silo's names.</summary>
    public static readonly Dictionary<string, string> Switches = new(StringComparer.Ordinal)
    {
        ["--redis"] = "Silo:Redis",
        ["--silo-port"] = "Silo:SiloPort",
        ["--gateway-port"] = "Silo:GatewayPort",
        ["--health-port"] = "Silo:HealthPort",
        ["--advertise"] = "Silo:Advertise",
        ["--cluster-id"] = "Silo:ClusterId",
        ["--service-id"] = "Silo:ServiceId",
        ["--streams"] = "Silo:Streams:Provider",
    };

    /// <summary>The broker's membership Redis ("HOST:PORT" or a connection string). Required: it is how the bot finds the cluster.</summary>
    public string? Redis { get; set; }

    /// <summary>Silo-to-silo port.</summary>
    public int SiloPort { get; set; } = 11100;

    /// <summary>Port for Orleans clients; 0 (the default): none, front-ends use the broker silos' gateways.</summary>
    public int GatewayPort { get; set; }

    /// <summary>HTTP port of /health/live and /health/ready (loopback unless Advertise is not).</summary>
    public int HealthPort { get; set; } = 8079;

    /// <summary>The address other silos reach this one at.</summary>
    public string Advertise { get; set; } = IPAddress.Loopback.ToString();

    /// <summary>Must be the broker silos' cluster id.</summary>
    public string ClusterId { get; set; } = "broker";

    /// <summary>Must be the broker silos' service id.</summary>
    public string ServiceId { get; set; } = "broker";

    /// <summary>The rooms' stream provider: the same as on every broker silo.</summary>
    public BrokerStreamOptions Streams { get; set; } = new();

    public IEnumerable<string> Validate()
    {
        if (string.IsNullOrWhiteSpace(Redis))
        {
            yield return "Silo:Redis is required (--redis HOST:PORT): the bot joins the broker's cluster through its Redis.";
        }

        foreach (var (name, port, least) in new[] { ("SiloPort", SiloPort, 1), ("GatewayPort", GatewayPort, 0), ("HealthPort", HealthPort, 1) })
        {
            if (port < least || port > 65535)
            {
                yield return $"Silo:{name} must be a port number ({least}-65535).";
            }
        }

        if (SiloPort == HealthPort || SiloPort == GatewayPort || GatewayPort == HealthPort)
        {
            yield return "Silo:SiloPort, GatewayPort and HealthPort must differ.";
        }

        if (!IPAddress.TryParse(Advertise, out _))
        {
            yield return "Silo:Advertise must be an IP address.";
        }

        if (string.IsNullOrWhiteSpace(ClusterId) || string.IsNullOrWhiteSpace(ServiceId))
        {
            yield return "Silo:ClusterId and Silo:ServiceId must not be empty.";
        }

        foreach (var problem in Streams.Validate())
        {
            yield return $"{SectionName}:{problem}";
        }
    }
}
