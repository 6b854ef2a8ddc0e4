using System.Net;
using System.Text;
using System.Text.Json;
using Broker.Frontend.Options;
using Broker.Frontend.Tests.Infrastructure;
using Broker.Frontend.Tests.Robustness;

namespace Broker.Frontend.Tests.Identity;

/// <summary>
/// protocol.md v1.1 "Identity": once a token key is configured, ?user= is refused wherever
/// Anonymous is not turned on again, and where it is, an unverified name lives apart as
/// guest:NAME; reserved names cannot be claimed, with a key or without.
/// </summary>
[Collection(BrokerCollection.Name)]
public sealed class SecureDefaultsTests(KeyedBroker keyed, BrokerFixture keyless) : IClassFixture<KeyedBroker>
{
    [Theory]
    [InlineData("/")]
    [InlineData("/chat")]
    [InlineData("/notifications")]
    [InlineData("/orders")]
    public async Task UserQuery_KeyConfigured_Http401OnEveryNamespaceNotTurnedBackOn(string path)
    {
        Assert.Equal(401, await Handshake.RefusedStatusAsync(keyed.Server, path + "?user=alice", "?user="));
        Assert.Equal(401, await Handshake.RefusedStatusAsync(keyed.Server, path, "token"));

        await using var verified = await TestClient.ConnectAsync(keyed.Server.Ws(path + "?token=" + TestTokens.Create(TestTokens.Hmac(), "alice")));
        Assert.Equal("alice", verified.User);
    }

    [Fact]
    public async Task UserQuery_KeyAndAnonymousTurnedOn_IsGuestAndGeneratedIdsStayAnon()
    {
        await using var guest = await TestClient.ConnectAsync(keyed.Server.Ws("/lobby?user=alice"));
        await using var anonymous = await TestClient.ConnectAsync(keyed.Server.Ws("/lobby"));

        Assert.Equal("guest:alice", guest.User);
        Assert.StartsWith("anon-", anonymous.User, StringComparison.Ordinal);
    }

    [Fact]
    public async Task UserQuery_NoKey_IsTheNameAsInV1()
    {
        await using var client = await TestClient.ConnectAsync(keyless.Server.Ws("/chat?user=alice"));

        Assert.Equal("alice", client.User);
    }

    [Fact]
    public async Task DirectToVerifiedUser_NeverReachesTheGuestOfTheSameName()
    {
        var name = "alice-" + Guid.NewGuid().ToString("N")[..8];
        await using var verified = await TestClient.ConnectAsync(keyed.Server.Ws("/lobby?token=" + TestTokens.Create(TestTokens.Hmac(), name)));
        await using var guest = await TestClient.ConnectAsync(keyed.Server.Ws("/lobby?user=" + name));
        Assert.Equal(name, verified.User);
        Assert.Equal("guest:" + name, guest.User);

        Assert.Equal(1, await SendAsync(name, "{\"to\":\"verified\"}"));
        var direct = await verified.WaitForAsync(f => Frame.Is(f, "direct"));
        Assert.Equal("verified", direct.GetProperty("data").GetProperty("to").GetString());
        Assert.Equal("server", direct.GetProperty("from").GetString());

        // The guest's first frame after its welcome is what was sent to guest:NAME, not the other.
        Assert.Equal(1, await SendAsync("guest:" + name, "{\"to\":\"guest\"}"));
        var first = await guest.NextAsync();
        Assert.True(Frame.Is(first, "direct"), $"Expected a direct frame, got {first.GetRawText()}");
        Assert.Equal("guest", first.GetProperty("data").GetProperty("to").GetString());
    }

    [Theory]
    [InlineData("server", true)]
    [InlineData("SERVER", true)]
    [InlineData("anon-0123456789ab", true)]
    [InlineData("guest:bob", true)]
    [InlineData("server", false)]
    [InlineData("Anon-x", false)]
    [InlineData("guest:bob", false)]
    public async Task UserQuery_ReservedName_Http400WithOneLineBody(string name, bool withKey)
    {
        var query = "?user=" + Uri.EscapeDataString(name);
        if (withKey)
        {
            // Refused as reserved whether or not the namespace takes ?user= at all.
            Assert.Equal(400, await Handshake.RefusedStatusAsync(keyed.Server, "/lobby" + query, "reserved"));
            Assert.Equal(400, await Handshake.RefusedStatusAsync(keyed.Server, "/chat" + query, "reserved"));
        }
        else
        {
            Assert.Equal(400, await Handshake.RefusedStatusAsync(keyless.Server, "/chat" + query, "reserved"));
        }
    }

    [Fact]
    public async Task UserQuery_GuestNameOverTheLimit_Http400()
    {
        // guest: takes 6 of MaxNameLength's 200 characters.
        Assert.Equal(400, await Handshake.RefusedStatusAsync(keyed.Server, "/lobby?user=" + new string('u', 195), "194"));

        await using var longest = await TestClient.ConnectAsync(keyed.Server.Ws("/lobby?user=" + new string('u', 194)));
        Assert.Equal(200, longest.User.Length);
    }

    [Fact]
    public void AnonymousDefault_ResolvedFromTheKeys_ConfiguredValueWins()
    {
        var keyedOptions = Bind(new()
        {
            ["Broker:Jwt:JwksUrl"] = "https://issuer.example/jwks",
            ["Broker:Namespaces:lobby:Anonymous"] = "true",
            ["Broker:Namespaces:orders:History"] = "5",
            ["Broker:Namespaces:chat:Anonymous"] = "false",
        });
        Assert.False(keyedOptions.Namespaces["default"].AllowsAnonymous);
        Assert.False(keyedOptions.Namespaces["notifications"].AllowsAnonymous);
        Assert.False(keyedOptions.Namespaces["orders"].AllowsAnonymous);
        Assert.True(keyedOptions.Namespaces["lobby"].AllowsAnonymous);

        var keylessOptions = Bind(new()
        {
            ["Broker:Namespaces:chat:Anonymous"] = "false",
            ["Broker:Namespaces:orders:History"] = "5",
        });
        Assert.True(keylessOptions.Namespaces["default"].AllowsAnonymous);
        Assert.True(keylessOptions.Namespaces["orders"].AllowsAnonymous);
        Assert.False(keylessOptions.Namespaces["chat"].AllowsAnonymous);
    }

    private static BrokerOptions Bind(Dictionary<string, string?> settings)
    {
        var configuration = new ConfigurationBuilder().AddInMemoryCollection(settings).Build();
        var options = new BrokerOptions();
        configuration.GetSection(BrokerOptions.SectionName).Bind(options);
        options.ResolveDefaults();
        Assert.Empty(options.Validate());
        return options;
    }

    private async Task<int> SendAsync(string user, string json)
    {
        using var http = new HttpClient { BaseAddress = keyed.Server.HttpBase };
        using var body = new StringContent(json, Encoding.UTF8, "application/json");
        using var response = await http.PostAsync($"api/lobby/users/{Uri.EscapeDataString(user)}/send", body);
        var text = await response.Content.ReadAsStringAsync();
        Assert.True(response.StatusCode == HttpStatusCode.OK, $"The API answered {(int)response.StatusCode}: {text}");
        using var reply = JsonDocument.Parse(text);
        return reply.RootElement.GetProperty("delivered").GetInt32();
    }
}
