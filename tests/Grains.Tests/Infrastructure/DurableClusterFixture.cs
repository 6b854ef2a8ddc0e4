using Broker.Grains.Hosting;
using Broker.Streams;
using Microsoft.Extensions.Configuration;
using Orleans.TestingHost;

namespace Broker.Grains.Tests.Infrastructure;

/// <summary>A one-silo test cluster whose rooms keep their state in a real Redis (the durable configuration).</summary>
public sealed class DurableClusterFixture : IAsyncLifetime
{
    public const string RedisKey = "BrokerTests:StoreRedis";

    public TestCluster Cluster { get; private set; } = null!;

    public RedisServer Redis { get; private set; } = null!;

    public IClusterClient Client => Cluster.Client;

    public async Task InitializeAsync()
    {
        Redis = await RedisServer.StartAsync();
        var builder = new TestClusterBuilder(initialSilosCount: 1)
        {
            PortAllocator = new LowPortAllocator(),
        };
        builder.Options.ConnectionTransport = ConnectionTransportType.TcpSocket;
        builder.ConfigureHostConfiguration(c => c.AddInMemoryCollection(new Dictionary<string, string?> { [RedisKey] = Redis.Endpoint }));
        builder.AddSiloBuilderConfigurator<DurableSiloConfigurator>();
        Cluster = builder.Build();
        await Cluster.DeployAsync();
    }

    public async Task DisposeAsync()
    {
        try
        {
            await Cluster.StopAllSilosAsync();
            await Cluster.DisposeAsync();
        }
        finally
        {
            await Redis.DisposeAsync();
        }
    }

    public sealed class DurableSiloConfigurator : ISiloConfigurator
    {
        public void Configure(ISiloBuilder siloBuilder) =>
            siloBuilder.AddBrokerGrains().UseBrokerRedisRoomStore(siloBuilder.Configuration[RedisKey]!, "tests")
                .AddBrokerStreams(new BrokerStreamOptions());
    }
}

[CollectionDefinition(Name)]
public sealed class DurableClusterCollection : ICollectionFixture<DurableClusterFixture>
{
    public const string Name = "durable-cluster";
}
