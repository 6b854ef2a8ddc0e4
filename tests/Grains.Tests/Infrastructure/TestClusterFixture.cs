using Orleans.TestingHost;

namespace Broker.Grains.Tests.Infrastructure;

/// <summary>
/// A test cluster on real TCP on loopback (ports 20000-32000) with <typeparamref name="TSilo"/>
/// configuring each silo, in the style of dotnet/orleans' DefaultClusterFixture. Subclasses name
/// the silo count and the configurator; tests use unique grain keys, so a shared cluster's tests
/// never see each other's rooms or users.
/// </summary>
public abstract class TestClusterFixture<TSilo>(short silos) : IAsyncLifetime
    where TSilo : ISiloConfigurator, new()
{
    public TestCluster Cluster { get; private set; } = null!;

    public IClusterClient Client => Cluster.Client;

    public async Task InitializeAsync()
    {
        var builder = new TestClusterBuilder(silos)
        {
            PortAllocator = new LowPortAllocator(),
        };
        builder.Options.ConnectionTransport = ConnectionTransportType.TcpSocket;
        builder.AddSiloBuilderConfigurator<TSilo>();
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
}
