using System.Text;
using System.Text.Json;
using Broker.Frontend.Commands;
using Broker.Frontend.Diagnostics;
using Broker.Frontend.Options;
using Broker.Frontend.Protocol;
using Microsoft.AspNetCore.Mvc;
using Microsoft.Extensions.Options;
using Microsoft.Extensions.Primitives;

namespace Broker.Frontend.Hosting;

/// <summary>
/// The server side's HTTP API (protocol.md "Server HTTP API"): publish, send, presence,
/// history and disconnect in a namespace, as the trusted user "server", and the cluster's
/// info. Every command goes through the <see cref="CommandDispatcher"/>, as a socket's frames
/// do; here it becomes an HTTP status and a JSON body. <see cref="ServerApiGuard"/> runs
/// first on every route (the API key rule, JSON only). No CORS headers are ever sent: the API
/// is for servers, and a browser that may not preflight cannot send it JSON.
/// </summary>
public static class ServerApi
{
    public const string Tag = "Server API";

    /// <summary>The most a close frame's reason holds (RFC 6455 5.5: 125 bytes of payload, 2 of them the code).</summary>
    public const int MaxCloseReasonBytes = 123;

    public const string DefaultDisconnectReason = "Disconnected by the server.";

    public static WebApplication MapServerApi(this WebApplication app)
    {
        var api = app.MapGroup("/api").AddEndpointFilter(CountAsync).AddEndpointFilter(GuardAsync).WithTags(Tag);
        api.MapPost("/{ns}/rooms/{room}/publish", PublishAsync)
            .WithName("Publish")
            .WithSummary("Publish the body to a room, as the user \"server\".")
            .WithDescription("The body (any JSON value) becomes the message's data; every member receives a message frame from \"server\". A retry with the same Idempotency-Key (or msgId) is answered with the first seq and duplicate: true, and not delivered again.")
            .Accepts<JsonElement>("application/json")
            .Produces<PublishReply>()
            .ProducesErrors(400, 401, 404, 413, 415, 503);
        api.MapPost("/{ns}/users/{user}/send", SendAsync)
            .WithName("Send")
            .WithSummary("Send the body to a user's connections as a direct message from \"server\".")
            .WithDescription("delivered is the number of the user's connections, on any front-end, the message was queued to (0 when the user has none: not an error).")
            .Accepts<JsonElement>("application/json")
            .Produces<SendReply>()
            .ProducesErrors(400, 401, 404, 413, 415, 503);
        api.MapGet("/{ns}/rooms/{room}/presence", PresenceAsync)
            .WithName("Presence")
            .WithSummary("The room's members: each user once, with its number of connections.")
            .Produces<PresenceReply>()
            .ProducesErrors(400, 401, 403, 404, 415, 503);
        api.MapGet("/{ns}/rooms/{room}/history", HistoryAsync)
            .WithName("History")
            .WithSummary("A page of the room's history: the socket's history reply, without an id.")
            .WithDescription("Without since, the latest limit messages; with since, the first limit messages after it. limit is capped by the namespace's history window and by 100, and the reply by MaxReplyBytes: more is true when the page was cut short; ask again with since = the last seq.")
            .Produces<HistoryReply>()
            .ProducesErrors(400, 401, 404, 415, 503);
        api.MapPost("/{ns}/users/{user}/disconnect", DisconnectAsync)
            .WithName("Disconnect")
            .WithSummary("Close every connection of the user in the namespace, on every front-end, with 1008.")
            .WithDescription("The optional body {\"reason\": \"...\"} is the close frame's reason (1 to 123 bytes of UTF-8); without it, \"Disconnected by the server.\". Frames still queued for those connections are dropped. closed counts the connections closed.")
            .Accepts<DisconnectRequest>(isOptional: true, "application/json")
            .Produces<DisconnectReply>()
            .ProducesErrors(400, 401, 404, 413, 415, 503);
        api.MapGet("/info", InfoAsync)
            .WithName("Info")
            .WithSummary("This front-end, every live front-end with its connections, and every active silo with its rooms and users.")
            .Produces<InfoReply>()
            .ProducesErrors(401, 415, 503);

        // Anything else under /api is answered here (JSON, after the same guard), never by a namespace.
        api.Map("/{**rest}", (HttpContext context) => Problem(new CommandError(
            ErrorCodes.NotFound,
            $"No server API route is {context.Request.Method} {context.Request.Path}; /openapi/v1.json lists them.")))
            .ExcludeFromDescription();
        return app;
    }

    /// <summary>Counts the request (broker.api.requests) by operation and the status it was answered with.</summary>
    private static ValueTask<object?> CountAsync(EndpointFilterInvocationContext invocation, EndpointFilterDelegate next)
    {
        var context = invocation.HttpContext;
        var operation = context.GetEndpoint()?.Metadata.GetMetadata<IEndpointNameMetadata>()?.EndpointName.ToLowerInvariant() ?? "other";
        context.Response.OnCompleted(static state =>
        {
            var (operation, response) = ((string, HttpResponse))state;
            FrontendMetrics.ApiRequest(operation, response.StatusCode);
            return Task.CompletedTask;
        }, (operation, context.Response));
        return next(invocation);
    }

    private static async ValueTask<object?> GuardAsync(EndpointFilterInvocationContext invocation, EndpointFilterDelegate next)
    {
        var context = invocation.HttpContext;
        context.Response.Headers.CacheControl = "no-store";
        if (context.RequestServices.GetRequiredService<ServerApiGuard>().Check(context) is { } refused)
        {
            return Problem(refused);
        }

        if (!context.RequestServices.GetRequiredService<IClusterReadiness>().IsReady)
        {
            // Every route needs the cluster: waiting for it at start, or every silo is gone.
            context.Response.Headers.RetryAfter = ConnectionLimits.RetryAfterSeconds.ToString(System.Globalization.CultureInfo.InvariantCulture);
            return Problem(new CommandError(ErrorCodes.Unavailable, "This node cannot reach the cluster yet; try again shortly."));
        }

        return await next(invocation);
    }

    private static async Task<IResult> PublishAsync(
        HttpContext context,
        string ns,
        string room,
        [FromHeader(Name = "Idempotency-Key")] string? idempotencyKey,
        [FromQuery] string? msgId,
        CommandDispatcher dispatcher,
        IOptions<BrokerOptions> options)
    {
        var o = options.Value;
        if ((Namespace(ns, o, out var caller) ?? Name(room, "room", o) ?? MessageId(context, idempotencyKey, msgId, o)) is { } bad)
        {
            return Problem(bad);
        }

        var (data, unreadable) = await ReadJsonAsync(context, o);
        if (unreadable is not null)
        {
            return Problem(unreadable);
        }

        var published = await dispatcher.PublishAsync(caller, room, data!, idempotencyKey is null ? msgId : Unquote(idempotencyKey));
        return published.Refused is { } refused
            ? Problem(refused)
            : Results.Json(new PublishReply(room, published.Value.Seq, published.Value.Epoch, published.Value.Duplicate));
    }

    private static async Task<IResult> SendAsync(HttpContext context, string ns, string user, CommandDispatcher dispatcher, IOptions<BrokerOptions> options)
    {
        var o = options.Value;
        if ((Namespace(ns, o, out var caller) ?? Name(user, "user", o)) is { } bad)
        {
            return Problem(bad);
        }

        var (data, unreadable) = await ReadJsonAsync(context, o);
        if (unreadable is not null)
        {
            return Problem(unreadable);
        }

        var sent = await dispatcher.SendAsync(caller, user, data!);
        return sent.Refused is { } refused ? Problem(refused) : Results.Json(new SendReply(sent.Value));
    }

    private static async Task<IResult> PresenceAsync(string ns, string room, CommandDispatcher dispatcher, IOptions<BrokerOptions> options)
    {
        var o = options.Value;
        if ((Namespace(ns, o, out var caller) ?? Name(room, "room", o)) is { } bad)
        {
            return Problem(bad);
        }

        var presence = await dispatcher.PresenceAsync(caller, room);
        return presence.Refused is { } refused
            ? Problem(refused)
            : Results.Json(new PresenceReply(room, [.. presence.Value.Select(m => new PresenceMember(m.User, m.Connections))]));
    }

    /// <summary>
    /// The socket path's history reply (FrameWriter.History, no id): the same limit cap, the same
    /// cut at MaxReplyBytes and the same "more", so paging over HTTP and over a socket agree.
    /// </summary>
    private static async Task<IResult> HistoryAsync(HttpContext context, string ns, string room, [FromQuery] string? since, [FromQuery] string? limit, CommandDispatcher dispatcher, IOptions<BrokerOptions> options)
    {
        var o = options.Value;
        if ((Namespace(ns, o, out var caller) ?? Name(room, "room", o)) is { } bad)
        {
            return Problem(bad);
        }

        if (WholeNumber(context.Request.Query, "since", since, 0, "the last seq you have", out var from) is { } badSince)
        {
            return Problem(badSince);
        }

        if (WholeNumber(context.Request.Query, "limit", limit, 1, "messages at most", out var count) is { } badLimit)
        {
            return Problem(badLimit);
        }

        var page = await dispatcher.HistoryAsync(caller, room, from, count is { } c ? (int)Math.Min(c, int.MaxValue) : null);
        if (page.Refused is { } refused)
        {
            return Problem(refused);
        }

        var frame = FrameWriter.History([], room, page.Value.Epoch, page.Value.Messages, page.Value.More, o.MaxReplyBytes);
        return Results.Bytes(frame, "application/json; charset=utf-8");
    }

    private static async Task<IResult> DisconnectAsync(HttpContext context, string ns, string user, CommandDispatcher dispatcher, IOptions<BrokerOptions> options)
    {
        var o = options.Value;
        if ((Namespace(ns, o, out var caller) ?? Name(user, "user", o)) is { } bad)
        {
            return Problem(bad);
        }

        var reason = DefaultDisconnectReason;
        if (await HasBodyAsync(context))
        {
            var (data, unreadable) = await ReadJsonAsync(context, o);
            if ((unreadable ?? CloseReason(data!, ref reason)) is { } badBody)
            {
                return Problem(badBody);
            }
        }

        var closed = await dispatcher.DisconnectUserAsync(caller, user, reason);
        return closed.Refused is { } refused ? Problem(refused) : Results.Json(new DisconnectReply(closed.Value));
    }

    private static async Task<IResult> InfoAsync(ClusterInfo info)
    {
        var reply = await info.GetAsync();
        return reply.Refused is { } refused ? Problem(refused) : Results.Json(reply.Value);
    }

    private static CommandError? Namespace(string ns, BrokerOptions options, out Caller caller)
    {
        var nsOptions = options.FindNamespace(ns);
        caller = nsOptions is null ? null! : Caller.Server(ns, nsOptions);
        return nsOptions is null ? new CommandError(ErrorCodes.NotFound, $"No namespace \"{ns}\" here.") : null;
    }

    private static CommandError? Name(string name, string what, BrokerOptions options) =>
        name.Length == 0 || name.Length > options.MaxNameLength
            ? new CommandError(ErrorCodes.BadRequest, $"The {what} name must be 1 to {options.MaxNameLength} characters.")
            : null;

    /// <summary>
    /// The publish's msgId: the Idempotency-Key header (plain, or a quoted string as the IETF
    /// draft writes it), or the v1 query parameter msgId. Both given must agree.
    /// </summary>
    private static CommandError? MessageId(HttpContext context, string? idempotencyKey, string? msgId, BrokerOptions options)
    {
        if (context.Request.Headers["Idempotency-Key"].Count > 1 || context.Request.Query["msgId"].Count > 1)
        {
            return new CommandError(ErrorCodes.BadRequest, "Give one Idempotency-Key (or one msgId), not several.");
        }

        var fromHeader = idempotencyKey is null ? null : Unquote(idempotencyKey);
        if (fromHeader is not null && msgId is not null && !string.Equals(fromHeader, msgId, StringComparison.Ordinal))
        {
            return new CommandError(ErrorCodes.BadRequest, "The Idempotency-Key header and the msgId query parameter name different ids; give one of them.");
        }

        return (fromHeader ?? msgId) is { } id && (id.Length == 0 || id.Length > options.MaxNameLength)
            ? new CommandError(ErrorCodes.BadRequest, $"The Idempotency-Key (msgId) must be 1 to {options.MaxNameLength} characters.")
            : null;
    }

    /// <summary>"abc" → abc (an RFC 8941 string, with \" and \\ escapes); anything else as it is.</summary>
    private static string Unquote(string value)
    {
        if (value.Length < 2 || value[0] != '"' || value[^1] != '"')
        {
            return value;
        }

        var inner = new StringBuilder(value.Length);
        for (var i = 1; i < value.Length - 1; i++)
        {
            if (value[i] == '\\' && i + 1 < value.Length - 1)
            {
                i++;
            }

            inner.Append(value[i]);
        }

        return inner.ToString();
    }

    /// <summary>An optional whole-number query parameter, at least <paramref name="min"/>: the same rule as the frame's field.</summary>
    private static CommandError? WholeNumber(IQueryCollection query, string name, string? given, long min, string meaning, out long? value)
    {
        value = null;
        if (given is null)
        {
            return null;
        }

        if (query[name].Count == 1 && long.TryParse(given, System.Globalization.NumberStyles.None, System.Globalization.CultureInfo.InvariantCulture, out var parsed) && parsed >= min)
        {
            value = parsed;
            return null;
        }

        return new CommandError(ErrorCodes.BadRequest, $"{name} must be one whole number, {min} or more ({meaning}).");
    }

    /// <summary>The disconnect body's reason; the body is an object with nothing else in it.</summary>
    private static CommandError? CloseReason(byte[] body, ref string reason)
    {
        using var document = JsonDocument.Parse(body);
        if (document.RootElement.ValueKind != JsonValueKind.Object)
        {
            return new CommandError(ErrorCodes.BadRequest, "The body must be a JSON object, like {\"reason\": \"Banned for spam.\"}, or absent.");
        }

        foreach (var property in document.RootElement.EnumerateObject())
        {
            if (property.Name != "reason")
            {
                return new CommandError(ErrorCodes.BadRequest, $"Unknown field \"{property.Name}\"; the body may hold \"reason\" only.");
            }

            if (property.Value.ValueKind != JsonValueKind.String || property.Value.GetString() is not { Length: > 0 } given
                || Encoding.UTF8.GetByteCount(given) > MaxCloseReasonBytes)
            {
                return new CommandError(ErrorCodes.BadRequest, $"\"reason\" must be a string of 1 to {MaxCloseReasonBytes} bytes of UTF-8 (what a close frame holds).");
            }

            reason = given;
        }

        return null;
    }

    private static async Task<bool> HasBodyAsync(HttpContext context)
    {
        if (context.Request.ContentLength is { } length)
        {
            return length > 0;
        }

        // Chunked: a body of no bytes is no body.
        var read = await context.Request.BodyReader.ReadAsync(context.RequestAborted);
        context.Request.BodyReader.AdvanceTo(read.Buffer.Start);
        return !read.Buffer.IsEmpty;
    }

    /// <summary>
    /// The body, at most MaxFrameBytes (413 past it), checked by <see cref="JsonData"/> (400),
    /// without the whitespace around it: it is written into frames as it is.
    /// </summary>
    private static async Task<(byte[]? Data, CommandError? Refused)> ReadJsonAsync(HttpContext context, BrokerOptions options)
    {
        var tooLarge = new CommandError(ErrorCodes.TooLarge, $"The body is larger than {options.MaxFrameBytes} bytes (Broker:MaxFrameBytes).");
        if (context.Request.ContentLength > options.MaxFrameBytes)
        {
            return (null, tooLarge);
        }

        using var body = new MemoryStream();
        var buffer = new byte[8192];
        int read;
        while ((read = await context.Request.Body.ReadAsync(buffer, context.RequestAborted)) > 0)
        {
            body.Write(buffer, 0, read);
            if (body.Length > options.MaxFrameBytes)
            {
                return (null, tooLarge);
            }
        }

        var bytes = body.GetBuffer().AsSpan(0, (int)body.Length);
        return JsonData.FindProblem(bytes) is { } problem
            ? (null, new CommandError(ErrorCodes.BadRequest, problem))
            : (JsonData.Trim(bytes).ToArray(), null);
    }

    private static IResult Problem(CommandError refusal) =>
        Results.Json(new ApiError(refusal.Message, refusal.Code), statusCode: refusal.HttpStatus);

    private static RouteHandlerBuilder ProducesErrors(this RouteHandlerBuilder builder, params int[] statuses)
    {
        foreach (var status in statuses)
        {
            builder.Produces<ApiError>(status);
        }

        return builder;
    }
}
