using System.Collections.Concurrent;
using System.Text.Json;
using Microsoft.AspNetCore.Hosting.Server;
using Microsoft.AspNetCore.Hosting.Server.Features;

namespace Broker.Frontend.Tests.Authorization;

/// <summary>
/// A real HTTP authorization backend for Authorize=Proxy (Kestrel on 127.0.0.1:0): it answers
/// POST /authorize by the room name's first dot-separated word, and records every request.
/// <list type="bullet">
/// <item><c>allow.…</c>: 200 {"allow":true}</item>
/// <item><c>deny.…</c>: 200 {"allow":false}</item>
/// <item><c>forbid.…</c>: 403</item>
/// <item><c>fail.…</c>: 500</item>
/// <item><c>garbage.…</c>: 200 with a body that is not JSON</item>
/// <item><c>big.…</c>: 200 with a 100 KB body that starts like an allow</item>
/// <item><c>redirect.…</c>: 307 to an allowing URL (must not be followed)</item>
/// <item><c>joinonly.…</c>: allows join, denies every other action</item>
/// <item><c>stall.…</c>: never answers (until the backend stops)</item>
/// </list>
/// </summary>
public sealed class AuthorizationBackend : IAsyncDisposable
{
    private readonly WebApplication _app;
    private readonly CancellationTokenSource _stopping = new();

    private AuthorizationBackend(WebApplication app) => _app = app;

    /// <summary>Every question asked, in arrival order.</summary>
    public ConcurrentQueue<ProxyRequest> Requests { get; } = new();

    /// <summary>http://127.0.0.1:PORT/authorize</summary>
    public Uri Url { get; private set; } = null!;

    public static async Task<AuthorizationBackend> StartAsync()
    {
        var builder = WebApplication.CreateSlimBuilder(new WebApplicationOptions { EnvironmentName = "Testing" });
        builder.WebHost.UseUrls("http://127.0.0.1:0");
        builder.Logging.ClearProviders();
        var app = builder.Build();
        var backend = new AuthorizationBackend(app);
        app.MapPost("/authorize", backend.AnswerAsync);
        app.MapPost("/allow-all", () => Results.Text("{\"allow\":true}", "application/json"));
        await app.StartAsync();
        var address = app.Services.GetRequiredService<IServer>().Features.Get<IServerAddressesFeature>()!.Addresses.First();
        backend.Url = new Uri(address.TrimEnd('/') + "/authorize");
        return backend;
    }

    /// <summary>The questions asked about <paramref name="room"/>.</summary>
    public List<ProxyRequest> About(string room) => Requests.Where(r => r.Room == room).ToList();

    /// <summary>How many times <paramref name="action"/> in <paramref name="room"/> was asked.</summary>
    public int Count(string room, string action) => Requests.Count(r => r.Room == room && r.Action == action);

    public async ValueTask DisposeAsync()
    {
        await _stopping.CancelAsync();
        await _app.StopAsync();
        await _app.DisposeAsync();
        _stopping.Dispose();
    }

    private async Task AnswerAsync(HttpContext context)
    {
        using var body = await JsonDocument.ParseAsync(context.Request.Body, cancellationToken: context.RequestAborted);
        var root = body.RootElement;
        var request = new ProxyRequest(
            context.Request.ContentType ?? string.Empty,
            Field(root, "namespace"),
            Field(root, "room"),
            Field(root, "user"),
            Field(root, "action"),
            Field(root, "connection"),
            root.EnumerateObject().Select(p => p.Name).ToList(),
            root.TryGetProperty("verified", out var verified) && verified.ValueKind is JsonValueKind.True or JsonValueKind.False ? verified.GetBoolean() : null);
        Requests.Enqueue(request);
        var rule = request.Room.Split('.')[0];
        switch (rule)
        {
            case "allow":
                await Json(context, "{\"allow\":true}");
                break;
            case "deny":
                await Json(context, "{\"allow\":false}");
                break;
            case "joinonly":
                await Json(context, request.Action == "join" ? "{\"allow\":true}" : "{\"allow\":false}");
                break;
            case "forbid":
                context.Response.StatusCode = StatusCodes.Status403Forbidden;
                break;
            case "fail":
                context.Response.StatusCode = StatusCodes.Status500InternalServerError;
                break;
            case "garbage":
                await Json(context, "this is not json");
                break;
            case "big":
                await Json(context, "{\"allow\":true,\"padding\":\"" + new string('x', 100_000) + "\"}");
                break;
            case "redirect":
                // 307: a client that followed it would POST the same question to an endpoint that allows.
                context.Response.Redirect(Url.ToString().Replace("/authorize", "/allow-all", StringComparison.Ordinal), permanent: false, preserveMethod: true);
                break;
            case "stall":
                using (var both = CancellationTokenSource.CreateLinkedTokenSource(_stopping.Token, context.RequestAborted))
                {
                    try
                    {
                        await Task.Delay(Timeout.Infinite, both.Token);
                    }
                    catch (OperationCanceledException)
                    {
                        // The broker gave up, or the test ended.
                    }
                }

                break;
            default:
                context.Response.StatusCode = StatusCodes.Status404NotFound;
                break;
        }
    }

    private static string Field(JsonElement root, string name) =>
        root.TryGetProperty(name, out var value) && value.ValueKind == JsonValueKind.String ? value.GetString()! : string.Empty;

    private static async Task Json(HttpContext context, string body)
    {
        context.Response.ContentType = "application/json";
        await context.Response.WriteAsync(body);
    }
}

/// <summary>One question the backend was asked, as it arrived.</summary>
public sealed record ProxyRequest(string ContentType, string Namespace, string Room, string User, string Action, string Connection, List<string> Fields, bool? Verified = null);
