namespace Broker.Grains.Tests.Infrastructure;

/// <summary>
/// A one-silo test cluster (memory store), for tests that need a room's next activation on the
/// silo of its last one: with two silos Orleans may place it on either.
/// </summary>
public sealed class OneSiloClusterFixture() : TestClusterFixture<ClusterFixture.BrokerSiloConfigurator>(silos: 1);
