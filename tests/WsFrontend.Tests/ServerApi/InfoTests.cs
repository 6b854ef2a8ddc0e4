using System.Net;
using Broker.Frontend.Tests.Infrastructure;
using Broker.Frontend.Tests.Robustness;

namespace Broker.Frontend.Tests.ServerApi;

/// <summary>GET /api/info in embedded mode: this front-end, its connections, its silo and the rooms and users active there.</summary>
public sealed class InfoTests
{
    [Fact]
    public async Task Info_Embedded_ThisNodeItsConnectionsTheSiloAndItsActiveRoomsAndUsers()
    {
        await using var server = await BrokerServer.StartAsync();
        using var api = new ApiClient(server);
        var before = (await api.GetAsync("/api/info")).AssertStatus(HttpStatusCode.OK);
        await using var alice = await server.ConnectAsync("/chat?user=alice");
        await using var bob = await server.ConnectAsync("/chat?user=bob");
        await alice.JoinAsync("lobby");
        await bob.JoinAsync("lobby");

        var info = (await api.GetAsync("/api/info")).AssertStatus(HttpStatusCode.OK).Json;

        Assert.Equal(server.Node.Id, info.GetProperty("node").GetString());
        Assert.Equal("embedded", info.GetProperty("mode").GetString());
        Assert.Equal(2, info.GetProperty("connections").GetInt32());
        var frontend = Assert.Single(info.GetProperty("frontends").EnumerateArray());
        Assert.Equal(server.Node.Id, frontend.GetProperty("id").GetString());
        Assert.Equal(2, frontend.GetProperty("connections").GetInt32());
        var silo = Assert.Single(info.GetProperty("silos").EnumerateArray());
        Assert.Equal("Active", silo.GetProperty("status").GetString());
        Assert.Matches(@"^127\.0\.0\.1:[0-9]+@[0-9]+$", silo.GetProperty("address").GetString());
        Assert.False(string.IsNullOrEmpty(silo.GetProperty("name").GetString()));
        Assert.Equal(1, silo.GetProperty("rooms").GetInt32());
        Assert.Equal(2, silo.GetProperty("users").GetInt32());

        var emptySilo = Assert.Single(before.Json.GetProperty("silos").EnumerateArray());
        Assert.Equal(0, emptySilo.GetProperty("rooms").GetInt32());
        Assert.Equal(0, before.Json.GetProperty("connections").GetInt32());
    }

    [Fact]
    public async Task Info_AfterClientsLeave_CountsFollow()
    {
        await using var server = await BrokerServer.StartAsync();
        using var api = new ApiClient(server);
        var alice = await server.ConnectAsync("/chat?user=alice");
        await alice.DisposeAsync();
        await Eventually.WaitUntilAsync(() => server.Node.ConnectionCount == 0, TimeSpan.FromSeconds(10), "the closed connection to be gone");

        var info = (await api.GetAsync("/api/info")).AssertStatus(HttpStatusCode.OK).Json;

        Assert.Equal(0, info.GetProperty("connections").GetInt32());
        Assert.Equal(0, Assert.Single(info.GetProperty("frontends").EnumerateArray()).GetProperty("connections").GetInt32());
    }
}
