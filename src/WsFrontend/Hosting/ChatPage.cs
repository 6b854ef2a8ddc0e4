using System.Collections.Frozen;
using System.Security.Cryptography;
using Broker.Frontend.Options;
using Microsoft.Extensions.Options;

namespace Broker.Frontend.Hosting;

/// <summary>
/// The chat page (docs/chat-page.md): a plain GET <c>/</c> answers <c>index.html</c>; its script,
/// style and the JavaScript client (clients/js/src, embedded at build time) are served under
/// <see cref="Prefix"/>, a path no namespace may take. An upgrade to <c>/</c> stays the
/// <c>default</c> namespace, and anything but a plain GET or HEAD of <c>/</c> is the namespace's
/// too (426 for a POST, 400 for an HTTP/1.0 upgrade …), so every handshake behaves as before.
/// Every file is answered with an ETag and <c>Cache-Control: no-cache</c> (revalidated on each
/// load, 304 when unchanged: a new build is picked up at once), <c>nosniff</c>, and the page
/// with a Content-Security-Policy that lets it load only its own files and open WebSockets to
/// its own host.
/// </summary>
public static class ChatPage
{
    /// <summary>The first path segment of the page's files (reserved: see <see cref="BrokerOptions.ReservedNamespaceNames"/>).</summary>
    public const string Segment = "_broker";

    public const string Prefix = "/" + Segment + "/";

    /// <summary>Manifest resource names start with this: "page/…" is src/WsFrontend/ChatPage, "client/…" is clients/js/src.</summary>
    private static readonly string[] ResourceFolders = ["page/", "client/"];

    private static readonly Lazy<FrozenDictionary<string, Asset>> Assets = new(Load);

    /// <summary>A file as served: its bytes, content type and strong ETag.</summary>
    public sealed record Asset(byte[] Body, string ContentType, string ETag);

    /// <summary>The files served, by request path ("/" is the page); for tests and diagnostics.</summary>
    public static IReadOnlyDictionary<string, Asset> Files => Assets.Value;

    public static WebApplication MapChatPage(this WebApplication app, Func<HttpContext, Task> namespaceEndpoint)
    {
        var options = app.Services.GetRequiredService<IOptions<BrokerOptions>>().Value;
        if (!options.ChatPage)
        {
            return app;
        }

        app.MapMethods("/", [HttpMethods.Get, HttpMethods.Head], context =>
            IsPlainRequest(context.Request) ? ServeAsync(context, "/") : namespaceEndpoint(context))
            .ExcludeFromDescription();
        app.MapMethods(Prefix + "{**file}", [HttpMethods.Get, HttpMethods.Head], context =>
            ServeAsync(context, context.Request.Path.Value ?? string.Empty))
            .ExcludeFromDescription();
        return app;
    }

    /// <summary>
    /// A request for the page, not a handshake: no Upgrade header and no "upgrade" in Connection.
    /// Anything that looks like an attempt to upgrade, valid or not, goes to the namespace, which
    /// answers it as it always did.
    /// </summary>
    private static bool IsPlainRequest(HttpRequest request) =>
        request.Headers.Upgrade.Count == 0
        && !request.Headers.Connection.ToString().Contains("upgrade", StringComparison.OrdinalIgnoreCase);

    private static Task ServeAsync(HttpContext context, string path)
    {
        var response = context.Response;
        response.Headers.XContentTypeOptions = "nosniff";
        if (!Assets.Value.TryGetValue(path, out var asset))
        {
            response.StatusCode = StatusCodes.Status404NotFound;
            response.ContentType = "text/plain; charset=utf-8";
            return response.WriteAsync($"No file {path} here.\n");
        }

        response.Headers.CacheControl = "no-cache";
        response.Headers.ETag = asset.ETag;
        response.Headers["Referrer-Policy"] = "no-referrer";
        if (path == "/")
        {
            response.Headers.ContentSecurityPolicy = ContentSecurityPolicy(context.Request.Host);
            response.Headers.XFrameOptions = "DENY";
        }

        if (context.Request.Headers.IfNoneMatch.Any(tag => tag is not null && (tag.Contains(asset.ETag, StringComparison.Ordinal) || tag.Trim() == "*")))
        {
            response.StatusCode = StatusCodes.Status304NotModified;
            return Task.CompletedTask;
        }

        response.ContentType = asset.ContentType;
        response.ContentLength = asset.Body.Length;
        return HttpMethods.IsHead(context.Request.Method) ? Task.CompletedTask : response.Body.WriteAsync(asset.Body).AsTask();
    }

    /// <summary>
    /// Only this host's own files and, for connections, this host's WebSockets: 'self' covers
    /// ws:/wss: to the same host in CSP Level 3 browsers; the explicit ws://host and wss://host
    /// cover the others. A Host that is not a plain host[:port] gets 'self' alone.
    /// </summary>
    public static string ContentSecurityPolicy(HostString host)
    {
        var connect = "'self'";
        var value = host.Value;
        if (!string.IsNullOrEmpty(value) && value.All(c => char.IsAsciiLetterOrDigit(c) || c is '.' or '-' or ':' or '[' or ']'))
        {
            connect += $" ws://{value} wss://{value}";
        }

        return "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self'; "
            + $"connect-src {connect}; base-uri 'none'; form-action 'none'; frame-ancestors 'none'";
    }

    private static FrozenDictionary<string, Asset> Load()
    {
        var assembly = typeof(ChatPage).Assembly;
        var files = new Dictionary<string, Asset>(StringComparer.Ordinal);
        foreach (var name in assembly.GetManifestResourceNames())
        {
            var folder = ResourceFolders.FirstOrDefault(f => name.StartsWith(f, StringComparison.Ordinal));
            if (folder is null)
            {
                continue;
            }

            using var stream = assembly.GetManifestResourceStream(name)!;
            using var copy = new MemoryStream();
            stream.CopyTo(copy);
            var body = copy.ToArray();
            var etag = "\"" + Convert.ToHexStringLower(SHA256.HashData(body))[..32] + "\"";
            var asset = new Asset(body, ContentTypeOf(name), etag);
            if (name == "page/index.html")
            {
                files["/"] = asset;
            }
            else
            {
                // page/chat.js → /_broker/chat.js; client/index.js → /_broker/client/index.js
                files[Prefix + (folder == "page/" ? name[folder.Length..] : name)] = asset;
            }
        }

        return files.ToFrozenDictionary(StringComparer.Ordinal);
    }

    private static string ContentTypeOf(string name) => Path.GetExtension(name) switch
    {
        ".html" => "text/html; charset=utf-8",
        ".js" or ".mjs" => "text/javascript; charset=utf-8",
        ".css" => "text/css; charset=utf-8",
        ".svg" => "image/svg+xml",
        _ => "application/octet-stream",
    };
}
