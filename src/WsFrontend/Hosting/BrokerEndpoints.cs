using System.Net.WebSockets;
using Broker.Frontend.Diagnostics;
using Broker.Frontend.Options;
using Broker.Frontend.Security;
using Broker.Telemetry;
using Broker.Transport;
using Microsoft.AspNetCore.Http.Features;
using Broker.Frontend.Connections;
using Microsoft.Extensions.Options;

namespace Broker.Frontend.Hosting;

/// <summary>
/// The HTTP surface: one WebSocket endpoint per namespace ("/" is "default"), the
/// seed-compatible "/echo", "/healthz", and the chat page (a plain GET "/", <see cref="ChatPage"/>). Everything refused is refused at the handshake,
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
        app.MapFrontendHealth();
        app.MapBrokerMetrics();
        app.Map("/echo", (HttpContext context) => EchoAsync(context, options));
        app.MapServerApi();
        app.MapOpenApi().ExcludeFromDescription();
        app.MapChatPage(NamespaceAsync);
        app.Map("/{**path}", NamespaceAsync);
        return app;
    }

    private static async Task NamespaceAsync(HttpContext context)
    {
        var services = context.RequestServices;
        var options = services.GetRequiredService<IOptions<BrokerOptions>>().Value;
        if (await RefuseOldHttpAsync(context))
        {
            return;
        }

        // The caps first (a WebSocket request only): cheap, and a flood at the cap costs no token validation.
        var limits = services.GetRequiredService<ConnectionLimits>();
        var slot = default(ConnectionSlot);
        if (context.WebSockets.IsWebSocketRequest && !limits.TryAcquire(context.Connection.RemoteIpAddress, out slot, out var full))
        {
            await RefuseAsync(context, full.Status, full.Message);
            return;
        }

        // One method, not two: an idle connection holds one state machine here.
        try
        {
            var request = new ConnectRequest(
                context.Request.Path.Value ?? "/",
                context.WebSockets.IsWebSocketRequest,
                services.GetRequiredService<IHostApplicationLifetime>().ApplicationStopping.IsCancellationRequested,
                context.Request.Headers.Authorization.ToString(),
                context.Request.Headers.Origin.ToString(),
                context.Request.Query.TryGetValue("token", out var token) ? token.ToString() : null,
                context.Request.Query["user"].ToString())
            {
                NoCluster = !services.GetRequiredService<IClusterReadiness>().IsReady,
            };
            var (admitted, refusal) = await ConnectAdmission.AdmitAsync(request, options, services.GetRequiredService<TokenAuthenticator>(), services.GetService<FrontendWarmup>());
            if (admitted is null)
            {
                if (request.IsWebSocket)
                {
                    services.GetRequiredService<ClientEventLog>().Count(ClientEvent.HandshakeRefused);
                }

                await RefuseAsync(context, refusal.Status, refusal.Message);
                return;
            }

            var (socket, connection) = await AcceptAsync(context, options);
            await using (connection)
            {
                using (socket)
                {
                    await services.GetRequiredService<ConnectionHandler>().RunAsync(socket, admitted);
                }
            }

            CountFailure(context, socket);
        }
        finally
        {
            limits.Release(slot);
        }
    }

    /// <summary>
    /// Accepts a WebSocket request that reached the HTTP server. With the pipe transport, one it
    /// left to the HTTP server (an unusual but valid upgrade) still runs on a PipeWebSocket, on
    /// the stream Kestrel upgraded: the same frame rules, UTF-8 check and control-frame budget,
    /// so that no request shape reaches a laxer WebSocket. Else (the AspNetCore transport, or
    /// an HTTP/2 WebSocket) ASP.NET Core's own.
    /// </summary>
    private static async Task<(WebSocket Socket, UpgradedStreamConnection? Connection)> AcceptAsync(HttpContext context, BrokerOptions options)
    {
        var upgrade = context.Features.Get<IHttpUpgradeFeature>();
        if (options.WebSocketTransport != WebSocketTransport.Pipe || upgrade is not { IsUpgradableRequest: true })
        {
            return (await context.WebSockets.AcceptWebSocketAsync(), null);
        }

        context.Response.Headers.Connection = "Upgrade";
        context.Response.Headers.Upgrade = "websocket";
        context.Response.Headers.SecWebSocketAccept = UpgradeRequest.AcceptKeyFor(context.Request.Headers.SecWebSocketKey.ToString());
        var stream = await upgrade.UpgradeAsync();
        var connection = new UpgradedStreamConnection(stream, context.Connection.Id, context.Abort);
        return (new PipeWebSocket(connection, options.MaxFrameBytes, options.KeepAliveInterval, options.KeepAliveTimeout), connection);
    }

    /// <summary>Counts how the client broke off a pipe socket, if it did.</summary>
    private static void CountFailure(HttpContext context, WebSocket socket)
    {
        if (socket is PipeWebSocket { Failure: not WebSocketFailure.None } pipe)
        {
            context.RequestServices.GetRequiredService<ClientEventLog>().Count(pipe.Failure);
        }
    }

    /// <summary>
    /// An upgrade over HTTP/1.0 is refused with 400 (RFC 6455 4.1 asks for HTTP/1.1 or
    /// higher; Kestrel would let it through). True when refused.
    /// </summary>
    private static async Task<bool> RefuseOldHttpAsync(HttpContext context)
    {
        if (!HttpProtocol.IsHttp10(context.Request.Protocol) || !context.WebSockets.IsWebSocketRequest)
        {
            return false;
        }

        context.RequestServices.GetRequiredService<ClientEventLog>().Count(ClientEvent.HandshakeRefused);
        await RefuseAsync(context, StatusCodes.Status400BadRequest, "A WebSocket upgrade needs HTTP/1.1.");
        return true;
    }

    private static Task RefuseAsync(HttpContext context, int status, string message)
    {
        if (status == StatusCodes.Status426UpgradeRequired)
        {
            // RFC 6455 4.4: say which protocol and which version to upgrade to (also to a client that asked for another version).
            context.Response.Headers.Upgrade = "websocket";
            context.Response.Headers.SecWebSocketVersion = "13";
        }

        if (status == StatusCodes.Status503ServiceUnavailable)
        {
            context.Response.Headers.RetryAfter = ConnectionLimits.RetryAfterSeconds.ToString(System.Globalization.CultureInfo.InvariantCulture);
        }

        context.Response.StatusCode = status;
        context.Response.ContentType = "text/plain; charset=utf-8";
        return context.Response.WriteAsync(message + "\n");
    }

    /// <summary>The seed's echo server: "Server received: X" for every text frame X, "pong" for "ping", and a binary message echoed as it came.</summary>
    private static async Task EchoAsync(HttpContext context, BrokerOptions options)
    {
        if (!context.WebSockets.IsWebSocketRequest)
        {
            await RefuseAsync(context, StatusCodes.Status426UpgradeRequired, "This is the WebSocket echo endpoint; connect with a WebSocket client.");
            return;
        }

        if (await RefuseOldHttpAsync(context))
        {
            return;
        }

        if (!ConnectAdmission.OriginAllowed(options, context.Request.Headers.Origin))
        {
            // The same allowlist as the namespaces': a page elsewhere may not use this node's sockets.
            await RefuseAsync(context, StatusCodes.Status403Forbidden, "This origin may not connect.");
            return;
        }

        var limits = context.RequestServices.GetRequiredService<ConnectionLimits>();
        if (!limits.TryAcquire(context.Connection.RemoteIpAddress, out var slot, out var full))
        {
            await RefuseAsync(context, full.Status, full.Message);
            return;
        }

        try
        {
            await EchoLoopAsync(context, options);
        }
        finally
        {
            limits.Release(slot);
        }
    }

    private static async Task EchoLoopAsync(HttpContext context, BrokerOptions options)
    {
        var (socket, connection) = await AcceptAsync(context, options);
        await using (connection)
        {
            using (socket)
            {
                await EchoFramesAsync(context, socket, options);
            }
        }

        CountFailure(context, socket);
    }

    /// <summary>
    /// The echo loop, on the connection's frame budget (RateLimitPerSecond, RateLimitBurst): a
    /// frame over it is dropped unanswered, pings included on a pipe socket, and a burst's
    /// worth dropped in a row closes the socket with 1008 — an echo flood costs the node no
    /// more than a frame flood anywhere else.
    /// </summary>
    private static async Task EchoFramesAsync(HttpContext context, WebSocket socket, BrokerOptions options)
    {
        var limiter = new RateLimiter(context.RequestServices.GetRequiredService<TimeProvider>(), options.RateLimitPerSecond, options.RateLimitBurst);
        if (socket is PipeWebSocket pipe && limiter.Enabled)
        {
            pipe.LimitControlFrames(limiter, Math.Max(1, options.RateLimitBurst));
        }

        var dropped = 0;
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

                if (!limiter.TryTake())
                {
                    if (++dropped >= Math.Max(1, options.RateLimitBurst))
                    {
                        await socket.CloseOutputAsync(WebSocketCloseStatus.PolicyViolation, "Too many frames: over the rate limit for a burst's worth in a row.", CancellationToken.None);
                        return;
                    }

                    continue;
                }

                dropped = 0;
                var text = message.GetBuffer().AsMemory(0, (int)message.Length);
                if (result.MessageType == WebSocketMessageType.Binary)
                {
                    // Echoed as it came, the way echo servers (Autobahn's included) answer binary:
                    // the seed's "Server received: " prefix is for text, and a text frame holding
                    // these bytes might not be UTF-8 (RFC 6455 §8.1).
                    await socket.SendAsync(text.ToArray(), WebSocketMessageType.Binary, true, CancellationToken.None);
                }
                else if (text.Span.SequenceEqual("ping"u8))
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
        catch (MessageTooBigException)
        {
            // A pipe socket knows from the frame header, before the payload: 1009, as on a namespace.
            await CloseQuietlyAsync(socket, WebSocketCloseStatus.MessageTooBig, $"Frame larger than {options.MaxFrameBytes} bytes.");
        }
        catch (Exception ex) when (ex is WebSocketException or OperationCanceledException or ObjectDisposedException or IOException)
        {
            // The client went away (or broke the protocol: the socket has closed it already).
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
