using Broker.Grains.Tests.Infrastructure;

namespace Broker.Grains.Tests;

[Collection(ClusterCollection.Name)]
public sealed class ClusterTests(ClusterFixture fixture)
{
    [Fact]
    public void Cluster_ListeningPorts_StayBelowEphemeralRange()
    {
        var silos = fixture.Cluster.GetActiveSilos().ToList();

        Assert.NotEmpty(silos);
        foreach (var silo in silos)
        {
            Assert.InRange(silo.SiloAddress.Endpoint.Port, LowPortAllocator.MinPort, LowPortAllocator.MaxPort);
            if (silo.GatewayAddress is { } gateway)
            {
                Assert.InRange(gateway.Endpoint.Port, LowPortAllocator.MinPort, LowPortAllocator.MaxPort);
            }
        }
    }
}
