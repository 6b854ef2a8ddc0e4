using System.Security.Cryptography;
using Broker.Frontend.Options;
using Broker.Frontend.Security;
using Broker.Frontend.Tests.Infrastructure;

namespace Broker.Frontend.Tests.Identity;

/// <summary>
/// Keys from an issuer's JWKS URL (a real Kestrel on loopback serving it): fetched when needed,
/// fetched again for an unknown kid (rotation), at most once per JwksMinRefetchInterval, once for
/// all the handshakes waiting; a failing or silent JWKS means 401 for the tokens that needed it,
/// one warning per failed fetch, and nothing worse.
/// </summary>
public sealed class JwksTests : IAsyncLifetime
{
    private const int FetchFailedEventId = 1401;

    private readonly RSA _keyA = RSA.Create(2048);
    private readonly RSA _keyB = RSA.Create(2048);
    private readonly RSA _keyC = RSA.Create(2048);
    private JwksServer _jwks = null!;

    public async Task InitializeAsync()
    {
        _jwks = await JwksServer.StartAsync();
        _jwks.Serve(TestTokens.JwkSet(TestTokens.RsaJwk(_keyA, "A")));
    }

    public async Task DisposeAsync()
    {
        await _jwks.DisposeAsync();
        _keyA.Dispose();
        _keyB.Dispose();
        _keyC.Dispose();
    }

    [Fact]
    public async Task Connect_KeyRotation_NewKidFetchedAndAccepted_RetiredAndUnknownKids401()
    {
        await using var server = await BrokerServer.StartAsync(new Dictionary<string, string?>
        {
            ["Broker:Jwt:JwksUrl"] = _jwks.Url.ToString(),
            ["Broker:Jwt:JwksMinRefetchInterval"] = "00:00:00",
        });

        await using (var first = await TestClient.ConnectAsync(server.Ws("/chat?token=" + TestTokens.Create(TestTokens.Rsa(_keyA, "A"), "alice"))))
        {
            Assert.Equal("alice", first.User);
        }

        _jwks.Serve(TestTokens.JwkSet(TestTokens.RsaJwk(_keyB, "B")));
        await using (var rotated = await TestClient.ConnectAsync(server.Ws("/chat?token=" + TestTokens.Create(TestTokens.Rsa(_keyB, "B"), "bob"))))
        {
            Assert.Equal("bob", rotated.User);
        }

        Assert.Equal(401, await Handshake.RefusedStatusAsync(server, "/chat?token=" + TestTokens.Create(TestTokens.Rsa(_keyC, "C"), "mallory"), "kid"));
        Assert.Equal(401, await Handshake.RefusedStatusAsync(server, "/chat?token=" + TestTokens.Create(TestTokens.Rsa(_keyA, "A"), "alice"), "kid"));

        // A kid the JWKS has, signed by another key, is a bad signature, not a reason to fetch.
        Assert.Equal(401, await Handshake.RefusedStatusAsync(server, "/chat?token=" + TestTokens.Create(TestTokens.Rsa(_keyC, "B"), "mallory"), "signature"));
    }

    [Fact]
    public async Task Validate_UnknownKidWithinMinRefetchInterval_401WithoutAnotherFetch()
    {
        using var authenticator = Authenticator(o => o.JwksMinRefetchInterval = TimeSpan.FromHours(1));
        Assert.True((await authenticator.ValidateAsync(TestTokens.Create(TestTokens.Rsa(_keyA, "A"), "alice"))).Valid);
        _jwks.Serve(TestTokens.JwkSet(TestTokens.RsaJwk(_keyB, "B")));

        var refused = await authenticator.ValidateAsync(TestTokens.Create(TestTokens.Rsa(_keyB, "B"), "bob"));
        var known = await authenticator.ValidateAsync(TestTokens.Create(TestTokens.Rsa(_keyA, "A"), "alice"));

        Assert.False(refused.Valid);
        Assert.True(known.Valid, known.Error);
        Assert.Equal(1, _jwks.Requests);
    }

    [Fact]
    public async Task Validate_ConcurrentTokens_ShareOneFetch()
    {
        using var authenticator = Authenticator(o => o.JwksMinRefetchInterval = TimeSpan.Zero);
        _jwks.Hold();

        var validations = Enumerable.Range(0, 20)
            .Select(i => authenticator.ValidateAsync(TestTokens.Create(TestTokens.Rsa(_keyA, "A"), $"user-{i}")))
            .ToList();
        await _jwks.RequestArrived.Task.WaitAsync(TestClient.DefaultTimeout);
        _jwks.Release();
        var identities = await Task.WhenAll(validations).WaitAsync(TestClient.DefaultTimeout);

        Assert.All(identities, identity => Assert.True(identity.Valid, identity.Error));
        Assert.Equal(1, _jwks.Requests);
    }

    [Fact]
    public async Task Validate_JwksFails_401AndOneWarningPerFailedFetch()
    {
        var logs = new LogCapture();
        using var authenticator = Authenticator(o => o.JwksMinRefetchInterval = TimeSpan.Zero, logs);
        _jwks.Serve("", status: 500);

        var first = await Task.WhenAll(
            authenticator.ValidateAsync(TestTokens.Create(TestTokens.Rsa(_keyA, "A"), "alice")),
            authenticator.ValidateAsync(TestTokens.Create(TestTokens.Rsa(_keyA, "A"), "bob")));
        Assert.All(first, identity => Assert.Contains("could not be fetched", identity.Error, StringComparison.Ordinal));
        Assert.Equal(_jwks.Requests, logs.WithEventId(FetchFailedEventId).Count());

        // Not JSON at all: the same. And once the JWKS answers again, tokens are accepted.
        _jwks.Serve("<html>maintenance</html>");
        Assert.False((await authenticator.ValidateAsync(TestTokens.Create(TestTokens.Rsa(_keyA, "A"), "alice"))).Valid);
        Assert.Equal(_jwks.Requests, logs.WithEventId(FetchFailedEventId).Count());
        Assert.All(logs.WithEventId(FetchFailedEventId), e => Assert.Equal(LogLevel.Warning, e.Level));

        _jwks.Serve(TestTokens.JwkSet(TestTokens.RsaJwk(_keyA, "A")));
        var recovered = await authenticator.ValidateAsync(TestTokens.Create(TestTokens.Rsa(_keyA, "A"), "alice"));
        Assert.True(recovered.Valid, recovered.Error);
    }

    [Fact]
    public async Task Validate_JwksSilent_401AfterTheFetchTimeout()
    {
        var logs = new LogCapture();
        using var authenticator = Authenticator(o => o.JwksFetchTimeout = TimeSpan.FromMilliseconds(300), logs);
        _jwks.Hold();

        var identity = await authenticator.ValidateAsync(TestTokens.Create(TestTokens.Rsa(_keyA, "A"), "alice")).WaitAsync(TestClient.DefaultTimeout);

        Assert.False(identity.Valid);
        Assert.Contains("could not be fetched", identity.Error, StringComparison.Ordinal);
        var warning = Assert.Single(logs.WithEventId(FetchFailedEventId));
        Assert.Contains("no answer within", warning.Message, StringComparison.Ordinal);
    }

    [Theory]
    [InlineData("https://issuer.example/.well-known/jwks.json", true)]
    [InlineData("http://127.0.0.1:8080/jwks", true)]
    [InlineData("http://127.0.0.2/jwks", true)]
    [InlineData("http://localhost/jwks", true)]
    [InlineData("http://[::1]:9000/jwks", true)]
    [InlineData("http://issuer.example/jwks", false)]
    [InlineData("http://10.1.2.3/jwks", false)]
    [InlineData("ftp://issuer.example/jwks", false)]
    [InlineData("jwks.json", false)]
    public void Validation_JwksUrl_HttpsOrLoopbackHttpOnly(string url, bool valid)
    {
        var options = new BrokerOptions();
        options.Jwt.JwksUrl = url;

        var problems = options.Validate().ToList();

        if (valid)
        {
            Assert.Empty(problems);
        }
        else
        {
            var problem = Assert.Single(problems);
            Assert.StartsWith("Broker:Jwt:JwksUrl", problem, StringComparison.Ordinal);
        }
    }

    private TokenAuthenticator Authenticator(Action<JwtOptions> configure, LogCapture? logs = null)
    {
        var options = new BrokerOptions();
        options.Jwt.JwksUrl = _jwks.Url.ToString();
        configure(options.Jwt);
        Assert.Empty(options.Validate());
        return new TokenAuthenticator(Microsoft.Extensions.Options.Options.Create(options), logs?.LoggerFor<TokenAuthenticator>());
    }
}
