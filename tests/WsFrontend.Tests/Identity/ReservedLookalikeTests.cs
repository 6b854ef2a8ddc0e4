using Broker.Frontend.Security;
using Broker.Frontend.Tests.Infrastructure;

namespace Broker.Frontend.Tests.Identity;

/// <summary>
/// Reserved names written so that they read like the real ones (full-width letters, the long s,
/// a full-width colon, zero-width or bidi characters, a soft hyphen, surrounding spaces): a
/// client must not appear as "server" — the HTTP API's sender — nor as an anon-… or guest:… id.
/// </summary>
[Collection(BrokerCollection.Name)]
public sealed class ReservedLookalikeTests(KeyedBroker keyed, BrokerFixture keyless) : IClassFixture<KeyedBroker>
{
    public static readonly TheoryData<string> Lookalikes =
    [
        "ｓｅｒｖｅｒ", // full-width
        "ＳＥＲＶＥＲ",
        "ſerver", // U+017F LATIN SMALL LETTER LONG S
        "server\u200B", // zero-width space
        "ser\u200Dver", // zero-width joiner
        "\u202Eserver", // right-to-left override
        "server\uFE0F", // variation selector
        " server ",
        "server\t",
        "an\u00ADon-x", // soft hyphen
        "ａｎｏｎ－x", // full-width
        "guest：alice", // U+FF1A FULLWIDTH COLON
        "guest\uFE55alice", // U+FE55 SMALL COLON
        "\u2060guest:alice", // word joiner
    ];

    [Theory]
    [MemberData(nameof(Lookalikes))]
    public async Task UserQuery_ReservedLookalike_Http400WithOrWithoutKey(string name)
    {
        var query = "?user=" + Uri.EscapeDataString(name);

        Assert.Equal(400, await Handshake.RefusedStatusAsync(keyless.Server, "/chat" + query, "reserved"));
        Assert.Equal(400, await Handshake.RefusedStatusAsync(keyed.Server, "/lobby" + query, "reserved"));
    }

    [Theory]
    [MemberData(nameof(Lookalikes))]
    public async Task Connect_TokenWhoseSubIsAReservedLookalike_Http401(string subject)
    {
        var token = TestTokens.Create(TestTokens.Hmac(), subject);

        Assert.Equal(401, await Handshake.RefusedStatusAsync(keyed.Server, "/chat?token=" + token, "reserve"));
    }

    [Theory]
    [InlineData("servers")]
    [InlineData("observer")]
    [InlineData("anonymous")]
    [InlineData("guest")]
    [InlineData("guests:alice")]
    [InlineData("ｓｅｒｖｅｒ２")]
    [InlineData("alice")]
    public void IsReserved_NamesThatDoNotReadAsReserved_Free(string name) => Assert.False(UserNames.IsReserved(name));

    [Fact]
    public void IsReserved_LoneSurrogate_ReadAsReplacementCharacterWithoutThrowing()
    {
        // Normalization throws on invalid UTF-16; a token's "sub" can hold "\ud800".
        Assert.False(UserNames.IsReserved("\uD800server"));
        Assert.True(UserNames.IsReserved("\uD800\u200Bserver".Substring(1)));
    }

    [Fact]
    public async Task UserQuery_NameWithInvisibleCharactersThatIsNotReserved_StillAccepted()
    {
        await using var client = await TestClient.ConnectAsync(keyless.Server.Ws("/chat?user=" + Uri.EscapeDataString("al\u200Dice")));

        Assert.Equal("al\u200Dice", client.User);
    }
}
