using Broker.Frontend.Security;
using Broker.Frontend.Tests.Identity;
using Broker.Frontend.Tests.Infrastructure;
using Broker.Grains;

namespace Broker.Frontend.Tests;

/// <summary>
/// Names starting "server:" belong to server code (BrokerServerApi, protocol.md v1.2): a client
/// claiming one, in any form that reads like one, is refused at the handshake — 400 for
/// <c>?user=</c>, 401 for a token's <c>sub</c> — with or without a key; and nothing a client
/// sends makes a message appear from one.
/// </summary>
[Collection(BrokerCollection.Name)]
public sealed class ReservedServerNamesTests(KeyedBroker keyed, BrokerFixture keyless) : IClassFixture<KeyedBroker>
{
    public static readonly TheoryData<string> ServerNames =
    [
        "server:x",
        "server:dice",
        "server:",
        "Server:x",
        "SERVER:DICE",
        "ｓｅｒｖｅｒ:x", // full-width letters
        "server：x", // U+FF1A FULLWIDTH COLON
        "server\uFE55x", // U+FE55 SMALL COLON
        "ſerver:x", // U+017F LONG S
        "ser\u200Bver:x", // zero-width space
        "server\u00AD:x", // soft hyphen
        "\u202Eserver:x", // right-to-left override
        " server:x",
        "server:with spaces and ünïcödé",
    ];

    [Theory]
    [MemberData(nameof(ServerNames))]
    public async Task UserQuery_ServerName_Http400WithOrWithoutKey(string name)
    {
        var query = "?user=" + Uri.EscapeDataString(name);

        Assert.Equal(400, await Handshake.RefusedStatusAsync(keyless.Server, "/chat" + query, "reserved"));
        Assert.Equal(400, await Handshake.RefusedStatusAsync(keyless.Server, "/notifications" + query, "reserved"));
        Assert.Equal(400, await Handshake.RefusedStatusAsync(keyed.Server, "/lobby" + query, "reserved"));
        Assert.Equal(400, await Handshake.RefusedStatusAsync(keyed.Server, "/chat" + query, "reserved"));
    }

    [Theory]
    [MemberData(nameof(ServerNames))]
    public async Task Connect_TokenWhoseSubIsAServerName_Http401(string subject)
    {
        var token = TestTokens.Create(TestTokens.Hmac(), subject);

        Assert.Equal(401, await Handshake.RefusedStatusAsync(keyed.Server, "/chat?token=" + token, "reserve"));
        Assert.Equal(401, await Handshake.RefusedStatusAsync(keyed.Server, "/lobby?token=" + token, "reserve"));
    }

    [Theory]
    [InlineData("serverx")]
    [InlineData("server-x")]
    [InlineData("servers:x")]
    [InlineData("my-server:x")]
    [InlineData("x:server:y")]
    public async Task UserQuery_NamesThatOnlyResembleServerNames_Accepted(string name)
    {
        await using var client = await TestClient.ConnectAsync(keyless.Server.Ws("/chat?user=" + Uri.EscapeDataString(name)));

        Assert.Equal(name, client.User);
    }

    [Fact]
    public void EveryServerIdentityTheApiTakes_IsReservedForClients()
    {
        string[] identities = ["server", "server:x", "server:dice", "server:A-b_c.d:e@f", "server:" + new string('z', BrokerServerApi.MaxNameLength - 7)];

        Assert.All(identities, id => Assert.True(BrokerServerApi.IsServerIdentity(id), id));
        Assert.All(identities, id => Assert.True(UserNames.IsReserved(id), id));
        Assert.Equal(BrokerServerApi.ServerPrefix, UserNames.ServerPrefix);
        Assert.Equal(BrokerServerApi.Server, UserNames.Server);
    }

    [Fact]
    public async Task ClientFrameNamingAServerSender_IgnoredField_MessageIsFromTheClient()
    {
        var room = BrokerFixture.UniqueRoom();
        await using var mallory = await TestClient.ConnectAsync(keyless.Server.Ws("/chat?user=mallory"));
        await mallory.JoinAsync(room);

        // Not RequestAsync: waiting for the ack would skip the message, which may come first.
        await mallory.SendAsync(new { type = "publish", id = 1, room, data = "hi", from = "server:admin", user = "server:admin" });
        var message = await mallory.WaitForTypeAsync("message");

        Assert.Equal("mallory", message.GetProperty("from").GetString());
    }
}
