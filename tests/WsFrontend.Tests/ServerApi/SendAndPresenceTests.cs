using System.Net;
using Broker.Frontend.Tests.Infrastructure;
using Broker.Frontend.Tests.Protocol;

namespace Broker.Frontend.Tests.ServerApi;

/// <summary>POST /api/{ns}/users/{user}/send and GET /api/{ns}/rooms/{room}/presence.</summary>
public sealed class SendAndPresenceTests(BrokerFixture fixture) : IClassFixture<BrokerFixture>
{
    private BrokerServer Server => fixture.Server;

    [Fact]
    public async Task Send_UserWithTwoConnections_DeliveredTwoAndEachGetsADirectFromServer()
    {
        var user = "carol-" + Wire.NewToken();
        await using var first = await Peer.ConnectAsync(Server, $"/chat?user={user}");
        await using var second = await Peer.ConnectAsync(Server, $"/chat?user={user}");
        await using var elsewhere = await Peer.ConnectAsync(Server, $"/notifications?user={user}");
        using var api = new ApiClient(Server);

        var reply = (await api.PostJsonAsync($"/api/chat/users/{user}/send", """{"note":"hi from the server"}""")).AssertStatus(HttpStatusCode.OK);

        Assert.Equal(2, reply.Json.GetProperty("delivered").GetInt32());
        foreach (var connection in new[] { first, second })
        {
            var direct = (await connection.TakeRawAsync(f => f.IsJson && Wire.TypeOf(f.Json) == "direct")).Json;
            Assert.Equal("server", direct.GetProperty("from").GetString());
            Assert.Equal("hi from the server", direct.GetProperty("data").GetProperty("note").GetString());
        }

        // The same name in another namespace is another user.
        var before = await elsewhere.SyncAsync();
        Assert.DoesNotContain(before, f => Wire.TypeOf(f) == "direct");
    }

    [Fact]
    public async Task Send_UserWithoutConnections_DeliveredZero()
    {
        using var api = new ApiClient(Server);

        var reply = (await api.PostJsonAsync($"/api/chat/users/nobody-{Wire.NewToken()}/send", "1")).AssertStatus(HttpStatusCode.OK);

        Assert.Equal(0, reply.Json.GetProperty("delivered").GetInt32());
    }

    [Fact]
    public async Task Presence_MembersWithTheirConnectionCounts_WithoutTheServerJoining()
    {
        var room = BrokerFixture.UniqueRoom();
        await using var alice1 = await Peer.ConnectAsync(Server, "/chat?user=alice");
        await using var alice2 = await Peer.ConnectAsync(Server, "/chat?user=alice");
        await using var bob = await Peer.ConnectAsync(Server, "/chat?user=bob");
        await using var outsider = await Peer.ConnectAsync(Server, "/chat?user=outsider");
        foreach (var member in new[] { alice1, alice2, bob })
        {
            await member.JoinAsync(room);
        }

        using var api = new ApiClient(Server);

        var reply = (await api.GetAsync($"/api/chat/rooms/{room}/presence")).AssertStatus(HttpStatusCode.OK);

        Assert.Equal(room, reply.Json.GetProperty("room").GetString());
        var members = reply.Json.GetProperty("members").EnumerateArray()
            .ToDictionary(m => m.GetProperty("user").GetString()!, m => m.GetProperty("connections").GetInt32());
        Assert.Equal(new Dictionary<string, int> { ["alice"] = 2, ["bob"] = 1 }, members);

        // A client that has not joined is refused the same question (presence requires membership).
        var refused = await outsider.PresenceAsync(room);
        Wire.AssertError(refused, "not_member", refused.GetProperty("id").GetRawText());
    }

    [Fact]
    public async Task Presence_NamespaceWithPresenceOff_403Forbidden()
    {
        using var api = new ApiClient(Server);

        var reply = await api.GetAsync("/api/notifications/rooms/any/presence");

        Assert.Equal("forbidden", reply.AssertStatus(HttpStatusCode.Forbidden).ErrorCode);
    }

    [Fact]
    public async Task Presence_UnknownNamespace_404()
    {
        using var api = new ApiClient(Server);

        var reply = await api.GetAsync("/api/nowhere/rooms/any/presence");

        Assert.Equal("not_found", reply.AssertStatus(HttpStatusCode.NotFound).ErrorCode);
    }
}
