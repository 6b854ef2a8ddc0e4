using Broker.Cluster.Tests.Infrastructure;

namespace Broker.Cluster.Tests;

/// <summary>Adding a front-end or a silo at runtime: the new front-end serves at once; the cluster keeps serving while a silo joins.</summary>
public sealed class ScaleOutTests(ITestOutputHelper output)
{
    [Fact]
    public async Task AddFrontend_AtRuntime_ServesAtOnceWithClientsOnTheOthers()
    {
        await using var cluster = await BrokerCluster.StartAsync(silos: 1, frontends: 2);
        await cluster.GuardAsync(output, async () =>
        {
            var room = Names.Unique("room");
            await using var a = await WsClient.ConnectAsync(cluster.Frontends[0].WsBase, Names.Unique("alice"));
            await using var b = await WsClient.ConnectAsync(cluster.Frontends[1].WsBase, Names.Unique("bob"));
            await a.JoinAsync(room);
            await b.JoinAsync(room);
            await a.PublishAsync(room, "before fe-3");

            var fe3 = await cluster.AddFrontendAsync();
            output.WriteLine($"fe-3 healthy {Ms.Format(fe3.StartupTime)} after start");
            await using var c = await WsClient.ConnectAsync(fe3.WsBase, Names.Unique("carol"));
            Assert.Equal("fe-3", c.Node);

            var joined = await c.JoinAsync(room);
            Assert.Equal(1, joined.GetProperty("seq").GetInt64());
            await a.WaitForMemberEventAsync("member_joined", room, c.User);
            await b.WaitForMemberEventAsync("member_joined", room, c.User);

            await c.PublishAsync(room, "from fe-3");
            await a.WaitForMessageAsync(room, "from fe-3");
            await b.WaitForMessageAsync(room, "from fe-3");
            await b.PublishAsync(room, "to fe-3");
            await c.WaitForMessageAsync(room, "to fe-3");

            Assert.Equal(1, (await a.SendToAsync(c.User, "direct to fe-3")).GetProperty("delivered").GetInt32());
            await c.WaitForAsync(f => f.Type == "direct" && f.DataString == "direct to fe-3");
            Assert.Equal(new[] { a.User, b.User, c.User }.Order(StringComparer.Ordinal), await c.PresentUsersAsync(room));
        });
    }

    [Fact]
    public async Task AddSilo_WhilePublishing_NoErrorsAndEverythingDelivered()
    {
        await using var cluster = await BrokerCluster.StartAsync(silos: 1, frontends: 2);
        await cluster.GuardAsync(output, async () =>
        {
            var room = Names.Unique("room");
            await using var publisher = await WsClient.ConnectAsync(cluster.Frontends[0].WsBase, Names.Unique("alice"));
            await using var subscriber = await WsClient.ConnectAsync(cluster.Frontends[1].WsBase, Names.Unique("bob"));
            await using var joinerA = await WsClient.ConnectAsync(cluster.Frontends[0].WsBase, Names.Unique("carol"));
            await using var joinerB = await WsClient.ConnectAsync(cluster.Frontends[1].WsBase, Names.Unique("dave"));
            await publisher.JoinAsync(room);
            await subscriber.JoinAsync(room);

            var loop = PublishLoop.Start(publisher, room, "p", TimeSpan.FromMilliseconds(50), TimeSpan.FromSeconds(8));

            // Meanwhile new rooms keep being created across both front-ends (new activations may land on the new silo).
            using var stopRooms = new CancellationTokenSource();
            var newRooms = Task.Run(async () =>
            {
                var created = 0;
                while (!stopRooms.IsCancellationRequested)
                {
                    var fresh = Names.Unique("fresh");
                    await joinerA.JoinAsync(fresh);
                    await joinerB.JoinAsync(fresh);
                    await joinerA.PublishAsync(fresh, "hello " + fresh, TimeSpan.FromSeconds(8));
                    await joinerB.WaitForMessageAsync(fresh, "hello " + fresh, TimeSpan.FromSeconds(8));
                    await joinerA.LeaveAsync(fresh);
                    await joinerB.LeaveAsync(fresh);
                    created++;
                }

                return created;
            });

            await loop.WaitUntilAsync(o => o.Count(x => x.IsAck) >= 10, TimeSpan.FromSeconds(10));
            var silo2 = await cluster.AddSiloAsync();
            output.WriteLine($"silo2 active {Ms.Format(silo2.StartupTime)} after start");

            // Keep going for a while with both silos in the cluster.
            var atJoin = loop.Outcomes.Count;
            await loop.WaitUntilAsync(o => o.Count >= atJoin + 40, TimeSpan.FromSeconds(15));
            await stopRooms.CancelAsync();
            var outcomes = await loop.StopAsync();
            var rooms = await newRooms;

            var worst = outcomes.Max(o => o.Latency);
            output.WriteLine($"{outcomes.Count} publishes, worst ack latency {Ms.Format(worst)}; {rooms} new rooms created across front-ends meanwhile");
            Assert.All(outcomes, o => Assert.True(o.IsAck, $"publish {o} was not acked while a silo joined"));
            Assert.True(rooms > 0);

            await subscriber.WaitForMessageAsync(room, outcomes[^1].Data);
            var received = subscriber.Messages(room);
            Assert.Equal(outcomes.Select(o => o.Data), received.Select(m => m.DataString));
            Assert.Equal(Enumerable.Range(1, outcomes.Count).Select(i => (long)i), received.Select(m => m.Seq));
            Assert.Equal(200, await Health.StatusAsync(silo2.Healthz));
        });
    }
}
