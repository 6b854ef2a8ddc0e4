using System.Net;
using Microsoft.AspNetCore.Hosting.Server;
using Microsoft.AspNetCore.Hosting.Server.Features;

namespace Broker.Frontend.Tests.Identity;

/// <summary>
/// An issuer's key endpoint: a real Kestrel on 127.0.0.1:0 serving a JWK Set at /jwks, which
/// the test can swap (rotation), break (an HTTP status), or hold (until released).
/// </summary>
internal sealed class JwksServer : IAsyncDisposable
{
    private readonly WebApplication _app;
    private volatile string _json = "{\"keys\":[]}";
    private volatile int _status = 200;
    private volatile TaskCompletionSource? _hold;
    private int _requests;

    private JwksServer(WebApplication app) => _app = app;

    public Uri Url { get; private set; } = null!;

    /// <summary>Requests /jwks has received.</summary>
    public int Requests => Volatile.Read(ref _requests);

    /// <summary>Completes when a request arrives while the endpoint is held.</summary>
    public TaskCompletionSource RequestArrived { get; private set; } = new(TaskCreationOptions.RunContinuationsAsynchronously);

    public static async Task<JwksServer> StartAsync()
    {
        var builder = WebApplication.CreateSlimBuilder();
        builder.WebHost.UseUrls("http://127.0.0.1:0");
        builder.Logging.ClearProviders();
        var app = builder.Build();
        var server = new JwksServer(app);
        app.MapGet("/jwks", server.ServeAsync);
        await app.StartAsync();
        var address = app.Services.GetRequiredService<IServer>().Features.Get<IServerAddressesFeature>()!.Addresses.First();
        server.Url = new Uri(address.TrimEnd('/') + "/jwks");
        return server;
    }

    public void Serve(string json, int status = 200)
    {
        _json = json;
        _status = status;
    }

    /// <summary>Requests wait until <see cref="Release"/>.</summary>
    public void Hold()
    {
        RequestArrived = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        _hold = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
    }

    public void Release() => _hold?.TrySetResult();

    public async ValueTask DisposeAsync()
    {
        Release();
        await _app.StopAsync();
        await _app.DisposeAsync();
    }

    private async Task ServeAsync(HttpContext context)
    {
        Interlocked.Increment(ref _requests);
        if (_hold is { } hold)
        {
            RequestArrived.TrySetResult();
            await hold.Task.WaitAsync(context.RequestAborted);
        }

        context.Response.StatusCode = _status;
        context.Response.ContentType = "application/json";
        await context.Response.WriteAsync(_status == (int)HttpStatusCode.OK ? _json : "{\"error\":\"broken on purpose\"}");
    }
}
