using Broker.Grains.Hosting;

namespace Broker.Grains.Tests;

public sealed class MemoryActivationGateTests
{
    [Fact]
    public void AdmitsNewActivations_UsageAboveThreshold_Refuses()
    {
        var gate = new MemoryActivationGate(new SiloMemoryOptions { RefuseActivationsAbovePercent = 0.000001 });

        Assert.False(gate.AdmitsNewActivations);
    }

    [Fact]
    public void AdmitsNewActivations_ThresholdAtHundred_Admits()
    {
        var gate = new MemoryActivationGate(new SiloMemoryOptions { RefuseActivationsAbovePercent = 100 });

        Assert.True(gate.AdmitsNewActivations);
    }
}
