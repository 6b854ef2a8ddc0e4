using System.Security.Cryptography;
using Broker.Frontend.Options;
using Broker.Frontend.Security;
using Broker.Frontend.Tests.Infrastructure;

namespace Broker.Frontend.Tests.Identity;

/// <summary>RS256 and ES256 tokens checked with Broker:Jwt:PublicKeys: PEM text, a PEM file, a JWK with a kid.</summary>
public sealed class PublicKeyTests(KeyedBroker keyed) : IClassFixture<KeyedBroker>
{
    [Fact]
    public async Task Connect_Rs256_VerifiedWithThePemTextKey()
    {
        var token = TestTokens.Create(TestTokens.Rsa(keyed.Rsa, kid: "any-kid-matches-a-key-without-one"), "rsa-user");

        await using var client = await TestClient.ConnectAsync(keyed.Server.Ws("/notifications?token=" + token));

        Assert.Equal("rsa-user", client.User);
    }

    [Fact]
    public async Task Connect_Es256_VerifiedWithThePemFileKey()
    {
        var token = TestTokens.Create(TestTokens.Ecdsa(keyed.Ecdsa), "ec-user");

        await using var client = await TestClient.ConnectAsync(keyed.Server.Ws("/?token=" + token));

        Assert.Equal("ec-user", client.User);
    }

    [Fact]
    public async Task Connect_SignedByAnotherKey_Http401()
    {
        using var otherRsa = RSA.Create(2048);
        using var otherEc = ECDsa.Create(ECCurve.NamedCurves.nistP256);

        Assert.Equal(401, await Handshake.RefusedStatusAsync(keyed.Server, "/chat?token=" + TestTokens.Create(TestTokens.Rsa(otherRsa), "mallory")));
        Assert.Equal(401, await Handshake.RefusedStatusAsync(keyed.Server, "/chat?token=" + TestTokens.Create(TestTokens.Ecdsa(otherEc), "mallory")));
    }

    [Fact]
    public async Task Validate_JwkWithKid_OnlyTokensNamingItOrNone()
    {
        using var rsa = RSA.Create(2048);
        var options = new BrokerOptions();
        options.Jwt.PublicKeys.Add(TestTokens.RsaJwk(rsa, "k1"));
        using var authenticator = new TokenAuthenticator(Microsoft.Extensions.Options.Options.Create(options));

        Assert.True((await authenticator.ValidateAsync(TestTokens.Create(TestTokens.Rsa(rsa, "k1"), "alice"))).Valid);
        Assert.True((await authenticator.ValidateAsync(TestTokens.Create(TestTokens.Rsa(rsa), "alice"))).Valid);
        var otherKid = await authenticator.ValidateAsync(TestTokens.Create(TestTokens.Rsa(rsa, "k2"), "alice"));
        Assert.False(otherKid.Valid);
        Assert.Contains("kid", otherKid.Error, StringComparison.Ordinal);
    }

    [Fact]
    public void Validation_UnusableEntries_FailStartWithTheEntryNamed()
    {
        using var rsa = RSA.Create(2048);
        var options = new BrokerOptions();
        options.Jwt.PublicKeys.AddRange(
        [
            rsa.ExportSubjectPublicKeyInfoPem(),
            rsa.ExportPkcs8PrivateKeyPem(),
            Path.Combine(Path.GetTempPath(), $"no-such-key-{Guid.NewGuid():N}.pem"),
            "{\"kty\":\"oct\",\"k\":\"c2VjcmV0LXNlY3JldC1zZWNyZXQtc2VjcmV0LXNlY3JldA\"}",
            rsa.ExportRSAPublicKeyPem(),
        ]);

        var result = new TokenKeyValidation().Validate(null, options);

        Assert.True(result.Failed);
        var failures = result.Failures!.ToList();
        Assert.Equal(3, failures.Count);
        Assert.Contains(failures, f => f.StartsWith("Broker:Jwt:PublicKeys:1 ", StringComparison.Ordinal) && f.Contains("private", StringComparison.Ordinal));
        Assert.Contains(failures, f => f.StartsWith("Broker:Jwt:PublicKeys:2 ", StringComparison.Ordinal) && f.Contains("file", StringComparison.Ordinal));
        Assert.Contains(failures, f => f.StartsWith("Broker:Jwt:PublicKeys:3 ", StringComparison.Ordinal) && f.Contains("SigningKey", StringComparison.Ordinal));
    }
}
