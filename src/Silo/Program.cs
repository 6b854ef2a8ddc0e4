using Microsoft.Extensions.Configuration;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Logging;
using Broker.Grains;
using Broker.Silo;
using Orleans.Configuration;

var builder = Host.CreateApplicationBuilder(args);
builder.Configuration.AddCommandLine(args, new Dictionary<string, string>
{
    ["--silo-port"] = "Silo:SiloPort",
    ["--gateway-port"] = "Silo:GatewayPort",
    ["--cluster-id"] = "Silo:ClusterId",
    ["--service-id"] = "Silo:ServiceId",
});
builder.Logging.AddFilter("Orleans", LogLevel.Warning);
builder.Logging.AddFilter("Polly", LogLevel.Warning);

var options = builder.Configuration.GetSection(BrokerSiloOptions.SectionName).Get<BrokerSiloOptions>() ?? new BrokerSiloOptions();
builder.UseOrleans(silo =>
{
    // Localhost clustering for now: one silo on this machine that front-ends reach through its gateway.
    silo.UseLocalhostClustering(options.SiloPort, options.GatewayPort, serviceId: options.ServiceId, clusterId: options.ClusterId);
    silo.Configure<ClusterOptions>(o =>
    {
        o.ClusterId = options.ClusterId;
        o.ServiceId = options.ServiceId;
    });
    silo.AddBrokerGrains();
});

var host = builder.Build();
var logger = host.Services.GetRequiredService<ILoggerFactory>().CreateLogger("Broker.Silo");
logger.LogInformation(
    "Broker silo starting: localhost clustering, cluster {ClusterId}, silo port {SiloPort}, gateway port {GatewayPort}",
    options.ClusterId,
    options.SiloPort,
    options.GatewayPort);
await host.RunAsync();
