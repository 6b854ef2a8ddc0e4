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
        var app = await StartAsync(new Dictionary<string, string?>(), logs);
        try
        {
            // Connections do not repeat it.
            await using var client = await TestClient.ConnectAsync(Ws(app, "/chat?user=alice"));
            Assert.Equal("alice", client.User);
        }
        finally
        {
            await StopAsync(app);
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
        await StopAsync(await StartAsync(new Dictionary<string, string?> { ["Broker:Jwt:SigningKey"] = TestTokens.HmacKey }, logs));

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
        await StopAsync(await StartAsync(
            new Dictionary<string, string?>
            {
                ["Broker:Jwt:PublicKeys:0"] = rsa.ExportSubjectPublicKeyInfoPem(),
                ["Broker:Jwt:Issuer"] = issuer,
                ["Broker:Jwt:Audience"] = audience,
            },
            logs));

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
        await StopAsync(await StartAsync(
            new Dictionary<string, string?>
            {
                ["Broker:Jwt:PublicKeys:0"] = rsa.ExportSubjectPublicKeyInfoPem(),
                ["Broker:Jwt:Issuer"] = "https://issuer.example/",
                ["Broker:Jwt:Audience"] = "broker",
            },
            logs));

        Assert.DoesNotContain(logs.Entries, e => e.Level >= LogLevel.Warning && e.Category.StartsWith("Broker", StringComparison.Ordinal));
    }

    /// <summary>A broker wired as <see cref="BrokerServer"/> wires it, with the log capture in place before start.</summary>
    private static async Task<WebApplication> StartAsync(Dictionary<string, string?> settings, LogCapture logs)
    {
        var builder = WebApplication.CreateBuilder(new WebApplicationOptions
        {
            ContentRootPath = AppContext.BaseDirectory,
            EnvironmentName = "Testing",
        });
        var config = new Dictionary<string, string?>
        {
            ["urls"] = "http://127.0.0.1:0",
            ["Broker:Embedded:SiloPort"] = FreePorts.Next().ToString(System.Globalization.CultureInfo.InvariantCulture),
            ["Logging:LogLevel:Default"] = "Warning",
        };
        foreach (var (key, value) in settings)
        {
            config[key] = value;
        }

        builder.Configuration.AddInMemoryCollection(config);
        builder.AddBrokerFrontend();
        builder.Logging.AddProvider(logs);
        var app = builder.Build();
        app.MapBroker();
        await app.StartAsync();
        return app;
    }

    private static async Task StopAsync(WebApplication app)
    {
        await app.StopAsync();
        await app.DisposeAsync();
    }

    private static Uri Ws(WebApplication app, string pathAndQuery)
    {
        var address = app.Services.GetRequiredService<Microsoft.AspNetCore.Hosting.Server.IServer>()
            .Features.Get<Microsoft.AspNetCore.Hosting.Server.Features.IServerAddressesFeature>()!.Addresses.First();
        return new Uri(address.Replace("http://", "ws://", StringComparison.Ordinal).TrimEnd('/') + pathAndQuery);
    }
}
