using System.Net;
using Broker.Grains.Hosting;
using Broker.Streams;
using Broker.Hosting;
using Broker.Silo;
using Broker.Telemetry;
using Orleans.Configuration;
using Orleans.Dashboard;
using Orleans.Runtime;

var builder = WebApplication.CreateBuilder(args);
builder.Configuration.AddCommandLine(args, SiloHostOptions.Switches);
// The console formatter is Logging:Console:FormatterName (simple by default, json, systemd).
builder.Services.AddConsoleLogFormat();
builder.Logging.AddFilter("Orleans", LogLevel.Warning);
builder.Logging.AddFilter("Polly", LogLevel.Warning);
builder.Logging.AddFilter("Microsoft.AspNetCore", LogLevel.Warning);

var options = builder.Configuration.GetSection(SiloHostOptions.SectionName).Get<SiloHostOptions>() ?? new SiloHostOptions();
var problems = options.Validate().Concat(BrokerTelemetry.Validate(builder.Configuration)).Concat(ConsoleLogFormat.Validate(builder.Configuration)).ToList();
if (problems.Count > 0)
{
    Console.Error.WriteLine(string.Join(Environment.NewLine, problems));
    return 2;
}

var advertise = IPAddress.Parse(options.Advertise);
var bind = IPAddress.IsLoopback(advertise) ? "127.0.0.1" : "0.0.0.0";
builder.WebHost.UseUrls(options.DashboardPort is { } dashboardPort
    ? [$"http://{bind}:{options.HealthPort}", $"http://{bind}:{dashboardPort}"]
    : [$"http://{bind}:{options.HealthPort}"]);
builder.UseOrleans(silo =>
{
    if (string.IsNullOrEmpty(options.Redis))
    {
        silo.UseLocalhostClustering(options.SiloPort, options.GatewayPort, serviceId: options.ServiceId, clusterId: options.ClusterId);
    }
    else
    {
        var cluster = new BrokerClusterOptions { Redis = options.Redis, ClusterId = options.ClusterId, ServiceId = options.ServiceId };
        silo.UseBrokerRedisClustering(cluster, advertise, options.SiloPort, options.GatewayPort);
    }

    silo.AddBrokerGrains(options.Memory, options.CoalesceDeliveries);
    silo.AddBrokerStreams(options.Streams, options.Redis);
    if (options.DashboardPort is not null)
    {
        // Orleans Dashboard, served on its own port only (below).
        silo.AddDashboard();
    }

    if (options.Store == "redis")
    {
        silo.UseBrokerRedisRoomStore(options.StoreRedis ?? options.Redis!, options.ServiceId);
    }
});

builder.Services.AddSiloHealth();
builder.AddBrokerTelemetry("broker-silo");
var app = builder.Build();
if (options.DashboardPort is { } port)
{
    // The dashboard answers on its own port only (404 on the health port), whatever Host
    // header a tunnel or proxy in front of it sends.
    app.MapOrleansDashboard().AddEndpointFilter((context, next) =>
        context.HttpContext.Connection.LocalPort == port ? next(context) : ValueTask.FromResult<object?>(Results.NotFound()));
}

app.MapSiloHealth();
app.MapBrokerMetrics();

// Ready only while this silo is an active member of the cluster.
app.MapGet("/healthz", (IClusterMembershipService membership, ILocalSiloDetails local) =>
{
    var status = membership.CurrentSnapshot.GetSiloStatus(local.SiloAddress);
    var body = new { status = status == SiloStatus.Active ? "ok" : status.ToString().ToLowerInvariant(), silo = local.SiloAddress.ToString() };
    return status == SiloStatus.Active ? Results.Json(body) : Results.Json(body, statusCode: StatusCodes.Status503ServiceUnavailable);
});

// What this silo hosts: activations per grain type (rooms, users, the front-end registry).
app.MapGet("/stats", async (IGrainFactory grains, ILocalSiloDetails local) =>
{
    var stats = await grains.GetGrain<IManagementGrain>(0).GetSimpleGrainStatistics([local.SiloAddress]);
    return Results.Json(new
    {
        silo = local.SiloAddress.ToString(),
        activations = stats.GroupBy(s => s.GrainType).ToDictionary(g => g.Key, g => g.Sum(s => s.ActivationCount)),
    });
});

SiloLog.Starting(
    app.Logger,
    string.IsNullOrEmpty(options.Redis) ? "localhost" : "Redis " + options.Redis,
    options.Store == "redis" ? "Redis " + (options.StoreRedis ?? options.Redis) : "in-memory",
    options.ClusterId,
    options.Advertise,
    options.SiloPort,
    options.GatewayPort,
    options.HealthPort,
    options.DashboardPort is { } shown ? $"http://{options.Advertise}:{shown}/" : "off");
SiloLog.Streams(
    app.Logger,
    options.Streams.Provider,
    options.Streams.Queues,
    options.Streams.Subscriptions);
await app.RunAsync();
return 0;
