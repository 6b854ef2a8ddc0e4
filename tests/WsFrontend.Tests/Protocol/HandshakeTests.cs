using System.Net;
using System.Text.Json;
using Broker.Frontend.Tests.Infrastructure;

namespace Broker.Frontend.Tests.Protocol;

/// <summary>protocol.md "Connecting", against the default configuration.</summary>
[Collection(BrokerCollection.Name)]
public sealed class HandshakeTests(BrokerFixture fixture)
{
    private BrokerServer Server => fixture.Server;

    [Theory]
    [InlineData("/", "default")]
    [InlineData("/chat", "chat")]
    [InlineData("/notifications", "notifications")]
    [InlineData("/chat/some/sub/path", "chat")]
    public async Task Connect_ConfiguredNamespacePath_WelcomeNamesNamespace(string path, string expected)
    {
        await using var peer = await Peer.ConnectAsync(Server, path);

        Assert.Equal(expected, peer.Welcome.GetProperty("namespace").GetString());
    }

    [Theory]
    [InlineData("/nope")]
    [InlineData("/chatroom")]
    [InlineData("/nope/chat")]
    public async Task Connect_UnknownNamespace_Http404(string path)
    {
        var status = await Wire.HandshakeStatusAsync(Server.Ws(path));

        Assert.Equal(HttpStatusCode.NotFound, status);
    }

    [Fact]
    public async Task HttpGet_UnknownNamespace_Http404()
    {
        using var http = new HttpClient { BaseAddress = Server.HttpBase };

        using var response = await http.GetAsync(new Uri("nope", UriKind.Relative));

        Assert.Equal(HttpStatusCode.NotFound, response.StatusCode);
    }

    // A plain GET / is the chat page (ChatPageTests); with Broker:ChatPage=false it is 426 too.
    [Theory]
    [InlineData("chat")]
    [InlineData("notifications")]
    public async Task HttpGet_NamespaceWithoutUpgrade_Http426(string path)
    {
        using var http = new HttpClient { BaseAddress = Server.HttpBase };

        using var response = await http.GetAsync(new Uri(path, UriKind.Relative));

        Assert.Equal((HttpStatusCode)426, response.StatusCode);
    }

    [Fact]
    public async Task Connect_UserQuery_UserIsName()
    {
        await using var peer = await Peer.ConnectAsync(Server, "/chat?user=alice");

        Assert.Equal("alice", peer.Welcome.GetProperty("user").GetString());
    }

    [Fact]
    public async Task Connect_UserQueryEscaped_UserIsDecodedName()
    {
        await using var peer = await Peer.ConnectAsync(Server, "/chat?user=al%20ice%C3%A9");

        Assert.Equal("al iceé", peer.Welcome.GetProperty("user").GetString());
    }

    [Fact]
    public async Task Connect_NoUserQuery_AnonymousIdsDistinct()
    {
        await using var first = await Peer.ConnectAsync(Server, "/chat");
        await using var second = await Peer.ConnectAsync(Server, "/");

        var a = first.Welcome.GetProperty("user").GetString()!;
        var b = second.Welcome.GetProperty("user").GetString()!;
        Assert.StartsWith("anon-", a, StringComparison.Ordinal);
        Assert.StartsWith("anon-", b, StringComparison.Ordinal);
        Assert.True(a.Length > "anon-".Length);
        Assert.NotEqual(a, b);
    }

    [Fact]
    public async Task Connect_Any_WelcomeIsFirstFrameWithAllFields()
    {
        // Read nothing until a ping has been sent: the welcome must still come first.
        var client = await TestClient.ConnectAsync(Server.Ws("/chat?user=welcomer"), autoRead: false);
        await using (client)
        {
            await client.SendTextAsync("ping");
            await client.SendTextAsync("{\"type\":\"ping\",\"id\":1}");
            client.StartReading();

            var first = await client.NextRawAsync();
            Assert.True(first.IsJson, $"first frame is not JSON: {first.Text}");
            var welcome = first.Json;
            Assert.Equal("welcome", Wire.TypeOf(welcome));
            Assert.StartsWith("c-", welcome.GetProperty("connection").GetString(), StringComparison.Ordinal);
            Assert.Equal("welcomer", welcome.GetProperty("user").GetString());
            Assert.Equal("chat", welcome.GetProperty("namespace").GetString());
            Assert.StartsWith("fe-", welcome.GetProperty("node").GetString(), StringComparison.Ordinal);
            Assert.Equal(Server.Node.Id, welcome.GetProperty("node").GetString());
            Assert.False(welcome.TryGetProperty("id", out _));

            Assert.Equal("pong", (await client.NextRawAsync()).Text);
            Assert.Equal("pong", Wire.TypeOf((await client.NextRawAsync()).Json));
        }
    }

    [Fact]
    public async Task Connect_TwoConnections_DistinctConnectionIds()
    {
        await using var first = await Peer.ConnectAsync(Server, "/chat?user=twin");
        await using var second = await Peer.ConnectAsync(Server, "/chat?user=twin");

        Assert.NotEqual(first.Welcome.GetProperty("connection").GetString(), second.Welcome.GetProperty("connection").GetString());
    }

    [Fact]
    public async Task Connect_UserAtMaxNameLength_Accepted()
    {
        var name = new string('u', 200);

        await using var peer = await Peer.ConnectAsync(Server, "/chat?user=" + name);

        Assert.Equal(name, peer.Welcome.GetProperty("user").GetString());
    }

    [Fact]
    public async Task Connect_UserOverMaxNameLength_Http400()
    {
        var status = await Wire.HandshakeStatusAsync(Server.Ws("/chat?user=" + new string('u', 201)));

        Assert.Equal(HttpStatusCode.BadRequest, status);
    }

    [Fact]
    public async Task Connect_AnyOriginWithoutAllowlist_Accepted()
    {
        await using var peer = await Peer.ConnectAsync(Server, "/chat?user=o", o => o.SetRequestHeader("Origin", "https://evil.example"));

        Assert.Equal("welcome", Wire.TypeOf(peer.Welcome));
    }

    [Theory]
    [InlineData("/chat?token=not-a-jwt")]
    [InlineData("/chat?user=alice&token=not-a-jwt")]
    public async Task Connect_BadTokenQuery_Http401(string path)
    {
        var status = await Wire.HandshakeStatusAsync(Server.Ws(path));

        Assert.Equal(HttpStatusCode.Unauthorized, status);
    }

    [Fact]
    public async Task Connect_BadBearerHeader_Http401()
    {
        var status = await Wire.HandshakeStatusAsync(
            Server.Ws("/chat"),
            o => o.SetRequestHeader("Authorization", "Bearer eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiJtYWxsb3J5In0.bm90LWEtc2lnbmF0dXJl"));

        Assert.Equal(HttpStatusCode.Unauthorized, status);
    }

    [Fact]
    public async Task Connect_Welcome_UserCanBeAddressedBySend()
    {
        // The welcome's user is the identity others address: a send to it reaches this connection.
        await using var anon = await Peer.ConnectAsync(Server, "/chat");
        await using var sender = await Peer.ConnectAsync(Server, "/chat?user=sender");

        var ack = await sender.SendToAsync(anon.User, "hi");

        Assert.Equal(1, ack.GetProperty("delivered").GetInt32());
        var direct = await anon.TakeTypeAsync("direct");
        Assert.Equal("sender", direct.GetProperty("from").GetString());
        Assert.Equal(JsonValueKind.String, direct.GetProperty("data").ValueKind);
    }
}

/// <summary>protocol.md "Connecting", against brokers with other settings.</summary>
public sealed class HandshakeSettingsTests
{
    [Fact]
    public async Task Connect_NotAnonymousNamespaceWithUserQuery_Http401()
    {
        await using var server = await BrokerServer.StartAsync(new Dictionary<string, string?> { ["Broker:Namespaces:chat:Anonymous"] = "false" });

        Assert.Equal(HttpStatusCode.Unauthorized, await Wire.HandshakeStatusAsync(server.Ws("/chat?user=alice")));
        Assert.Equal(HttpStatusCode.Unauthorized, await Wire.HandshakeStatusAsync(server.Ws("/chat")));

        // Other namespaces keep their own setting.
        await using var peer = await Peer.ConnectAsync(server, "/?user=alice");
        Assert.Equal("alice", peer.User);
    }

    [Fact]
    public async Task Connect_OriginAllowlist_OtherOriginHttp403AllowedOriginConnects()
    {
        await using var server = await BrokerServer.StartAsync(new Dictionary<string, string?> { ["Broker:AllowedOrigins:0"] = "https://good.example" });

        var evil = await Wire.HandshakeStatusAsync(server.Ws("/chat?user=a"), o => o.SetRequestHeader("Origin", "https://evil.example"));
        Assert.Equal(HttpStatusCode.Forbidden, evil);

        await using var good = await Peer.ConnectAsync(server, "/chat?user=a", o => o.SetRequestHeader("Origin", "https://good.example"));
        Assert.Equal("a", good.User);
        var pong = await good.RequestAsync(new() { ["type"] = "ping" });
        Assert.Equal("pong", Wire.TypeOf(pong));
    }

    [Fact]
    public async Task Connect_OriginAllowlistEcho_OtherOriginHttp403AllowedOriginSwitches()
    {
        // /echo is a WebSocket of this node too: the allowlist applies to it as to the namespaces.
        await using var server = await BrokerServer.StartAsync(new Dictionary<string, string?> { ["Broker:AllowedOrigins:0"] = "https://good.example" });

        var evil = await Wire.HandshakeStatusAsync(server.Ws("/echo"), o => o.SetRequestHeader("Origin", "https://evil.example"));
        var good = await Wire.HandshakeStatusAsync(server.Ws("/echo"), o => o.SetRequestHeader("Origin", "https://good.example"));

        Assert.Equal(HttpStatusCode.Forbidden, evil);
        Assert.Equal(HttpStatusCode.SwitchingProtocols, good);
    }

    [Fact]
    public async Task Connect_OriginAllowlistNoOriginHeader_Connects()
    {
        // Only browser handshakes (which always send Origin) are subject to the allowlist.
        await using var server = await BrokerServer.StartAsync(new Dictionary<string, string?> { ["Broker:AllowedOrigins:0"] = "https://good.example" });

        await using var peer = await Peer.ConnectAsync(server, "/chat?user=native");

        Assert.Equal("native", peer.User);
    }

    [Fact]
    public async Task Connect_DisabledNamespace_Http404()
    {
        await using var server = await BrokerServer.StartAsync(new Dictionary<string, string?> { ["Broker:Namespaces:notifications:Enabled"] = "false" });

        Assert.Equal(HttpStatusCode.NotFound, await Wire.HandshakeStatusAsync(server.Ws("/notifications")));
    }
}
