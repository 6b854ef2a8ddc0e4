using Broker.Frontend.Connections;
using Broker.Frontend.Hosting;
using Microsoft.AspNetCore.Hosting.Server;
using Microsoft.AspNetCore.Hosting.Server.Features;

namespace Broker.Frontend.Tests.Infrastructure;

/// <summary>
/// A complete broker (front-end + embedded silo) on a real Kestrel bound to 127.0.0.1:0, wired
/// exactly as Program.cs wires it. Settings are configuration keys, e.g. "Broker:OutboxFrames".
/// Shared with tests/Bench.Tests (linked), so it depends on nothing else of this project.
/// </summary>
public sealed class BrokerServer : IAsyncDisposable
{
    private readonly WebApplication _app;

    private BrokerServer(WebApplication app, Uri httpBase)
    {
        _app = app;
        HttpBase = httpBase;
    }

    /// <summary>http://127.0.0.1:PORT/</summary>
    public Uri HttpBase { get; }

    public IServiceProvider Services => _app.Services;

    public FrontendNode Node => _app.Services.GetRequiredService<FrontendNode>();

    /// <param name="logs">Where the host's logs also go (a test's capture), from before the host starts.</param>
    public static async Task<BrokerServer> StartAsync(IDictionary<string, string?>? settings = null, ILoggerProvider? logs = null)
    {
        var builder = WebApplication.CreateBuilder(new WebApplicationOptions
        {
            ContentRootPath = AppContext.BaseDirectory,
            EnvironmentName = "Testing",
        });
        var config = new Dictionary<string, string?>
        {
            ["urls"] = "http://127.0.0.1:0",
            ["Broker:Embedded:SiloPort"] = FreePorts.Next().ToString(System.Globalization.CultureInfo.InvariantCulture),
            ["Logging:LogLevel:Default"] = "Warning",
        };
        foreach (var (key, value) in settings ?? new Dictionary<string, string?>())
        {
            config[key] = value;
        }

        builder.Configuration.AddInMemoryCollection(config);
        builder.AddBrokerFrontend();
        if (logs is not null)
        {
            builder.Logging.AddProvider(logs);
        }

        var app = builder.Build();
        app.MapBroker();
        await app.StartAsync();
        var address = app.Services.GetRequiredService<IServer>().Features.Get<IServerAddressesFeature>()!.Addresses.First();
        return new BrokerServer(app, new Uri(address.EndsWith('/') ? address : address + "/"));
    }

    /// <summary>ws://127.0.0.1:PORT/{pathAndQuery}</summary>
    public Uri Ws(string pathAndQuery = "") =>
        new(new Uri(HttpBase.ToString().Replace("http://", "ws://", StringComparison.Ordinal)), pathAndQuery.TrimStart('/'));

    /// <summary>Stops the host the way Ctrl+C does.</summary>
    public Task StopAsync() => _app.StopAsync();

    public async ValueTask DisposeAsync()
    {
        try
        {
            await _app.StopAsync();
        }
        catch (ObjectDisposedException)
        {
            // Already stopped.
        }

        await _app.DisposeAsync();
    }
}
