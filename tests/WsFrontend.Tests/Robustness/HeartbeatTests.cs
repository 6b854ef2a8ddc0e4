using Broker.Frontend.Tests.Infrastructure;
using Broker.Grains;

namespace Broker.Frontend.Tests.Robustness;

/// <summary>
/// The routine restatement (every HeartbeatInterval, spread over half of it): a room that lost
/// track of members the front-end still holds takes them back, and a connection that closed
/// before its slice of the restatement left is not restated.
/// </summary>
public sealed class HeartbeatTests
{
    [Fact]
    public async Task RoutineRestate_RoomThatForgotItsMembers_TakesThemBack()
    {
        await using var server = await StartAsync();
        var room = BrokerFixture.UniqueRoom("restate");
        await using var kept = await server.ConnectAsync("/chat?user=kept");
        await using var watcher = await server.ConnectAsync("/chat?user=watcher");
        await kept.JoinAsync(room);
        await watcher.JoinAsync(room);

        // History keeps the room active once it has no members (an empty room holding nothing
        // is let go at once, and a new activation would ask the front-end for its members).
        await kept.PublishAsync(room, "before");

        // The room forgets this front-end's members behind its back, as when it was declared
        // lost while it lived. (A Leave would not do: the room then skips the connection in
        // restatements, which may have been listed before it left.)
        var grain = server.Services.GetRequiredService<IGrainFactory>().GetGrain<IRoomGrain>(GrainKeys.Of("chat", room));
        await grain.FrontendLost(server.Services.GetRequiredService<Connections.FrontendNode>().Id);
        await Eventually.WaitUntilAsync(async () => (await grain.GetPresence()).IsEmpty, TimeSpan.FromSeconds(5), "the room forgot its members");

        // The next routine restatement puts them back, and deliveries flow again.
        await Eventually.WaitUntilAsync(async () => (await grain.GetPresence()).Length == 2, TimeSpan.FromSeconds(15), "the restatement brought the members back");
        await kept.PublishAsync(room, "after the restatement");
        await watcher.WaitForAsync(f => Frame.Is(f, "message") && f.GetProperty("data").GetString() == "after the restatement");
        var presence = await watcher.RequestAsync(new Dictionary<string, object?> { ["type"] = "presence", ["room"] = room });
        var users = presence.GetProperty("members").EnumerateArray().Select(m => m.GetProperty("user").GetString()).Order().ToList();
        Assert.Equal(["kept", "watcher"], users);
    }

    [Fact]
    public async Task RoutineRestate_ConnectionClosedBeforeItsSlice_NotRestated()
    {
        await using var server = await StartAsync();
        var room = BrokerFixture.UniqueRoom("restate-closed");
        await using var watcher = await server.ConnectAsync("/chat?user=watcher");
        await watcher.JoinAsync(room);
        var heartbeat = server.Services.GetServices<IHostedService>().OfType<Hosting.FrontendHeartbeat>().Single();

        // Many rooms ahead of this one, so that its slice leaves seconds after the restatement began.
        var fillers = new List<TestClient>();
        try
        {
            var filler = await server.ConnectAsync("/chat?user=filler");
            fillers.Add(filler);
            for (var i = 0; i < 60; i++)
            {
                await filler.JoinAsync($"a-filler-{i}-{Guid.NewGuid():N}");
            }

            var leaver = await server.ConnectAsync("/chat?user=leaver");
            await leaver.JoinAsync(room);
            var beat = heartbeat.BeatAsync(TimeSpan.FromSeconds(3));

            // Gone while the restatement is under way: the room hears member_left once, for good.
            await leaver.DisposeAsync();
            await watcher.WaitForAsync(f => Frame.Is(f, "member_left") && f.GetProperty("user").GetString() == "leaver");
            Assert.True(await beat, "The restatement did not land.");
            var presence = await watcher.RequestAsync(new Dictionary<string, object?> { ["type"] = "presence", ["room"] = room });
            var users = presence.GetProperty("members").EnumerateArray().Select(m => m.GetProperty("user").GetString()).ToList();
            Assert.Equal(["watcher"], users);
        }
        finally
        {
            foreach (var filler in fillers)
            {
                await filler.DisposeAsync();
            }
        }
    }

    /// <summary>A broker whose routine restatement comes every 2 s, spread over 1 s.</summary>
    private static Task<BrokerServer> StartAsync() =>
        BrokerServer.StartAsync(new Dictionary<string, string?> { ["Broker:HeartbeatInterval"] = "00:00:02" });
}
