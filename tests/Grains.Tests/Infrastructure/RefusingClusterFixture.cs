using Broker.Grains.Hosting;
using Microsoft.Extensions.DependencyInjection;
using Orleans.TestingHost;

namespace Broker.Grains.Tests.Infrastructure;

/// <summary>A one-silo test cluster whose silo is (as far as its activation gate knows) short of memory: it refuses every new room and user.</summary>
public sealed class RefusingClusterFixture : IAsyncLifetime
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
        builder.AddSiloBuilderConfigurator<RefusingSiloConfigurator>();
        Cluster = builder.Build();
        await Cluster.DeployAsync();
    }

    public async Task DisposeAsync()
    {
        await Cluster.StopAllSilosAsync();
        await Cluster.DisposeAsync();
    }

    public sealed class RefusingSiloConfigurator : ISiloConfigurator
    {
        public void Configure(ISiloBuilder siloBuilder)
        {
            siloBuilder.AddBrokerGrains();
            siloBuilder.Services.AddSingleton<IActivationGate>(new ClosedGate());
        }
    }

    private sealed class ClosedGate : IActivationGate
    {
        public bool AdmitsNewActivations => false;
    }
}
