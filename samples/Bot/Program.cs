using System.Net;
using Broker.Samples.Bot;
using Broker.Streams;
using Microsoft.Extensions.Logging.Console;
using Orleans.Configuration;
using Orleans.Runtime;
using StackExchange.Redis;

// A silo of the broker's cluster that hosts the application's grain (DiceGrain) and none of the
// broker's: it meets the broker's silos through their Redis, with their cluster and service ids,
// and configures the rooms' stream provider exactly as they do.
var builder = WebApplication.CreateBuilder(args);
builder.Configuration.AddCommandLine(args, BotOptions.Switches);
builder.Logging.AddFilter("Orleans", LogLevel.Warning);
builder.Logging.AddFilter("Polly", LogLevel.Warning); // Orleans' placement retries log every attempt at Information
builder.Logging.AddFilter("Microsoft.AspNetCore", LogLevel.Warning);
builder.Services.Configure<SimpleConsoleFormatterOptions>(console => console.TimestampFormat ??= "HH:mm:ss.fff ");

var options = builder.Configuration.GetSection(BotOptions.SectionName).Get<BotOptions>() ?? new BotOptions();
var problems = options.Validate().ToList();
if (problems.Count > 0)
{
    Console.Error.WriteLine(string.Join(Environment.NewLine, problems));
    return 2;
}

var advertise = IPAddress.Parse(options.Advertise);
var loopback = IPAddress.IsLoopback(advertise);
builder.WebHost.UseUrls($"http://{(loopback ? "127.0.0.1" : "0.0.0.0")}:{options.HealthPort}");
builder.UseOrleans(silo =>
{
    silo.UseRedisClustering(redis =>
    {
        redis.ConfigurationOptions = ConfigurationOptions.Parse(options.Redis!);
        redis.ConfigurationOptions.AbortOnConnectFail = false; // keep retrying while Redis is away
    });
    silo.Configure<ClusterOptions>(cluster =>
    {
        cluster.ClusterId = options.ClusterId;
        cluster.ServiceId = options.ServiceId;
    });
    silo.ConfigureEndpoints(advertise, options.SiloPort, options.GatewayPort, listenOnAnyHostAddress: !loopback);

    // The broker's silos probe every 2 s (a dead silo is declared dead in ~6 s): the same here.
    silo.Configure<ClusterMembershipOptions>(membership => membership.ProbeTimeout = TimeSpan.FromSeconds(2));

    // The stream provider "broker", as on every silo of the cluster: this silo pulls its share
    // of the stream queues, and explicit subscriptions are kept in the same Redis.
    silo.AddBrokerStreams(options.Streams, options.Redis);
});

var app = builder.Build();

// Live while the process serves HTTP; ready while this silo is an active member of the cluster.
app.MapGet("/health/live", () => Results.Text("live"));
app.MapGet("/health/ready", (IClusterMembershipService membership, ILocalSiloDetails local) =>
    membership.CurrentSnapshot.GetSiloStatus(local.SiloAddress) == SiloStatus.Active
        ? Results.Text("ready")
        : Results.Text("not ready", statusCode: StatusCodes.Status503ServiceUnavailable));

BotLog.Starting(app.Logger, options.ClusterId, options.Advertise, options.SiloPort, options.GatewayPort, options.HealthPort, options.Streams.Provider, DiceGrain.Namespace);
await app.RunAsync();
return 0;
