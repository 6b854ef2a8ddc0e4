using System.Net;
using System.Text.Json;
using Broker.Frontend.Commands;
using Broker.Frontend.Options;
using Microsoft.Extensions.Options;

namespace Broker.Frontend.Hosting;

/// <summary>
/// The server side's HTTP API: publish to a room or send to a user without a socket — the way
/// an application pushes into a namespace where clients may not publish (notifications).
/// With Broker:ApiKey set, callers present "Authorization: Bearer KEY"; without it only
/// loopback callers are served.
/// </summary>
public static class ServerApi
{
    public static WebApplication MapServerApi(this WebApplication app)
    {
        app.MapPost("/api/{ns}/rooms/{room}/publish", PublishAsync);
        app.MapPost("/api/{ns}/users/{user}/send", SendAsync);
        return app;
    }

    private static async Task<IResult> PublishAsync(HttpContext context, string ns, string room, string? msgId, CommandDispatcher dispatcher, IOptions<BrokerOptions> options)
    {
        var (refusal, nsOptions, data) = await ReadAsync(context, ns, room, options.Value);
        if (refusal is not null)
        {
            return refusal;
        }

        if (msgId is { Length: 0 } || msgId?.Length > options.Value.MaxNameLength)
        {
            return Problem(HttpStatusCode.BadRequest, $"msgId must be 1 to {options.Value.MaxNameLength} characters.");
        }

        var published = await dispatcher.PublishAsync(Caller.Server(ns, nsOptions!), room, data!, msgId);
        return published.Refused is { } refused
            ? Problem(refused)
            : Results.Json(new { room, seq = published.Value.Seq, epoch = published.Value.Epoch, duplicate = published.Value.Duplicate });
    }

    private static async Task<IResult> SendAsync(HttpContext context, string ns, string user, CommandDispatcher dispatcher, IOptions<BrokerOptions> options)
    {
        var (refusal, nsOptions, data) = await ReadAsync(context, ns, user, options.Value);
        if (refusal is not null)
        {
            return refusal;
        }

        var sent = await dispatcher.SendAsync(Caller.Server(ns, nsOptions!), user, data!);
        return sent.Refused is { } refused ? Problem(refused) : Results.Json(new { delivered = sent.Value });
    }

    /// <summary>Checks the caller, the namespace and the name, and reads the body as raw JSON.</summary>
    private static async Task<(IResult? Refusal, NamespaceOptions? Namespace, byte[]? Data)> ReadAsync(HttpContext context, string ns, string name, BrokerOptions options)
    {
        if (!Authorized(context, options))
        {
            return (Problem(HttpStatusCode.Unauthorized, "Present the API key as \"Authorization: Bearer KEY\" (or call from loopback when no key is configured)."), null, null);
        }

        var nsOptions = options.FindNamespace(ns);
        if (nsOptions is null)
        {
            return (Problem(HttpStatusCode.NotFound, $"No namespace \"{ns}\" here."), null, null);
        }

        if (name.Length == 0 || name.Length > options.MaxNameLength)
        {
            return (Problem(HttpStatusCode.BadRequest, $"Names must be 1 to {options.MaxNameLength} characters."), null, null);
        }

        using var body = new MemoryStream();
        var buffer = new byte[8192];
        int read;
        while ((read = await context.Request.Body.ReadAsync(buffer, context.RequestAborted)) > 0)
        {
            body.Write(buffer, 0, read);
            if (body.Length > options.MaxFrameBytes)
            {
                return (Problem(HttpStatusCode.RequestEntityTooLarge, $"The body is larger than {options.MaxFrameBytes} bytes."), null, null);
            }
        }

        var data = body.ToArray();
        try
        {
            using var _ = JsonDocument.Parse(data);
        }
        catch (JsonException)
        {
            return (Problem(HttpStatusCode.BadRequest, "The body must be one JSON value: it becomes the message's data."), null, null);
        }

        return (null, nsOptions, data);
    }

    private static bool Authorized(HttpContext context, BrokerOptions options)
    {
        if (string.IsNullOrEmpty(options.ApiKey))
        {
            return context.Connection.RemoteIpAddress is { } remote && IPAddress.IsLoopback(remote);
        }

        var header = context.Request.Headers.Authorization.ToString();
        return header.StartsWith("Bearer ", StringComparison.Ordinal)
            && System.Security.Cryptography.CryptographicOperations.FixedTimeEquals(
                System.Text.Encoding.UTF8.GetBytes(header[7..]),
                System.Text.Encoding.UTF8.GetBytes(options.ApiKey));
    }

    private static IResult Problem(CommandError refusal) =>
        Results.Json(new { error = refusal.Message, code = refusal.Code }, statusCode: refusal.HttpStatus);

    private static IResult Problem(HttpStatusCode status, string message) =>
        Results.Json(new { error = message }, statusCode: (int)status);
}
