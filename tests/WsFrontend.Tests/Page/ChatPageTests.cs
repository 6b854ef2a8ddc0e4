using System.Globalization;
using System.Net;
using System.Net.Http.Headers;
using System.Text;
using System.Text.RegularExpressions;
using Broker.Frontend.Options;
using Broker.Frontend.Tests.Infrastructure;
using Broker.Frontend.Tests.Robustness;

namespace Broker.Frontend.Tests.Page;

/// <summary>
/// The chat page (docs/chat-page.md): a plain GET / answers it and /_broker/ its files and the
/// JavaScript client of clients/js/src, with sane caching and a strict CSP; every handshake to /
/// (the default namespace) behaves as before, on every transport; Broker:ChatPage=false turns it off.
/// The page itself, in a browser: tests/clients/page.test.mjs.
/// </summary>
public sealed partial class ChatPageTests(ChatPageTests.Servers servers) : IClassFixture<ChatPageTests.Servers>
{
    private const string Default = "default";
    private const string KestrelSockets = "kestrel-sockets";
    private const string AspNetCore = "aspnetcore";
    private const string PageOff = "page-off";

    [Fact]
    public async Task Get_Root_ServesThePageWithCacheAndSecurityHeaders()
    {
        var server = await servers.ForAsync(Default);
        using var http = new HttpClient { BaseAddress = server.HttpBase };

        using var response = await http.GetAsync(new Uri("/", UriKind.Relative));
        var body = await response.Content.ReadAsStringAsync();

        Assert.Equal(HttpStatusCode.OK, response.StatusCode);
        Assert.Equal("text/html; charset=utf-8", response.Content.Headers.ContentType?.ToString());
        Assert.True(response.Headers.CacheControl?.NoCache, "Cache-Control: no-cache");
        Assert.NotNull(response.Headers.ETag);
        Assert.Equal("nosniff", Header(response, "X-Content-Type-Options"));
        var csp = Header(response, "Content-Security-Policy");
        Assert.Contains("default-src 'none'", csp, StringComparison.Ordinal);
        Assert.Contains("script-src 'self';", csp, StringComparison.Ordinal);
        Assert.Contains($"connect-src 'self' ws://127.0.0.1:{server.HttpBase.Port} wss://127.0.0.1:{server.HttpBase.Port};", csp, StringComparison.Ordinal);
        Assert.Contains("frame-ancestors 'none'", csp, StringComparison.Ordinal);
        Assert.DoesNotContain("unsafe", csp, StringComparison.Ordinal);
        Assert.Contains("<script type=\"module\" src=\"/_broker/chat.js\"></script>", body, StringComparison.Ordinal);
    }

    [Fact]
    public async Task Get_RootWithItsETag_NotModified()
    {
        var server = await servers.ForAsync(Default);
        using var http = new HttpClient { BaseAddress = server.HttpBase };
        using var first = await http.GetAsync(new Uri("/", UriKind.Relative));

        using var again = new HttpRequestMessage(HttpMethod.Get, new Uri("/", UriKind.Relative));
        again.Headers.IfNoneMatch.Add(first.Headers.ETag!);
        using var response = await http.SendAsync(again);

        Assert.Equal(HttpStatusCode.NotModified, response.StatusCode);
        Assert.Empty(await response.Content.ReadAsByteArrayAsync());
        Assert.Equal(first.Headers.ETag, response.Headers.ETag);
    }

    [Fact]
    public async Task Head_Root_HeadersWithoutBody()
    {
        var server = await servers.ForAsync(Default);
        using var http = new HttpClient { BaseAddress = server.HttpBase };

        using var response = await http.SendAsync(new HttpRequestMessage(HttpMethod.Head, new Uri("/", UriKind.Relative)));

        Assert.Equal(HttpStatusCode.OK, response.StatusCode);
        Assert.Equal("text/html; charset=utf-8", response.Content.Headers.ContentType?.ToString());
        Assert.Empty(await response.Content.ReadAsByteArrayAsync());
    }

    /// <summary>Every file the page names, and every module the client imports, is served with its type; the client's are the bytes of clients/js/src.</summary>
    [Fact]
    public async Task Get_EveryAssetOfThePageAndEveryClientModule_ServedFromTheOneCopyInTheRepo()
    {
        var server = await servers.ForAsync(Default);
        using var http = new HttpClient { BaseAddress = server.HttpBase };
        var page = await http.GetStringAsync(new Uri("/", UriKind.Relative));
        var chat = await http.GetStringAsync(new Uri("/_broker/chat.js", UriKind.Relative));

        var assets = AssetReference().Matches(page).Select(m => m.Groups["path"].Value).ToList();
        Assert.Equal(["/_broker/icon.svg", "/_broker/chat.css", "/_broker/chat.js"], assets);
        Assert.Contains("from '/_broker/client/index.js'", chat, StringComparison.Ordinal);

        var clientSource = Path.Combine(RepoRoot(), "clients", "js", "src");
        var modules = Directory.GetFiles(clientSource, "*.js").Select(Path.GetFileName).Order(StringComparer.Ordinal).ToList();
        Assert.Contains("index.js", modules);
        foreach (var module in modules)
        {
            using var response = await http.GetAsync(new Uri("/_broker/client/" + module, UriKind.Relative));
            Assert.Equal(HttpStatusCode.OK, response.StatusCode);
            Assert.Equal("text/javascript; charset=utf-8", response.Content.Headers.ContentType?.ToString());
            Assert.Equal("nosniff", Header(response, "X-Content-Type-Options"));
            Assert.Equal(await File.ReadAllBytesAsync(Path.Combine(clientSource, module!)), await response.Content.ReadAsByteArrayAsync());

            // Every relative import of a served module is served too.
            var text = Encoding.UTF8.GetString(await File.ReadAllBytesAsync(Path.Combine(clientSource, module!)));
            foreach (var import in RelativeImport().Matches(text).Select(m => m.Groups["file"].Value))
            {
                Assert.Contains(import, modules);
            }
        }

        foreach (var (path, type) in new[] { ("/_broker/chat.css", "text/css; charset=utf-8"), ("/_broker/icon.svg", "image/svg+xml"), ("/_broker/chat.js", "text/javascript; charset=utf-8") })
        {
            using var response = await http.GetAsync(new Uri(path, UriKind.Relative));
            Assert.Equal(HttpStatusCode.OK, response.StatusCode);
            Assert.Equal(type, response.Content.Headers.ContentType?.ToString());
            Assert.True(response.Headers.CacheControl?.NoCache, $"{path}: Cache-Control: no-cache");
        }
    }

    [Theory]
    [InlineData("/_broker/nope.js")]
    [InlineData("/_broker/")]
    [InlineData("/_broker/../appsettings.json")]
    [InlineData("/_broker/client/../../appsettings.json")]
    public async Task Get_UnknownFileUnderBroker_404WithOneLine(string path)
    {
        var server = await servers.ForAsync(Default);
        using var client = await WireConnection.ConnectAsync(server);

        await client.WriteAsync(WireConnection.GetRequest(server, path));

        var response = await client.ReadHttpResponseAsync($"the response to GET {path}");
        Assert.True(response.Status == 404, $"Expected 404, got: {response.Head}{response.Body}");
        Assert.DoesNotContain("Logging", response.Body, StringComparison.Ordinal);
    }

    /// <summary>An upgrade to / is the default namespace, whoever owns the socket.</summary>
    [Theory]
    [InlineData(Default)]
    [InlineData(KestrelSockets)]
    [InlineData(AspNetCore)]
    [InlineData(PageOff)]
    public async Task Upgrade_Root_StillTheDefaultNamespace(string kind)
    {
        var server = await servers.ForAsync(kind);

        await using var client = await TestClient.ConnectAsync(server.Ws("/?user=page-test"));

        Assert.Equal("default", client.Welcome.GetProperty("namespace").GetString());
        Assert.Equal("page-test", client.User);
    }

    /// <summary>Anything to / that is not a plain GET or HEAD is answered as before the page: the namespace's refusal.</summary>
    [Theory]
    [InlineData(Default)]
    [InlineData(KestrelSockets)]
    [InlineData(AspNetCore)]
    public async Task UpgradeToRootWithVersion8_426NotThePage(string kind)
    {
        var server = await servers.ForAsync(kind);
        using var client = await WireConnection.ConnectAsync(server);

        await client.WriteAsync(WireConnection.UpgradeRequest(server, "/?user=a", WireConnection.NewKey(), version: "8"));

        var response = await client.ReadHttpResponseAsync("the response to an upgrade to / with Sec-WebSocket-Version: 8");
        Assert.True(response.Status == 426, $"Expected 426, got: {response.Head}{response.Body}");
        Assert.Equal("13", response.Header("Sec-WebSocket-Version"));
        Assert.DoesNotContain("<html", response.Body, StringComparison.Ordinal);
    }

    [Fact]
    public async Task Post_Root_426AsBefore()
    {
        var server = await servers.ForAsync(Default);
        using var http = new HttpClient { BaseAddress = server.HttpBase };

        using var response = await http.PostAsync(new Uri("/", UriKind.Relative), new StringContent("x"));

        Assert.Equal((HttpStatusCode)426, response.StatusCode);
    }

    [Theory]
    [InlineData("/chat", 426)]
    [InlineData("/notifications", 426)]
    [InlineData("/nope", 404)]
    public async Task Get_Namespace_AnsweredAsBefore(string path, int status)
    {
        var server = await servers.ForAsync(Default);
        using var http = new HttpClient { BaseAddress = server.HttpBase };

        using var response = await http.GetAsync(new Uri(path, UriKind.Relative));

        Assert.Equal((HttpStatusCode)status, response.StatusCode);
        Assert.Equal("text/plain; charset=utf-8", response.Content.Headers.ContentType?.ToString());
    }

    [Fact]
    public async Task PageOff_GetRoot426AndNoFiles()
    {
        var server = await servers.ForAsync(PageOff);
        using var http = new HttpClient { BaseAddress = server.HttpBase };

        using var root = await http.GetAsync(new Uri("/", UriKind.Relative));
        using var script = await http.GetAsync(new Uri("/_broker/client/index.js", UriKind.Relative));

        Assert.Equal((HttpStatusCode)426, root.StatusCode);
        Assert.Equal(HttpStatusCode.NotFound, script.StatusCode);
    }

    [Fact]
    public void Validate_NamespaceNamedLikeThePagesFolder_Refused()
    {
        var options = new BrokerOptions();
        options.Namespaces["_broker"] = new NamespaceOptions();

        var failure = Assert.Single(options.Validate());

        Assert.Contains("Broker:Namespaces:_broker", failure, StringComparison.Ordinal);
    }

    [Theory]
    [InlineData("example.com", "connect-src 'self' ws://example.com wss://example.com;")]
    [InlineData("[::1]:8000", "connect-src 'self' ws://[::1]:8000 wss://[::1]:8000;")]
    [InlineData("", "connect-src 'self';")]
    [InlineData("a.example;script-src *", "connect-src 'self';")]
    public void ContentSecurityPolicy_HostOnlyWhenPlain(string host, string expected)
    {
        var csp = Broker.Frontend.Hosting.ChatPage.ContentSecurityPolicy(new HostString(host));

        Assert.Contains(expected, csp, StringComparison.Ordinal);
        Assert.Single(Regex.Matches(csp, "script-src"));
    }

    private static string Header(HttpResponseMessage response, string name) =>
        response.Headers.TryGetValues(name, out var values) ? string.Join(", ", values) : string.Empty;

    private static string RepoRoot()
    {
        for (var dir = new DirectoryInfo(AppContext.BaseDirectory); dir is not null; dir = dir.Parent)
        {
            if (File.Exists(Path.Combine(dir.FullName, "Broker.sln")))
            {
                return dir.FullName;
            }
        }

        throw new InvalidOperationException("Broker.sln not found above " + AppContext.BaseDirectory);
    }

    [GeneratedRegex("""(?:href|src)="(?<path>/[^"]+)""")]
    private static partial Regex AssetReference();

    [GeneratedRegex("""from '\./(?<file>[^']+)'""")]
    private static partial Regex RelativeImport();

    /// <summary>One server per kind, started on first use.</summary>
    public sealed class Servers : IAsyncLifetime
    {
        private readonly Dictionary<string, Task<BrokerServer>> _started = new(StringComparer.Ordinal);
        private readonly Lock _gate = new();

        public Task<BrokerServer> ForAsync(string kind)
        {
            lock (_gate)
            {
                if (!_started.TryGetValue(kind, out var server))
                {
                    server = BrokerServer.StartAsync(kind switch
                    {
                        KestrelSockets => new Dictionary<string, string?> { ["Broker:SocketTransport"] = "Kestrel" },
                        AspNetCore => new Dictionary<string, string?> { ["Broker:WebSocketTransport"] = "AspNetCore" },
                        PageOff => new Dictionary<string, string?> { ["Broker:ChatPage"] = "false" },
                        _ => new Dictionary<string, string?>(),
                    });
                    _started[kind] = server;
                }

                return server;
            }
        }

        public Task InitializeAsync() => Task.CompletedTask;

        public async Task DisposeAsync()
        {
            foreach (var started in _started.Values)
            {
                await (await started).DisposeAsync();
            }
        }
    }
}
