using Broker.Frontend.Connections;
using Broker.Grains;
using Microsoft.Extensions.Options;

namespace Broker.Frontend.Hosting;

public static partial class BrokerHostingExtensions
{
    public const string DefaultUrls = "http://localhost:8000";

    /// <summary>
    /// Everything a front-end needs. Embedded mode (the default): the process co-hosts a silo
    /// with localhost clustering and in-memory state, so one command runs a complete broker.
    /// </summary>
    public static WebApplicationBuilder AddBrokerFrontend(this WebApplicationBuilder builder)
    {
        if (string.IsNullOrEmpty(builder.Configuration[WebHostDefaults.ServerUrlsKey])
            && string.IsNullOrEmpty(builder.Configuration["ASPNETCORE_HTTP_PORTS"]))
        {
            builder.WebHost.UseUrls(DefaultUrls);
        }

        builder.Logging.AddFilter("Orleans", LogLevel.Warning);
        builder.Logging.AddFilter("Polly", LogLevel.Warning);
        builder.Logging.AddFilter("Microsoft.AspNetCore", LogLevel.Warning);
        builder.Logging.AddFilter("Microsoft.Hosting.Lifetime", LogLevel.Information);

        var section = builder.Configuration.GetSection(BrokerOptions.SectionName);
        builder.Services.AddOptions<BrokerOptions>()
            .Bind(section)
            .ValidateOnStart();
        builder.Services.AddSingleton<IValidateOptions<BrokerOptions>, BrokerOptionsValidator>();

        var embedded = section.GetSection("Embedded").Get<EmbeddedSiloOptions>() ?? new EmbeddedSiloOptions();
        builder.UseOrleans(silo =>
        {
            silo.UseLocalhostClustering(siloPort: embedded.SiloPort, gatewayPort: embedded.GatewayPort);
            silo.AddBrokerGrains();
        });

        builder.Services.AddSingleton(TimeProvider.System);
        builder.Services.AddSingleton<FrontendNode>();
        builder.Services.AddSingleton<ConnectionHandler>();
        builder.Services.AddSingleton<TokenAuthenticator>();
        builder.Services.AddHostedService<FrontendHeartbeat>();
        builder.Services.AddHostedService<ConnectionDrainService>();
        builder.Services.AddHostedService<StartupLog>();
        return builder;
    }

    private sealed class BrokerOptionsValidator : IValidateOptions<BrokerOptions>
    {
        public ValidateOptionsResult Validate(string? name, BrokerOptions options)
        {
            var failures = options.Validate().ToList();
            return failures.Count == 0 ? ValidateOptionsResult.Success : ValidateOptionsResult.Fail(failures);
        }
    }

    private sealed partial class StartupLog(FrontendNode node, IOptions<BrokerOptions> options, ILogger<StartupLog> logger) : IHostedService
    {
        public Task StartAsync(CancellationToken cancellationToken)
        {
            var o = options.Value;
            var namespaces = string.Join(", ", o.Namespaces.Where(n => n.Value.Enabled).Select(n => n.Key == "default" ? "/ (default)" : "/" + n.Key));
            LogStarted(logger, node.Id, "embedded", o.Embedded.SiloPort, namespaces);
            return Task.CompletedTask;
        }

        public Task StopAsync(CancellationToken cancellationToken) => Task.CompletedTask;

        [LoggerMessage(Level = LogLevel.Information, Message = "Broker front-end {NodeId} started in {Mode} mode (silo port {SiloPort}); namespaces: {Namespaces}")]
        private static partial void LogStarted(ILogger logger, string nodeId, string mode, int siloPort, string namespaces);
    }
}
