using System.Net;
using Broker.Frontend.Hosting;
using Broker.Frontend.Options;
using Broker.Frontend.Tests.Infrastructure;

namespace Broker.Frontend.Tests.ServerApi;

/// <summary>
/// The key rule: with Broker:ApiKey, "Authorization: Bearer KEY" on every /api route; without
/// one, direct loopback callers only — never a request a proxy forwarded, nor one naming
/// another host. No CORS header is ever sent, and unknown /api paths are the API's own 404.
/// </summary>
public sealed class AccessTests(BrokerFixture fixture) : IClassFixture<BrokerFixture>
{
    private const string Key = "test-key-0123456789abcdef";

    public static TheoryData<string, string> ForwardingHeaders => new()
    {
        { "X-Forwarded-For", "203.0.113.7" },
        { "Forwarded", "for=203.0.113.7;proto=https" },
        { "X-Real-IP", "203.0.113.7" },
    };

    [Theory]
    [MemberData(nameof(ForwardingHeaders))]
    public async Task NoKey_ForwardedRequest_401SayingToConfigureTheKeyAndNothingDone(string header, string value)
    {
        using var api = new ApiClient(fixture.Server);
        var room = BrokerFixture.UniqueRoom();

        var info = await api.GetAsync("/api/info", r => r.Headers.TryAddWithoutValidation(header, value));
        var publish = await api.PostJsonAsync($"/api/chat/rooms/{room}/publish", "1", r => r.Headers.TryAddWithoutValidation(header, value));

        foreach (var reply in new[] { info, publish })
        {
            Assert.Equal("unauthorized", reply.AssertStatus(HttpStatusCode.Unauthorized).ErrorCode);
            Assert.Contains("Broker:ApiKey", reply.Error, StringComparison.Ordinal);
            Assert.Contains(header, reply.Error, StringComparison.Ordinal);
        }

        var history = (await api.GetAsync($"/api/chat/rooms/{room}/history")).AssertStatus(HttpStatusCode.OK);
        Assert.Empty(history.Json.GetProperty("messages").EnumerateArray());
    }

    [Theory]
    [InlineData("rebound.example", false)]
    [InlineData("rebound.example:8000", false)]
    [InlineData("10.0.0.8", false)]
    [InlineData("localhost", true)]
    [InlineData("LOCALHOST:8000", true)]
    [InlineData("127.0.0.1", true)]
    [InlineData("[::1]:8000", true)]
    public async Task NoKey_HostHeader_OnlyLoopbackNamesServed(string host, bool served)
    {
        using var api = new ApiClient(fixture.Server);

        var reply = await api.GetAsync("/api/info", r => r.Headers.Host = host);

        if (served)
        {
            reply.AssertStatus(HttpStatusCode.OK);
        }
        else
        {
            Assert.Equal("unauthorized", reply.AssertStatus(HttpStatusCode.Unauthorized).ErrorCode);
            Assert.Contains("Broker:ApiKey", reply.Error, StringComparison.Ordinal);
        }
    }

    [Fact]
    public void NoKey_CallerNotOnLoopback_Refused()
    {
        var guard = new ServerApiGuard(Microsoft.Extensions.Options.Options.Create(new BrokerOptions()));
        var context = new DefaultHttpContext();
        context.Request.Method = "GET";
        context.Request.Host = new HostString("localhost");
        context.Connection.RemoteIpAddress = IPAddress.Parse("192.0.2.10");

        var refused = guard.Check(context);
        context.Connection.RemoteIpAddress = IPAddress.IPv6Loopback;
        var allowed = guard.Check(context);

        Assert.Equal("unauthorized", refused?.Code);
        Assert.Equal(StatusCodes.Status401Unauthorized, refused?.HttpStatus);
        Assert.Null(allowed);
    }

    [Fact]
    public async Task WithKey_MissingOrWrongKey401_RightKey200OnEveryRoute()
    {
        await using var server = await BrokerServer.StartAsync(new Dictionary<string, string?> { ["Broker:ApiKey"] = Key });
        using var anonymous = new ApiClient(server);
        using var wrong = new ApiClient(server, Key + "x");
        using var prefix = new ApiClient(server, Key[..^1]);
        using var right = new ApiClient(server, Key);
        var room = BrokerFixture.UniqueRoom();
        (HttpMethod Method, string Path)[] routes =
        [
            (HttpMethod.Post, $"/api/chat/rooms/{room}/publish"),
            (HttpMethod.Post, "/api/chat/users/someone/send"),
            (HttpMethod.Get, $"/api/chat/rooms/{room}/presence"),
            (HttpMethod.Get, $"/api/chat/rooms/{room}/history"),
            (HttpMethod.Post, "/api/chat/users/someone/disconnect"),
            (HttpMethod.Get, "/api/info"),
        ];

        foreach (var (method, path) in routes)
        {
            foreach (var client in new[] { anonymous, wrong, prefix })
            {
                var refused = await client.SendAsync(method, path, method == HttpMethod.Post ? ApiClient.Json("1") : null);
                Assert.Equal("unauthorized", refused.AssertStatus(HttpStatusCode.Unauthorized).ErrorCode);
            }

            (await right.SendAsync(method, path, method == HttpMethod.Post ? ApiClient.Json(path.EndsWith("disconnect", StringComparison.Ordinal) ? "{}" : "1") : null)).AssertStatus(HttpStatusCode.OK);
        }

        // The scheme's case does not matter; a proxy in front is fine once the key is there.
        var lower = await anonymous.GetAsync("/api/info", r => r.Headers.TryAddWithoutValidation("Authorization", "bearer " + Key));
        var proxied = await right.GetAsync("/api/info", r => r.Headers.TryAddWithoutValidation("X-Forwarded-For", "203.0.113.7"));
        lower.AssertStatus(HttpStatusCode.OK);
        proxied.AssertStatus(HttpStatusCode.OK);

        // Only the one right publish happened.
        var history = (await right.GetAsync($"/api/chat/rooms/{room}/history")).Json;
        Assert.Single(history.GetProperty("messages").EnumerateArray());
    }

    [Fact]
    public async Task Cors_PreflightAndCrossOriginRequests_NeverGetCorsHeaders()
    {
        using var api = new ApiClient(fixture.Server);

        var preflight = await api.SendAsync(HttpMethod.Options, "/api/chat/rooms/r/publish", null, r =>
        {
            r.Headers.TryAddWithoutValidation("Origin", "https://page.example");
            r.Headers.TryAddWithoutValidation("Access-Control-Request-Method", "POST");
            r.Headers.TryAddWithoutValidation("Access-Control-Request-Headers", "content-type");
        });
        var post = await api.PostJsonAsync("/api/chat/rooms/r/publish", "1", r => r.Headers.TryAddWithoutValidation("Origin", "https://page.example"));
        var get = await api.GetAsync("/api/info", r => r.Headers.TryAddWithoutValidation("Origin", "https://page.example"));

        Assert.False(preflight.Status is >= HttpStatusCode.OK and < HttpStatusCode.Ambiguous, $"A preflight was answered {(int)preflight.Status}.");
        post.AssertStatus(HttpStatusCode.OK);
        get.AssertStatus(HttpStatusCode.OK);
        foreach (var reply in new[] { preflight, post, get })
        {
            Assert.DoesNotContain(reply.Headers.Keys, h => h.StartsWith("Access-Control-", StringComparison.OrdinalIgnoreCase));
            Assert.Equal("no-store", reply.Headers["Cache-Control"]);
        }
    }

    [Theory]
    [InlineData("GET", "/api/chat/rooms/r/publish")]
    [InlineData("POST", "/api/chat/rooms/r/presence")]
    [InlineData("GET", "/api/chat")]
    [InlineData("GET", "/api")]
    [InlineData("DELETE", "/api/info")]
    public async Task UnknownRoute_JsonNotFoundNeverANamespace(string method, string path)
    {
        using var api = new ApiClient(fixture.Server);

        var reply = await api.SendAsync(new HttpMethod(method), path, method == "POST" ? ApiClient.Json("1") : null);

        Assert.Equal("not_found", reply.AssertStatus(HttpStatusCode.NotFound).ErrorCode);
        Assert.Contains("/openapi/v1.json", reply.Error, StringComparison.Ordinal);
    }
}
