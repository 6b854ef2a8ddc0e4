using Broker.Frontend.Tests.Infrastructure;

namespace Broker.Frontend.Tests.Robustness;

public sealed class ShutdownTests
{
    private static readonly TimeSpan Timeout = TimeSpan.FromSeconds(10);

    [Fact]
    public async Task StopAsync_ClientsInRooms_EveryClientGetsClose1012()
    {
        await using var server = await BrokerServer.StartAsync();
        var roomA = BrokerFixture.UniqueRoom("stopA");
        var roomB = BrokerFixture.UniqueRoom("stopB");
        var clients = new List<TestClient>();
        try
        {
            for (var i = 0; i < 5; i++)
            {
                var client = await server.ConnectAsync(i % 2 == 0 ? $"/chat?user=u{i}" : $"/?user=u{i}");
                clients.Add(client);
                await client.JoinAsync(i < 3 ? roomA : roomB);
            }

            // One extra client that is in no room at all.
            clients.Add(await server.ConnectAsync("/notifications"));
            Assert.Equal(clients.Count, server.Node.ConnectionCount);

            var stopping = server.StopAsync();

            foreach (var client in clients)
            {
                Assert.Equal(Frame.ServiceRestart, await client.WaitForCloseAsync(Timeout));
            }

            foreach (var client in clients)
            {
                await client.DisposeAsync();
            }

            await stopping.WaitAsync(Timeout);
            Assert.Equal(0, server.Node.ConnectionCount);
        }
        finally
        {
            foreach (var client in clients)
            {
                await client.DisposeAsync();
            }
        }
    }

    [Fact]
    public async Task StopAsync_MessageQueuedForMember_WrittenBeforeClose1012()
    {
        await using var server = await BrokerServer.StartAsync();
        var room = BrokerFixture.UniqueRoom("stopq");
        await using var alice = await server.ConnectAsync("/chat?user=alice");
        await alice.JoinAsync(room);

        // Bob reads nothing until the server is already shutting down.
        await using var bob = await server.ConnectAsync("/chat?user=bob", autoRead: false);
        await bob.SendAsync(new { type = "join", id = 1, room });
        await alice.WaitForAsync(f => Frame.Is(f, "member_joined") && f.GetProperty("user").GetString() == "bob", Timeout);

        // Carol joins after Bob. A delivery goes to the local members in join order on one
        // thread, writing each frame as it goes: once Carol has her copy, Bob's is queued.
        await using var carol = await server.ConnectAsync("/chat?user=carol");
        await carol.JoinAsync(room);
        await alice.WaitForAsync(f => Frame.Is(f, "member_joined") && f.GetProperty("user").GetString() == "carol", Timeout);

        // The ack and Alice's own copy may come in either order: wait for both.
        await alice.SendAsync(new { type = "publish", id = 2, room, data = "last words" });
        System.Text.Json.JsonElement? ackFrame = null;
        var aliceHasMessage = false;
        while (ackFrame is null || !aliceHasMessage)
        {
            var frame = await alice.NextAsync(Timeout);
            if (Frame.Is(frame, "ack") && Frame.HasId(frame, 2))
            {
                ackFrame = frame;
            }

            aliceHasMessage |= Frame.IsMessageIn(frame, room);
        }

        await carol.WaitForAsync(f => Frame.IsMessageIn(f, room), Timeout);
        var ack = ackFrame.Value;
        var stopping = server.StopAsync();
        bob.StartReading();

        Assert.Equal(Frame.ServiceRestart, await bob.WaitForCloseAsync(Timeout));
        var atBob = await bob.DrainAsync();
        Assert.Equal("welcome", Frame.Type(atBob[0]));
        Assert.Contains(atBob, f => Frame.Is(f, "joined") && Frame.HasId(f, 1));
        var message = Assert.Single(atBob, f => Frame.IsMessageIn(f, room));
        Assert.Equal(ack.GetProperty("seq").GetInt64(), message.GetProperty("seq").GetInt64());
        Assert.Equal("last words", message.GetProperty("data").GetString());

        await alice.DisposeAsync();
        await bob.DisposeAsync();
        await carol.DisposeAsync();
        await stopping.WaitAsync(Timeout);
    }
}
