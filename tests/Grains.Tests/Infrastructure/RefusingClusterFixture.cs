using Broker.Grains.Hosting;
using Orleans.TestingHost;
using Microsoft.Extensions.DependencyInjection;

namespace Broker.Grains.Tests.Infrastructure;

/// <summary>A one-silo test cluster whose silo is (as far as its activation gate knows) short of memory: it refuses every new room and user.</summary>
public sealed class RefusingClusterFixture() : TestClusterFixture<RefusingClusterFixture.RefusingSiloConfigurator>(silos: 1)
{
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
