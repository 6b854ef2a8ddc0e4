using Broker.Frontend.Tests.Infrastructure;
using Broker.Grains;

namespace Broker.Frontend.Tests.Robustness;

/// <summary>
/// The routine restatement (every HeartbeatInterval, spread over half of it): a room that lost
/// track of a member the front-end still holds takes it back, and a connection that closed
/// before its slice of the restatement left is not restated.
/// </summary>
public sealed class HeartbeatTests
{
    [Fact]
    public async Task RoutineRestate_RoomThatForgotAMember_TakesItBack()
    {
        await using var server = await StartAsync();
        var room = BrokerFixture.UniqueRoom("restate");
        await using var kept = await server.ConnectAsync("/chat?user=kept");
        await using var watcher = await server.ConnectAsync("/chat?user=watcher");
        await kept.JoinAsync(room);
        await watcher.JoinAsync(room);

        // The room forgets "kept" behind the front-end's back (as a lost activation would).
        var grain = server.Services.GetRequiredService<IGrainFactory>().GetGrain<IRoomGrain>(GrainKeys.Of("chat", room));
        await grain.Leave(kept.ConnectionId);
        await watcher.WaitForAsync(f => Frame.Is(f, "member_left") && f.GetProperty("user").GetString() == "kept");

        // The next routine restatement puts it back; the others see it join again.
        await watcher.WaitForAsync(f => Frame.Is(f, "member_joined") && f.GetProperty("user").GetString() == "kept", TimeSpan.FromSeconds(15));
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
