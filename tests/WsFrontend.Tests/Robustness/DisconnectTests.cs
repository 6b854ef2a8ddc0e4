using Broker.Frontend.Tests.Infrastructure;

namespace Broker.Frontend.Tests.Robustness;

[Collection(BrokerCollection.Name)]
public sealed class DisconnectTests(BrokerFixture fixture)
{
    private static readonly TimeSpan Timeout = TimeSpan.FromSeconds(10);

    [Fact]
    public async Task Abort_MemberSocket_OthersSeeMemberLeftAndPresenceDropsIt()
    {
        var room = BrokerFixture.UniqueRoom("abort");
        var alice = $"alice-{Guid.NewGuid():N}"[..14];
        var bob = $"bob-{Guid.NewGuid():N}"[..12];
        await using var aliceClient = await fixture.Server.ConnectAsync($"/chat?user={alice}");
        await using var bobClient = await fixture.Server.ConnectAsync($"/chat?user={bob}");
        await aliceClient.JoinAsync(room);
        await bobClient.JoinAsync(room);
        await aliceClient.WaitForAsync(f => Frame.Is(f, "member_joined") && f.GetProperty("user").GetString() == bob, Timeout);
        Assert.Contains(await PresentUsersAsync(aliceClient, room), u => u == bob);

        bobClient.Socket.Abort();

        var left = await aliceClient.WaitForAsync(f => Frame.Is(f, "member_left"), Timeout);
        Assert.Equal(bob, left.GetProperty("user").GetString());
        Assert.Equal(room, left.GetProperty("room").GetString());
        Assert.Equal([alice], await PresentUsersAsync(aliceClient, room));

        // The room still works for the one who stayed.
        Assert.Equal("ack", Frame.Type(await aliceClient.PublishAsync(room, "still here")));
    }

    [Fact]
    public async Task Abort_MemberSocket_MessagesPublishedAfterAreStillDeliveredToOthers()
    {
        var room = BrokerFixture.UniqueRoom("abort2");
        await using var alice = await fixture.Server.ConnectAsync("/chat?user=alice");
        await using var bob = await fixture.Server.ConnectAsync("/chat?user=bob");
        await using var carol = await fixture.Server.ConnectAsync("/chat?user=carol");
        await alice.JoinAsync(room);
        await bob.JoinAsync(room);
        await carol.JoinAsync(room);

        carol.Socket.Abort();
        for (var n = 0; n < 20; n++)
        {
            await alice.SendAsync(new { type = "publish", id = n, room, data = n });
        }

        var atBob = await bob.CollectAsync(frames => frames.Count(f => Frame.IsMessageIn(f, room)) >= 20, Timeout, "bob");
        Assert.Equal(Enumerable.Range(0, 20), atBob.Where(f => Frame.IsMessageIn(f, room)).Select(m => m.GetProperty("data").GetInt32()));
    }

    private static async Task<List<string>> PresentUsersAsync(TestClient client, string room)
    {
        var presence = await client.RequestAsync(new Dictionary<string, object?> { ["type"] = "presence", ["room"] = room });
        Assert.Equal("presence", Frame.Type(presence));
        return presence.GetProperty("members").EnumerateArray().Select(m => m.GetProperty("user").GetString()!).Order().ToList();
    }
}
