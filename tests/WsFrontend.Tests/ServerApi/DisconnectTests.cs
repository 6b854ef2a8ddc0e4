using System.Net;
using System.Net.WebSockets;
using Broker.Frontend.Tests.Infrastructure;
using Broker.Frontend.Tests.Protocol;
using Broker.Frontend.Tests.Robustness;

namespace Broker.Frontend.Tests.ServerApi;

/// <summary>POST /api/{ns}/users/{user}/disconnect: that user's connections in that namespace close with 1008 and the reason; nobody else's.</summary>
public sealed class DisconnectTests(BrokerFixture fixture) : IClassFixture<BrokerFixture>
{
    private static readonly TimeSpan Timeout = TimeSpan.FromSeconds(15);

    private BrokerServer Server => fixture.Server;

    [Fact]
    public async Task Disconnect_UserWithTwoConnections_ClosesBothWith1008AndTheReasonOnlyThatUserInThatNamespace()
    {
        var room = BrokerFixture.UniqueRoom();
        var user = "mallory-" + Wire.NewToken();
        await using var first = await TestClient.ConnectAsync(Server.Ws($"/chat?user={user}"));
        await using var second = await TestClient.ConnectAsync(Server.Ws($"/chat?user={user}"));
        await using var otherNamespace = await TestClient.ConnectAsync(Server.Ws($"/notifications?user={user}"));
        await using var bob = await TestClient.ConnectAsync(Server.Ws("/chat?user=bob"));
        await first.JoinAsync(room);
        await bob.JoinAsync(room);
        using var api = new ApiClient(Server);

        var reply = (await api.PostJsonAsync($"/api/chat/users/{user}/disconnect", """{"reason":"Banned for spam."}""")).AssertStatus(HttpStatusCode.OK);

        Assert.Equal(2, reply.Json.GetProperty("closed").GetInt32());
        foreach (var closed in new[] { first, second })
        {
            Assert.Equal(WebSocketCloseStatus.PolicyViolation, await closed.WaitForCloseAsync(Timeout));
            Assert.Equal("Banned for spam.", closed.Socket.CloseStatusDescription);
        }

        // The others stay connected and served; bob sees mallory leave the room.
        Assert.Equal("pong", Frame.Type(await otherNamespace.PingUntilPongAsync(Timeout)));
        var left = await bob.WaitForTypeAsync("member_left", Timeout);
        Assert.Equal(user, left.GetProperty("user").GetString());
        Assert.Equal("pong", Frame.Type(await bob.PingUntilPongAsync(Timeout)));
        Assert.False(otherNamespace.Closed.IsCompleted || bob.Closed.IsCompleted);

        // Nothing left to close: 0, not an error.
        var again = (await api.PostJsonAsync($"/api/chat/users/{user}/disconnect", "{}")).AssertStatus(HttpStatusCode.OK);
        Assert.Equal(0, again.Json.GetProperty("closed").GetInt32());
    }

    [Fact]
    public async Task Disconnect_NoBody_ClosesWithTheDefaultReason()
    {
        var user = "quiet-" + Wire.NewToken();
        await using var client = await TestClient.ConnectAsync(Server.Ws($"/chat?user={user}"));
        using var api = new ApiClient(Server);

        var reply = (await api.PostAsync($"/api/chat/users/{user}/disconnect", ApiClient.Json(Array.Empty<byte>()))).AssertStatus(HttpStatusCode.OK);

        Assert.Equal(1, reply.Json.GetProperty("closed").GetInt32());
        Assert.Equal(WebSocketCloseStatus.PolicyViolation, await client.WaitForCloseAsync(Timeout));
        Assert.Equal(Broker.Frontend.Hosting.ServerApi.DefaultDisconnectReason, client.Socket.CloseStatusDescription);
    }

    [Fact]
    public async Task Disconnect_ReasonOf123Bytes_IsTheCloseReason()
    {
        var user = "long-" + Wire.NewToken();
        await using var client = await TestClient.ConnectAsync(Server.Ws($"/chat?user={user}"));
        using var api = new ApiClient(Server);
        var reason = new string('é', 61) + "x";

        (await api.PostJsonAsync($"/api/chat/users/{user}/disconnect", $$"""{"reason":"{{reason}}"}""")).AssertStatus(HttpStatusCode.OK);

        Assert.Equal(WebSocketCloseStatus.PolicyViolation, await client.WaitForCloseAsync(Timeout));
        Assert.Equal(reason, client.Socket.CloseStatusDescription);
    }

    [Theory]
    [InlineData("""{"reason":""}""")]
    [InlineData("""{"reason":42}""")]
    [InlineData("""{"reson":"typo"}""")]
    [InlineData("""["Banned."]""")]
    [InlineData("\"Banned.\"")]
    [InlineData("{\"reason\":\"\\ud800\"}")]
    public async Task Disconnect_BadBody_400AndTheConnectionStaysOpen(string body)
    {
        var user = "kept-" + Wire.NewToken();
        await using var client = await TestClient.ConnectAsync(Server.Ws($"/chat?user={user}"));
        using var api = new ApiClient(Server);

        var reply = await api.PostJsonAsync($"/api/chat/users/{user}/disconnect", body);

        Assert.Equal("bad_request", reply.AssertStatus(HttpStatusCode.BadRequest).ErrorCode);
        Assert.Equal("pong", Frame.Type(await client.PingUntilPongAsync(Timeout)));
        Assert.False(client.Closed.IsCompleted);
    }

    [Fact]
    public async Task Disconnect_ReasonOver123Bytes_400()
    {
        using var api = new ApiClient(Server);
        var reason = new string('é', 62);

        var reply = await api.PostJsonAsync("/api/chat/users/anyone/disconnect", $$"""{"reason":"{{reason}}"}""");

        Assert.Equal("bad_request", reply.AssertStatus(HttpStatusCode.BadRequest).ErrorCode);
        Assert.Contains("123 bytes", reply.Error, StringComparison.Ordinal);
    }
}
