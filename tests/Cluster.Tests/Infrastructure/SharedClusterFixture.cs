namespace Broker.Cluster.Tests.Infrastructure;

/// <summary>
/// One cluster for the tests that change nothing in it: redis, 2 silos, 2 front-ends (fe-1,
/// fe-2) and nginx round-robining over them. Tests use their own room and user names.
/// </summary>
public sealed class SharedClusterFixture : IAsyncLifetime
{
    public BrokerCluster Cluster { get; private set; } = null!;

    public async Task InitializeAsync() => Cluster = await BrokerCluster.StartAsync(silos: 2, frontends: 2, nginx: true);

    public async Task DisposeAsync()
    {
        if (Cluster is not null)
        {
            await Cluster.DisposeAsync();
        }
    }
}

[CollectionDefinition(Name)]
public sealed class SharedClusterCollection : ICollectionFixture<SharedClusterFixture>
{
    public const string Name = "Shared cluster";
}
