using System.Net.WebSockets;
using Broker.Frontend.Connections;
using Microsoft.Extensions.Options;

namespace Broker.Frontend.Hosting;

/// <summary>
/// The HTTP surface: one WebSocket endpoint per namespace ("/" is "default"), the
/// seed-compatible "/echo", and "/healthz". Everything refused is refused at the handshake,
/// with an HTTP status, before any socket exists.
/// </summary>
public static partial class BrokerEndpoints
{
    private static readonly byte[] ServerReceived = "Server received: "u8.ToArray();

    public static WebApplication MapBroker(this WebApplication app)
    {
        var options = app.Services.GetRequiredService<IOptions<BrokerOptions>>().Value;
        app.UseWebSockets(new WebSocketOptions
        {
            KeepAliveInterval = options.KeepAliveInterval,
            KeepAliveTimeout = options.KeepAliveTimeout <= TimeSpan.Zero ? Timeout.InfiniteTimeSpan : options.KeepAliveTimeout,
        });
        app.MapGet("/healthz", (FrontendNode node, IHostApplicationLifetime lifetime, IClusterReadiness cluster) =>
            lifetime.ApplicationStopping.IsCancellationRequested
                ? Results.Json(new { status = "stopping", node = node.Id }, statusCode: StatusCodes.Status503ServiceUnavailable)
                : cluster.IsReady
                    ? Results.Json(new { status = "ok", node = node.Id, connections = node.ConnectionCount })
                    : Results.Json(new { status = "no cluster", node = node.Id }, statusCode: StatusCodes.Status503ServiceUnavailable));
        app.Map("/echo", (HttpContext context) => EchoAsync(context, options));
        app.MapServerApi();
        app.Map("/{**path}", NamespaceAsync);
        return app;
    }

    private static async Task NamespaceAsync(HttpContext context)
    {
        var options = context.RequestServices.GetRequiredService<IOptions<BrokerOptions>>().Value;
        var path = context.Request.Path.Value ?? "/";
        var segment = path.TrimStart('/');
        var slash = segment.IndexOf('/', StringComparison.Ordinal);
        var ns = slash < 0 ? segment : segment[..slash];
        if (ns.Length == 0)
        {
            ns = "default";
        }

        var nsOptions = options.FindNamespace(ns);
        if (nsOptions is null)
        {
            await RefuseAsync(context, StatusCodes.Status404NotFound, $"No namespace \"{ns}\" here. Namespaces: {string.Join(", ", options.Namespaces.Where(n => n.Value.Enabled).Select(n => n.Key == "default" ? "/" : "/" + n.Key))}.");
            return;
        }

        if (!context.WebSockets.IsWebSocketRequest)
        {
            context.Response.Headers.Upgrade = "websocket";
            await RefuseAsync(context, StatusCodes.Status426UpgradeRequired, $"This is the WebSocket endpoint of namespace \"{ns}\"; connect with a WebSocket client.");
            return;
        }

        if (context.RequestServices.GetRequiredService<IHostApplicationLifetime>().ApplicationStopping.IsCancellationRequested)
        {
            await RefuseAsync(context, StatusCodes.Status503ServiceUnavailable, "This node is shutting down; connect to another one.");
            return;
        }

        if (!OriginAllowed(context, options))
        {
            await RefuseAsync(context, StatusCodes.Status403Forbidden, "This origin may not connect.");
            return;
        }

        // Identity, in protocol order: a token; else ?user= where allowed; else an anonymous id.
        var token = BearerToken(context);
        var user = context.Request.Query["user"].ToString();
        DateTimeOffset? expires = null;
        if (token is not null)
        {
            var identity = await context.RequestServices.GetRequiredService<TokenAuthenticator>().ValidateAsync(token);
            if (!identity.Valid)
            {
                await RefuseAsync(context, StatusCodes.Status401Unauthorized, identity.Error);
                return;
            }

            user = identity.User;
            expires = identity.Expires;
        }
        else if (user.Length > 0)
        {
            if (!nsOptions.Anonymous)
            {
                await RefuseAsync(context, StatusCodes.Status401Unauthorized, $"Namespace \"{ns}\" does not accept ?user=; present a token.");
                return;
            }
        }
        else if (!nsOptions.Anonymous)
        {
            await RefuseAsync(context, StatusCodes.Status401Unauthorized, $"Namespace \"{ns}\" needs a token (Authorization: Bearer or ?token=).");
            return;
        }
        else
        {
            user = "anon-" + Guid.NewGuid().ToString("N")[..12];
        }

        if (user.Length > options.MaxNameLength)
        {
            await RefuseAsync(context, StatusCodes.Status400BadRequest, $"The user name is {user.Length} characters long; the limit is {options.MaxNameLength}.");
            return;
        }

        using var socket = await context.WebSockets.AcceptWebSocketAsync();
        await context.RequestServices.GetRequiredService<ConnectionHandler>().RunAsync(socket, ns, nsOptions, user, expires);
    }

    private static string? BearerToken(HttpContext context)
    {
        var header = context.Request.Headers.Authorization.ToString();
        if (header.StartsWith("Bearer ", StringComparison.OrdinalIgnoreCase))
        {
            return header[7..].Trim();
        }

        return context.Request.Query.TryGetValue("token", out var query) ? query.ToString() : null;
    }

    private static bool OriginAllowed(HttpContext context, BrokerOptions options)
    {
        if (options.AllowedOrigins.Count == 0)
        {
            return true;
        }

        var origin = context.Request.Headers.Origin.ToString();
        return origin.Length == 0 || options.AllowedOrigins.Contains(origin, StringComparer.OrdinalIgnoreCase);
    }

    private static Task RefuseAsync(HttpContext context, int status, string message)
    {
        context.Response.StatusCode = status;
        context.Response.ContentType = "text/plain; charset=utf-8";
        return context.Response.WriteAsync(message + "\n");
    }

    /// <summary>The seed's echo server: "Server received: X" for every text frame X, and "pong" for "ping".</summary>
    private static async Task EchoAsync(HttpContext context, BrokerOptions options)
    {
        if (!context.WebSockets.IsWebSocketRequest)
        {
            await RefuseAsync(context, StatusCodes.Status426UpgradeRequired, "This is the WebSocket echo endpoint; connect with a WebSocket client.");
            return;
        }

        using var socket = await context.WebSockets.AcceptWebSocketAsync();
        var stopping = context.RequestServices.GetRequiredService<IHostApplicationLifetime>().ApplicationStopping;
        using var onStopping = stopping.Register(() => _ = CloseQuietlyAsync(socket, (WebSocketCloseStatus)1012, "Server shutting down; reconnect to any node."));
        var buffer = new byte[4096];
        using var message = new MemoryStream();
        try
        {
            while (true)
            {
                message.SetLength(0);
                ValueWebSocketReceiveResult result;
                do
                {
                    result = await socket.ReceiveAsync(buffer.AsMemory(), CancellationToken.None);
                    if (result.MessageType == WebSocketMessageType.Close)
                    {
                        if (socket.State == WebSocketState.CloseReceived)
                        {
                            await socket.CloseOutputAsync(WebSocketCloseStatus.NormalClosure, string.Empty, CancellationToken.None);
                        }

                        return;
                    }

                    message.Write(buffer, 0, result.Count);
                    if (message.Length > options.MaxFrameBytes)
                    {
                        await socket.CloseOutputAsync(WebSocketCloseStatus.MessageTooBig, $"Frame larger than {options.MaxFrameBytes} bytes.", CancellationToken.None);
                        return;
                    }
                }
                while (!result.EndOfMessage);

                var text = message.GetBuffer().AsMemory(0, (int)message.Length);
                if (text.Span.SequenceEqual("ping"u8))
                {
                    await socket.SendAsync("pong"u8.ToArray(), WebSocketMessageType.Text, true, CancellationToken.None);
                }
                else
                {
                    var reply = new byte[ServerReceived.Length + text.Length];
                    ServerReceived.CopyTo(reply, 0);
                    text.Span.CopyTo(reply.AsSpan(ServerReceived.Length));
                    await socket.SendAsync(reply, WebSocketMessageType.Text, true, CancellationToken.None);
                }
            }
        }
        catch (Exception ex) when (ex is WebSocketException or OperationCanceledException or ObjectDisposedException)
        {
            // The client went away.
        }
    }

    private static async Task CloseQuietlyAsync(WebSocket socket, WebSocketCloseStatus status, string reason)
    {
        try
        {
            using var timeout = new CancellationTokenSource(TimeSpan.FromSeconds(2));
            await socket.CloseOutputAsync(status, reason, timeout.Token);
        }
        catch (Exception ex) when (ex is WebSocketException or OperationCanceledException or ObjectDisposedException)
        {
            socket.Abort();
        }
    }
}
