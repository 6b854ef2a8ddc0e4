using Broker.Grains.Tests.Infrastructure;
using System.Globalization;
using Microsoft.Extensions.Configuration;
using Orleans.Configuration;
using Orleans.Hosting;
using Orleans.TestingHost;

namespace Broker.Streams.Tests.Infrastructure;

/// <summary>
/// A test cluster of in-process silos (real TCP on loopback) with the rooms' stream provider as
/// <see cref="BrokerStreamHosting.AddBrokerStreams(ISiloBuilder, BrokerStreamOptions, string?)"/>
/// configures it on the broker's silos, and a client configured the same way.
/// </summary>
public static class StreamCluster
{
    private const string Section = "BrokerStreamsTest";

    public static async Task<TestCluster> StartAsync(BrokerStreamOptions options, int silos)
    {
        Assert.Empty(options.Validate());
        var builder = new TestClusterBuilder((short)silos) { PortAllocator = new LowPortAllocator() };
        builder.Options.ConnectionTransport = ConnectionTransportType.TcpSocket;
        builder.ConfigureHostConfiguration(c => c.AddInMemoryCollection(new Dictionary<string, string?>
        {
            [$"{Section}:Provider"] = options.Provider,
            [$"{Section}:Queues"] = options.Queues.ToString(CultureInfo.InvariantCulture),
            [$"{Section}:Subscriptions"] = options.Subscriptions,
        }));
        builder.AddSiloBuilderConfigurator<SiloConfigurator>();
        builder.AddClientBuilderConfigurator<ClientConfigurator>();
        var cluster = builder.Build();
        await cluster.DeployAsync();
        return cluster;
    }

    private static BrokerStreamOptions Read(IConfiguration configuration) => new()
    {
        Provider = configuration[$"{Section}:Provider"]!,
        Queues = int.Parse(configuration[$"{Section}:Queues"]!, CultureInfo.InvariantCulture),
        Subscriptions = configuration[$"{Section}:Subscriptions"]!,
    };

    public sealed class SiloConfigurator : ISiloConfigurator
    {
        public void Configure(ISiloBuilder siloBuilder)
        {
            siloBuilder.AddBrokerStreams(Read(siloBuilder.Configuration));

            // As the broker's silos probe (BrokerSiloExtensions.ProbeTimeout): a killed silo is
            // declared dead in ~6 s rather than Orleans' default ~15 s.
            siloBuilder.Configure<ClusterMembershipOptions>(o => o.ProbeTimeout = TimeSpan.FromSeconds(2));
        }
    }

    public sealed class ClientConfigurator : IClientBuilderConfigurator
    {
        public void Configure(IConfiguration configuration, IClientBuilder clientBuilder) =>
            clientBuilder.AddBrokerStreams(Read(configuration));
    }
}
