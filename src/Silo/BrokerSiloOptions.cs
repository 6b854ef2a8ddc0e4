namespace Broker.Silo;

/// <summary>The standalone silo's settings ("Silo" section; also --silo-port and --gateway-port).</summary>
public sealed class BrokerSiloOptions
{
    public const string SectionName = "Silo";

    /// <summary>Silo-to-silo port.</summary>
    public int SiloPort { get; set; } = 11111;

    /// <summary>Port front-ends (Orleans clients) connect to.</summary>
    public int GatewayPort { get; set; } = 30000;

    /// <summary>Orleans cluster id: silos and clients with the same id form one cluster.</summary>
    public string ClusterId { get; set; } = "broker";

    /// <summary>Orleans service id: stable across deployments of the same service.</summary>
    public string ServiceId { get; set; } = "broker";
}
