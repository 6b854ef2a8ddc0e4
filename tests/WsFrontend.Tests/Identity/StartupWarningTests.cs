using Broker.Frontend.Hosting;
using Broker.Frontend.Tests.Infrastructure;

namespace Broker.Frontend.Tests.Identity;

/// <summary>
/// Without a token key the broker says once, at start, that identities are unverified; with public
/// keys but no Issuer or Audience, that tokens for other services are accepted; otherwise nothing.
/// </summary>
public sealed class StartupWarningTests
{
    private const int UnverifiedIdentityEventId = 1400;
    private const int AnyIssuerOrAudienceEventId = 1403;

    [Fact]
    public async Task Start_NoKey_OneWarningNamingTheOptions()
    {
        var logs = new LogCapture();
        await using (var server = await BrokerServer.StartAsync(logs: logs))
        {
            // Connections do not repeat it.
            await using var client = await TestClient.ConnectAsync(server.Ws("/chat?user=alice"));
            Assert.Equal("alice", client.User);
        }

        var warning = Assert.Single(logs.WithEventId(UnverifiedIdentityEventId));
        Assert.Equal(LogLevel.Warning, warning.Level);
        Assert.Contains("Broker:Jwt:SigningKey", warning.Message, StringComparison.Ordinal);
        Assert.Contains("Broker:Jwt:JwksUrl", warning.Message, StringComparison.Ordinal);
    }

    [Fact]
    public async Task Start_WithKey_NoWarning()
    {
        var logs = new LogCapture();
        await (await BrokerServer.StartAsync(new Dictionary<string, string?> { ["Broker:Jwt:SigningKey"] = TestTokens.HmacKey }, logs)).DisposeAsync();

        Assert.Empty(logs.WithEventId(UnverifiedIdentityEventId));
        Assert.DoesNotContain(logs.Entries, e => e.Level >= LogLevel.Warning && e.Category.StartsWith("Broker", StringComparison.Ordinal));
    }

    [Theory]
    [InlineData(null, null, "issuer (\"iss\") and audience (\"aud\")")]
    [InlineData("https://issuer.example/", null, "whatever their audience")]
    [InlineData(null, "broker", "whatever their issuer")]
    public async Task Start_PublicKeyWithoutIssuerOrAudience_OneWarningSayingWhichIsNotChecked(string? issuer, string? audience, string says)
    {
        using var rsa = System.Security.Cryptography.RSA.Create(2048);
        var logs = new LogCapture();
        await (await BrokerServer.StartAsync(
            new Dictionary<string, string?>
            {
                ["Broker:Jwt:PublicKeys:0"] = rsa.ExportSubjectPublicKeyInfoPem(),
                ["Broker:Jwt:Issuer"] = issuer,
                ["Broker:Jwt:Audience"] = audience,
            },
            logs)).DisposeAsync();

        var warning = Assert.Single(logs.WithEventId(AnyIssuerOrAudienceEventId));
        Assert.Equal(LogLevel.Warning, warning.Level);
        Assert.Contains(says, warning.Message, StringComparison.Ordinal);
        Assert.Contains("Broker:Jwt:Audience", warning.Message, StringComparison.Ordinal);
    }

    [Fact]
    public async Task Start_PublicKeyWithIssuerAndAudience_NoWarning()
    {
        using var rsa = System.Security.Cryptography.RSA.Create(2048);
        var logs = new LogCapture();
        await (await BrokerServer.StartAsync(
            new Dictionary<string, string?>
            {
                ["Broker:Jwt:PublicKeys:0"] = rsa.ExportSubjectPublicKeyInfoPem(),
                ["Broker:Jwt:Issuer"] = "https://issuer.example/",
                ["Broker:Jwt:Audience"] = "broker",
            },
            logs)).DisposeAsync();

        Assert.DoesNotContain(logs.Entries, e => e.Level >= LogLevel.Warning && e.Category.StartsWith("Broker", StringComparison.Ordinal));
    }
}
