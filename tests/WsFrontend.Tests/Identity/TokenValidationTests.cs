using System.Security.Cryptography;
using System.Text.Json;
using Broker.Frontend.Hosting;
using Broker.Frontend.Options;
using Broker.Frontend.Security;
using Broker.Frontend.Tests.Infrastructure;
using Microsoft.IdentityModel.Tokens;

namespace Broker.Frontend.Tests.Identity;

/// <summary>
/// Which tokens are accepted (protocol.md v1.1 "Identity"): HMAC with a 32-byte key for all three
/// sizes, "exp" required unless configured otherwise, no "alg":"none" and no algorithm
/// confusion, no reserved "sub"; and what an accepted token carries on (its "rooms" claim).
/// </summary>
public sealed class TokenValidationTests(KeyedBroker keyed) : IClassFixture<KeyedBroker>
{
    [Theory]
    [InlineData(SecurityAlgorithms.HmacSha256)]
    [InlineData(SecurityAlgorithms.HmacSha384)]
    [InlineData(SecurityAlgorithms.HmacSha512)]
    public async Task Connect_HmacTokenWith32ByteKey_EachAlgorithmAccepted(string algorithm)
    {
        var token = TestTokens.HmacSigned(algorithm, TestTokens.HmacKey, "hmac-user");

        await using var client = await TestClient.ConnectAsync(keyed.Server.Ws("/chat?token=" + token));

        Assert.Equal("hmac-user", client.User);
    }

    [Fact]
    public async Task Connect_TokenWithoutExp_Http401SayingSo()
    {
        var token = TestTokens.Create(TestTokens.Hmac(), "forever", lifetime: null);

        Assert.Equal(401, await Handshake.RefusedStatusAsync(keyed.Server, "/chat?token=" + token, "\"exp\""));
    }

    [Fact]
    public async Task Validate_TokenWithoutExp_AcceptedWhereRequireExpiryIsOff()
    {
        var token = TestTokens.Create(TestTokens.Hmac(), "forever", lifetime: null);
        using var strict = Authenticator(o => o.SigningKey = TestTokens.HmacKey);
        using var lenient = Authenticator(o =>
        {
            o.SigningKey = TestTokens.HmacKey;
            o.RequireExpiry = false;
        });

        Assert.False((await strict.ValidateAsync(token)).Valid);
        var identity = await lenient.ValidateAsync(token);
        Assert.True(identity.Valid, identity.Error);
        Assert.Equal("forever", identity.User);
        Assert.Null(identity.Expires);
    }

    [Theory]
    [InlineData("")]
    [InlineData("not-a-jwt")]
    [InlineData("a.b.c")]
    [InlineData("eyJhbGciOiJIUzI1NiJ9.bm90IGpzb24.c2ln")]
    [InlineData("bm90IGpzb24.eyJzdWIiOiJ4In0.c2ln")]
    [InlineData("eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiJ4In0")]
    [InlineData("eyJ9.eyJ9.eyJ9.eyJ9.eyJ9")]
    public async Task Validate_Malformed_RefusedWithASentenceNeverThrows(string token)
    {
        using var authenticator = Authenticator(o =>
        {
            o.SigningKey = TestTokens.HmacKey;
            o.PublicKeys.Add(keyed.Rsa.ExportSubjectPublicKeyInfoPem());
        });

        var identity = await authenticator.ValidateAsync(token);

        Assert.False(identity.Valid);
        Assert.EndsWith(".", identity.Error, StringComparison.Ordinal);
    }

    [Fact]
    public async Task Connect_AlgNone_Http401()
    {
        Assert.Equal(401, await Handshake.RefusedStatusAsync(keyed.Server, "/chat?token=" + TestTokens.Unsigned("mallory"), "alg"));
    }

    [Fact]
    public async Task Connect_HmacTokenSignedWithThePublicKeysPem_Http401()
    {
        // The classic forgery: "HS256", with the server's RSA public key (PEM text, or the PEM
        // file's bytes) as the HMAC secret. The broker has a signing key too, so HS256 is accepted
        // as an algorithm: only the signing key may check it.
        var pem = keyed.Rsa.ExportSubjectPublicKeyInfoPem();
        Assert.Equal(401, await Handshake.RefusedStatusAsync(keyed.Server, "/chat?token=" + TestTokens.HmacSigned(SecurityAlgorithms.HmacSha256, pem, "mallory")));
        Assert.Equal(401, await Handshake.RefusedStatusAsync(keyed.Server, "/chat?token=" + TestTokens.HmacSigned(SecurityAlgorithms.HmacSha256, pem + "\n", "mallory")));
    }

    [Fact]
    public async Task Validate_HmacTokenWhereOnlyPublicKeysAreConfigured_RefusedForItsAlgorithm()
    {
        using var rsa = RSA.Create(2048);
        var pem = rsa.ExportSubjectPublicKeyInfoPem();
        using var authenticator = Authenticator(o => o.PublicKeys.Add(pem));

        var forged = await authenticator.ValidateAsync(TestTokens.HmacSigned(SecurityAlgorithms.HmacSha256, pem, "mallory"));
        var genuine = await authenticator.ValidateAsync(TestTokens.Create(TestTokens.Rsa(rsa), "alice"));

        Assert.False(forged.Valid);
        Assert.Contains("\"alg\"", forged.Error, StringComparison.Ordinal);
        Assert.True(genuine.Valid, genuine.Error);
    }

    [Theory]
    [InlineData("server")]
    [InlineData("anon-0123456789ab")]
    [InlineData("guest:alice")]
    public async Task Connect_TokenWhoseSubIsReserved_Http401(string subject)
    {
        var token = TestTokens.Create(TestTokens.Hmac(), subject);

        Assert.Equal(401, await Handshake.RefusedStatusAsync(keyed.Server, "/chat?token=" + token, "reserve"));
    }

    [Fact]
    public async Task Validate_RoomsClaim_CarriedAsAClonedElementOrNull()
    {
        using var authenticator = Authenticator(o => o.SigningKey = TestTokens.HmacKey);
        var rooms = new Dictionary<string, object>
        {
            ["chat"] = new Dictionary<string, object> { ["team-42"] = new[] { "join", "publish" }, ["public-*"] = new[] { "join" } },
        };

        var with = await authenticator.ValidateAsync(TestTokens.Create(TestTokens.Hmac(), "alice", TimeSpan.FromHours(1), new Dictionary<string, object> { ["rooms"] = rooms }));
        var without = await authenticator.ValidateAsync(TestTokens.Create(TestTokens.Hmac(), "bob"));

        Assert.True(with.Valid, with.Error);
        var claim = Assert.NotNull(with.Rooms);
        Assert.Equal(JsonValueKind.Object, claim.ValueKind);
        Assert.Equal("publish", claim.GetProperty("chat").GetProperty("team-42")[1].GetString());
        Assert.Equal("join", claim.GetProperty("chat").GetProperty("public-*")[0].GetString());
        Assert.True(without.Valid, without.Error);
        Assert.Null(without.Rooms);
    }

    [Fact]
    public async Task Admit_Token_AdmittedCarriesTheWholeIdentity_UserQueryCarriesNone()
    {
        var options = new BrokerOptions();
        options.Jwt.SigningKey = TestTokens.HmacKey;
        options.Namespaces["chat"].Anonymous = true;
        options.ResolveDefaults();
        using var authenticator = new TokenAuthenticator(Microsoft.Extensions.Options.Options.Create(options));
        var token = TestTokens.Create(TestTokens.Hmac(), "alice", TimeSpan.FromHours(1), new Dictionary<string, object> { ["rooms"] = new Dictionary<string, object> { ["chat"] = "x" } });

        var (byToken, _) = await ConnectAdmission.AdmitAsync(Request("/chat", token: token), options, authenticator);
        var (byName, _) = await ConnectAdmission.AdmitAsync(Request("/chat", user: "alice"), options, authenticator);

        Assert.NotNull(byToken);
        var identity = Assert.NotNull(byToken.Token);
        Assert.Equal("alice", identity.User);
        Assert.Equal(byToken.Expires, identity.Expires);
        Assert.Equal("x", identity.Rooms!.Value.GetProperty("chat").GetString());
        Assert.NotNull(byName);
        Assert.Equal("guest:alice", byName.User);
        Assert.Null(byName.Token);
    }

    private static ConnectRequest Request(string path, string? token = null, string user = "") =>
        new(path, IsWebSocket: true, Stopping: false, Authorization: null, Origin: null, Token: token, UserQuery: user);

    private static TokenAuthenticator Authenticator(Action<JwtOptions> configure)
    {
        var options = new BrokerOptions();
        configure(options.Jwt);
        Assert.Empty(options.Validate());
        return new TokenAuthenticator(Microsoft.Extensions.Options.Options.Create(options));
    }
}
