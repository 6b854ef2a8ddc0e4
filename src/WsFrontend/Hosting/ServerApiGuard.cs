using System.Net;
using System.Security.Cryptography;
using System.Text;
using Broker.Frontend.Commands;
using Broker.Frontend.Options;
using Broker.Frontend.Protocol;
using Microsoft.AspNetCore.Http.Features;
using Microsoft.Extensions.Options;
using Microsoft.Net.Http.Headers;

namespace Broker.Frontend.Hosting;

/// <summary>
/// The rules every /api request passes before its handler runs (protocol.md "Server HTTP API",
/// security.md "Server API"):
/// <list type="bullet">
/// <item>With Broker:ApiKey set, "Authorization: Bearer KEY" (compared in constant time).</item>
/// <item>Without a key, only a direct loopback caller: the connection comes from a loopback
/// address, the request names a loopback host (a page that rebinds its own DNS name to
/// 127.0.0.1 still sends its name), and it carries no Forwarded, X-Forwarded-For or X-Real-IP
/// header (a proxy on this host makes every caller look local; those headers say one is there).</item>
/// <item>JSON only: a POST, and any request with a body, says Content-Type: application/json
/// (or application/*+json; a charset, when given, is utf-8). A web page can send text/plain or
/// a form to any address without asking it first ("simple" requests); JSON it can only send
/// after a CORS preflight, which this API never answers.</item>
/// </list>
/// </summary>
public sealed class ServerApiGuard
{
    /// <summary>Headers a proxy adds; a request that has one did not come straight from its sender.</summary>
    private static readonly string[] ForwardingHeaders = ["Forwarded", "X-Forwarded-For", "X-Real-IP"];

    private readonly byte[]? _keyHash;

    public ServerApiGuard(IOptions<BrokerOptions> options) =>
        _keyHash = string.IsNullOrEmpty(options.Value.ApiKey) ? null : SHA256.HashData(Encoding.UTF8.GetBytes(options.Value.ApiKey));

    /// <summary>The refusal for this request, or null when it may go on.</summary>
    public CommandError? Check(HttpContext context) => Access(context) ?? MediaType(context);

    private CommandError? Access(HttpContext context)
    {
        if (_keyHash is not null)
        {
            return KeyMatches(context.Request.Headers.Authorization.ToString())
                ? null
                : new CommandError(ErrorCodes.Unauthorized, "Present the API key as \"Authorization: Bearer KEY\" (Broker:ApiKey).");
        }

        foreach (var header in ForwardingHeaders)
        {
            if (context.Request.Headers.ContainsKey(header))
            {
                return new CommandError(ErrorCodes.Unauthorized, $"This request came through a proxy ({header} header): without Broker:ApiKey only direct loopback callers are served; configure Broker:ApiKey and send \"Authorization: Bearer KEY\".");
            }
        }

        if (context.Connection.RemoteIpAddress is not { } remote || !IPAddress.IsLoopback(remote))
        {
            return new CommandError(ErrorCodes.Unauthorized, "Without Broker:ApiKey only loopback callers are served; configure Broker:ApiKey and send \"Authorization: Bearer KEY\".");
        }

        if (!IsLoopbackHost(context.Request.Host))
        {
            return new CommandError(ErrorCodes.Unauthorized, "Without Broker:ApiKey the request must name a loopback host (localhost, 127.0.0.1 or [::1]); configure Broker:ApiKey and send \"Authorization: Bearer KEY\" to call it by another name.");
        }

        return null;
    }

    private bool KeyMatches(string authorization)
    {
        const string Scheme = "Bearer ";
        if (!authorization.StartsWith(Scheme, StringComparison.OrdinalIgnoreCase))
        {
            return false;
        }

        // Hashes of equal length: the comparison takes the same time whatever the key presented.
        var presented = SHA256.HashData(Encoding.UTF8.GetBytes(authorization[Scheme.Length..].Trim()));
        return CryptographicOperations.FixedTimeEquals(presented, _keyHash);
    }

    private static bool IsLoopbackHost(HostString host)
    {
        if (!host.HasValue)
        {
            // HTTP/1.0 without Host: no browser sends that.
            return true;
        }

        var name = host.Host.Trim('[', ']');
        return name.Equals("localhost", StringComparison.OrdinalIgnoreCase)
            || (IPAddress.TryParse(name, out var address) && IPAddress.IsLoopback(address));
    }

    private static CommandError? MediaType(HttpContext context)
    {
        var request = context.Request;
        var hasBody = context.Features.Get<IHttpRequestBodyDetectionFeature>()?.CanHaveBody ?? request.ContentLength > 0;
        if (!HttpMethods.IsPost(request.Method) && !hasBody)
        {
            return null;
        }

        var contentType = request.ContentType;
        if (string.IsNullOrEmpty(contentType))
        {
            return new CommandError(ErrorCodes.UnsupportedMediaType, "Send \"Content-Type: application/json\" (every POST carries it, even one without a body).");
        }

        if (!MediaTypeHeaderValue.TryParse(contentType, out var media) || !IsJson(media.MediaType.Value))
        {
            return new CommandError(ErrorCodes.UnsupportedMediaType, $"The body must be JSON, sent as \"Content-Type: application/json\", not {Quote(contentType)}.");
        }

        if (media.Charset.HasValue && !media.Charset.Equals("utf-8", StringComparison.OrdinalIgnoreCase))
        {
            return new CommandError(ErrorCodes.UnsupportedMediaType, $"JSON bodies are UTF-8; the charset {Quote(media.Charset.Value)} is not accepted.");
        }

        return null;
    }

    private static bool IsJson(string? mediaType) =>
        mediaType is not null
        && (mediaType.Equals("application/json", StringComparison.OrdinalIgnoreCase)
            || (mediaType.StartsWith("application/", StringComparison.OrdinalIgnoreCase) && mediaType.EndsWith("+json", StringComparison.OrdinalIgnoreCase)));

    /// <summary>A header value quoted for a sentence, cut short: it is the caller's text.</summary>
    private static string Quote(string? value) =>
        "\"" + (value is { Length: > 60 } ? value[..60] + "…" : value) + "\"";
}
