using Broker.Grains.Hosting;
using Orleans.TestingHost;

namespace Broker.Grains.Tests.Infrastructure;

/// <summary>
/// A one-silo test cluster (memory store), for tests that need a room's next activation on the
/// silo of its last one: with two silos Orleans may place it on either.
/// </summary>
public sealed class OneSiloClusterFixture : IAsyncLifetime
{
    public TestCluster Cluster { get; private set; } = null!;

    public IClusterClient Client => Cluster.Client;

    public async Task InitializeAsync()
    {
        var builder = new TestClusterBuilder(initialSilosCount: 1)
        {
            PortAllocator = new LowPortAllocator(),
        };
        builder.Options.ConnectionTransport = ConnectionTransportType.TcpSocket;
        builder.AddSiloBuilderConfigurator<ClusterFixture.BrokerSiloConfigurator>();
        Cluster = builder.Build();
        await Cluster.DeployAsync();
    }

    public async Task DisposeAsync()
    {
        if (Cluster is null)
        {
            return;
        }

        try
        {
            await Cluster.StopAllSilosAsync();
        }
        finally
        {
            await Cluster.DisposeAsync();
        }
    }
}
