using Broker.Grains.Hosting;
using Orleans.TestingHost;

namespace Broker.Grains.Tests.Infrastructure;

/// <summary>
/// One two-silo test cluster (real TCP on loopback, ports 20000-32000) shared by every test of
/// the collection, in the style of dotnet/orleans' DefaultClusterFixture. Tests use unique
/// grain keys, so they never see each other's rooms or users.
/// </summary>
public sealed class ClusterFixture : IAsyncLifetime
{
    public TestCluster Cluster { get; private set; } = null!;

    public IClusterClient Client => Cluster.Client;

    public async Task InitializeAsync()
    {
        var builder = new TestClusterBuilder(initialSilosCount: 2)
        {
            PortAllocator = new LowPortAllocator(),
        };
        builder.Options.ConnectionTransport = ConnectionTransportType.TcpSocket;
        builder.AddSiloBuilderConfigurator<BrokerSiloConfigurator>();
        var cluster = builder.Build();
        await cluster.DeployAsync();
        Cluster = cluster;
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

    public sealed class BrokerSiloConfigurator : ISiloConfigurator
    {
        public void Configure(ISiloBuilder siloBuilder) => siloBuilder.AddBrokerGrains();
    }
}

[CollectionDefinition(Name)]
public sealed class ClusterCollection : ICollectionFixture<ClusterFixture>
{
    public const string Name = "cluster";
}
