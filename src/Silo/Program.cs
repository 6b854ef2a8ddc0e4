using System.Net;
using Broker.Grains.Hosting;
using Broker.Silo;
using Broker.Telemetry;
using Orleans.Configuration;
using Orleans.Runtime;

var builder = WebApplication.CreateBuilder(args);
builder.Configuration.AddCommandLine(args, SiloHostOptions.Switches);
builder.Logging.AddSimpleConsole(o => o.TimestampFormat = "HH:mm:ss.fff ");
builder.Logging.AddFilter("Orleans", LogLevel.Warning);
builder.Logging.AddFilter("Polly", LogLevel.Warning);
builder.Logging.AddFilter("Microsoft.AspNetCore", LogLevel.Warning);

var options = builder.Configuration.GetSection(SiloHostOptions.SectionName).Get<SiloHostOptions>() ?? new SiloHostOptions();
var problems = options.Validate().Concat(BrokerTelemetry.Validate(builder.Configuration)).ToList();
if (problems.Count > 0)
{
    Console.Error.WriteLine(string.Join(Environment.NewLine, problems));
    return 2;
}

var advertise = IPAddress.Parse(options.Advertise);
builder.WebHost.UseUrls($"http://{(IPAddress.IsLoopback(advertise) ? "127.0.0.1" : "0.0.0.0")}:{options.HealthPort}");
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

    silo.AddBrokerGrains(options.Memory);
    if (options.Store == "redis")
    {
        silo.UseBrokerRedisRoomStore(options.StoreRedis ?? options.Redis!, options.ServiceId);
    }
});

builder.Services.AddSiloHealth();
builder.AddBrokerTelemetry("broker-silo");
var app = builder.Build();
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

app.Logger.LogInformation(
    "Broker silo starting: {Clustering} clustering, {Store} room store, cluster {ClusterId}, advertised {Advertise}, silo port {SiloPort}, gateway port {GatewayPort}, health http://{Advertise}:{HealthPort}/healthz",
    string.IsNullOrEmpty(options.Redis) ? "localhost" : "Redis " + options.Redis,
    options.Store == "redis" ? "Redis " + (options.StoreRedis ?? options.Redis) : "in-memory",
    options.ClusterId,
    options.Advertise,
    options.SiloPort,
    options.GatewayPort,
    options.Advertise,
    options.HealthPort);
await app.RunAsync();
return 0;
