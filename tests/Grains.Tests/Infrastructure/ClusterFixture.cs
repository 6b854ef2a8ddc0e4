using Broker.Grains.Hosting;
using Orleans.TestingHost;

namespace Broker.Grains.Tests.Infrastructure;

/// <summary>
/// One two-silo test cluster (real TCP on loopback, ports 20000-32000) shared by every test of
/// the collection, in the style of dotnet/orleans' DefaultClusterFixture. Tests use unique
/// grain keys, so they never see each other's rooms or users.
/// </summary>
public sealed class ClusterFixture() : TestClusterFixture<ClusterFixture.BrokerSiloConfigurator>(silos: 2)
{
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
