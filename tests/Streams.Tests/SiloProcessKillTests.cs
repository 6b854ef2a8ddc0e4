using Broker.Streams.Tests.Infrastructure;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Hosting;
using Orleans.Configuration;
using Orleans.Hosting;
using StackExchange.Redis;

namespace Broker.Streams.Tests;

/// <summary>
/// What a SIGKILLed silo process does to stream delivery with the memory provider
/// (docs/streams.md, "When a silo fails"): two src/Silo processes joined through a real Redis
/// (explicit subscriptions kept there), this test as an Orleans client that subscribes
/// explicitly to 16 room streams and produces numbered items to them; one silo is SIGKILLed.
/// </summary>
public sealed class SiloProcessKillTests(ITestOutputHelper output)
{
    [Fact]
    public async Task Memory_SiloProcessSigkilled_LaterItemsArrive()
    {
        var (redis, endpoint) = await Processes.StartRedisAsync();
        await using var redisProcess = redis;
        var clusterId = $"streams-{Guid.NewGuid():N}"[..16];
        await using var silo1 = await Processes.StartSiloAsync(endpoint, clusterId);
        await using var silo2 = await Processes.StartSiloAsync(endpoint, clusterId);
        Assert.Contains("Room streams: provider memory, 8 queues, any subscriptions", silo1.Output(), StringComparison.Ordinal);

        using var host = new HostBuilder()
            .UseOrleansClient(client =>
            {
                client.UseRedisClustering(o => o.ConfigurationOptions = ConfigurationOptions.Parse(endpoint));
                client.Configure<ClusterOptions>(o =>
                {
                    o.ClusterId = clusterId;
                    o.ServiceId = clusterId;
                });
                // As the broker's front-ends and silos (BrokerSiloExtensions.ResponseTimeout): a
                // produce to a queue grain on the dead silo fails after 10 s, not Orleans' 30 s.
                client.Configure<GatewayOptions>(o => o.GatewayListRefreshPeriod = TimeSpan.FromSeconds(5));
                client.Configure<ClientMessagingOptions>(o => o.ResponseTimeout = TimeSpan.FromSeconds(10));
                client.AddBrokerStreams(new BrokerStreamOptions());
            })
            .Build();
        await host.StartAsync();
        try
        {
            var client = host.Services.GetRequiredService<IClusterClient>();
            var report = await SiloFailureTests.KillDuringDeliveryAsync(client, silo2.KillAsync, output, subscribeExplicitly: true);
            Assert.Equal(0, report.Reordered);
            Assert.Equal(0, report.Duplicates);
        }
        finally
        {
            using var stop = new CancellationTokenSource(TimeSpan.FromSeconds(10));
            await host.StopAsync(stop.Token);
        }
    }
}
