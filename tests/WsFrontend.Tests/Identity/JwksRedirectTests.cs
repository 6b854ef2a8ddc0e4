using System.Security.Cryptography;
using Broker.Frontend.Options;
using Broker.Frontend.Security;
using Microsoft.AspNetCore.Hosting.Server;
using Microsoft.AspNetCore.Hosting.Server.Features;

namespace Broker.Frontend.Tests.Identity;

/// <summary>
/// A plain-http JwksUrl is allowed only because it is a loopback address; a redirect from it
/// could lead to keys fetched in clear from anywhere, so it is not followed. (The redirect here
/// leads to another loopback URL, which keeps the test on loopback; the broker cannot tell.)
/// </summary>
public sealed class JwksRedirectTests : IAsyncLifetime
{
    private const int FetchFailedEventId = 1401;

    private readonly RSA _key = RSA.Create(2048);
    private JwksServer _jwks = null!;
    private WebApplication _redirector = null!;
    private Uri _moved = null!;

    public async Task InitializeAsync()
    {
        _jwks = await JwksServer.StartAsync();
        _jwks.Serve(TestTokens.JwkSet(TestTokens.RsaJwk(_key, "K")));

        var builder = WebApplication.CreateSlimBuilder();
        builder.WebHost.UseUrls("http://127.0.0.1:0");
        builder.Logging.ClearProviders();
        _redirector = builder.Build();
        _redirector.MapGet("/moved", () => Results.Redirect(_jwks.Url.ToString() + "?secret=s3cret"));
        await _redirector.StartAsync();
        var address = _redirector.Services.GetRequiredService<IServer>().Features.Get<IServerAddressesFeature>()!.Addresses.First();
        _moved = new Uri(address.TrimEnd('/') + "/moved");
    }

    public async Task DisposeAsync()
    {
        await _redirector.StopAsync();
        await _redirector.DisposeAsync();
        await _jwks.DisposeAsync();
        _key.Dispose();
    }

    [Fact]
    public async Task Validate_PlainHttpJwksUrlRedirects_NotFollowed401AndOneWarningSayingWhy()
    {
        var logs = new LogCapture();
        var options = new BrokerOptions();
        options.Jwt.JwksUrl = _moved.ToString();
        Assert.Empty(options.Validate());
        using var authenticator = new TokenAuthenticator(Microsoft.Extensions.Options.Options.Create(options), logs.LoggerFor<TokenAuthenticator>());

        var identity = await authenticator.ValidateAsync(TestTokens.Create(TestTokens.Rsa(_key, "K"), "alice"));

        Assert.False(identity.Valid, "A token was verified with keys fetched through a redirect of a plain-http JwksUrl.");
        Assert.Contains("could not be fetched", identity.Error, StringComparison.Ordinal);
        Assert.Equal(0, _jwks.Requests);
        var warning = Assert.Single(logs.WithEventId(FetchFailedEventId));
        Assert.Contains("not followed", warning.Message, StringComparison.Ordinal);
        Assert.Contains(_jwks.Url.AbsolutePath, warning.Message, StringComparison.Ordinal);
        Assert.DoesNotContain("s3cret", warning.Message, StringComparison.Ordinal);
    }
}
