using Broker.Cluster.Tests.Infrastructure;
using Broker.Grains;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Logging;
using Orleans;
using Orleans.Configuration;
using Orleans.Hosting;
using StackExchange.Redis;

namespace Broker.Cluster.Tests;

/// <summary>
/// BrokerServerApi from an application's own process: an Orleans client (this test process)
/// that finds the cluster through Redis like the front-ends do, speaking into a room and to a
/// user whose WebSocket clients are on two front-end processes, through silo processes.
/// </summary>
[Collection(SharedClusterCollection.Name)]
public sealed class ServerApiOrleansClientTests(SharedClusterFixture fixture, ITestOutputHelper output) : IAsyncLifetime
{
    private IHost? _application;

    private IClusterClient Grains => _application!.Services.GetRequiredService<IClusterClient>();

    public async Task InitializeAsync()
    {
        _application = new HostBuilder()
            .UseOrleansClient(client =>
            {
                client.UseRedisClustering(o => o.ConfigurationOptions = ConfigurationOptions.Parse(fixture.Cluster.Redis.Endpoint));
                client.Configure<ClusterOptions>(o =>
                {
                    // The broker's defaults (Broker:Cluster:ClusterId / ServiceId, the silos' --cluster-id / --service-id).
                    o.ClusterId = "broker";
                    o.ServiceId = "broker";
                });
            })
            .ConfigureLogging(logging => logging.SetMinimumLevel(LogLevel.Warning))
            .Build();
        using var timeout = new CancellationTokenSource(TimeSpan.FromSeconds(30));
        await _application.StartAsync(timeout.Token);
    }

    public async Task DisposeAsync()
    {
        if (_application is not null)
        {
            await _application.StopAsync();
            _application.Dispose();
        }
    }

    [Fact]
    public Task PublishAndSend_FromAnOrleansClientProcess_ReachClientsOnBothFrontends_OnceEach() => fixture.Cluster.GuardAsync(output, async () =>
    {
        var (fe1, fe2) = (fixture.Cluster.Frontends[0], fixture.Cluster.Frontends[1]);
        var room = Names.Unique("inbound");
        var user = Names.Unique("inbound-user");
        await using var onFirst = await WsClient.ConnectAsync(fe1.WsBase, user);
        await using var onSecond = await WsClient.ConnectAsync(fe2.WsBase, user);
        var joined = await onFirst.JoinAsync(room);
        await onSecond.JoinAsync(room);

        var first = await Grains.PublishToRoomAsync("chat", room, "server:cluster-app", "\"one\"", "k-1").WaitAsync(WsClient.DefaultTimeout);
        var retry = await Grains.PublishToRoomAsync("chat", room, "server:cluster-app", "\"one, again\"", "k-1").WaitAsync(WsClient.DefaultTimeout);
        var second = await Grains.PublishToRoomAsync("chat", room, "server:cluster-app", "\"two\"").WaitAsync(WsClient.DefaultTimeout);
        var delivered = await Grains.SendToUserAsync("chat", user, "server:cluster-app", "{\"note\":\"hi\"}").WaitAsync(WsClient.DefaultTimeout);
        var nobody = await Grains.SendToUserAsync("chat", Names.Unique("nobody"), "server:cluster-app", "{}").WaitAsync(WsClient.DefaultTimeout);

        Assert.Equal((1L, false), (first.Seq, first.Duplicate));
        Assert.Equal((1L, true), (retry.Seq, retry.Duplicate));
        Assert.Equal(2L, second.Seq);
        Assert.Equal(joined.GetProperty("epoch").GetString(), first.Epoch);
        Assert.Equal(2, delivered);
        Assert.Equal(0, nobody);
        foreach (var client in new[] { onFirst, onSecond })
        {
            await client.WaitForMessageAsync(room, "two");
            var direct = await client.WaitForAsync(f => f.Type == "direct", what: "the direct message");
            var messages = client.Messages(room);
            Assert.Equal(["one", "two"], messages.Select(m => m.Json.GetProperty("data").GetString()));
            Assert.Equal([1L, 2L], messages.Select(m => m.Json.GetProperty("seq").GetInt64()));
            Assert.All(messages, m => Assert.Equal("server:cluster-app", m.Json.GetProperty("from").GetString()));
            Assert.All(messages, m => Assert.Equal(first.Epoch, m.Json.GetProperty("epoch").GetString()));
            Assert.Equal("server:cluster-app", direct.Json.GetProperty("from").GetString());
            Assert.Equal("hi", direct.Json.GetProperty("data").GetProperty("note").GetString());
        }

        output.WriteLine($"{fe1.NodeId} and {fe2.NodeId} each received seq 1 and 2 from server:cluster-app, and the direct message.");
    });
}
