using Broker.Frontend.Tests.Infrastructure;
using Microsoft.AspNetCore.Hosting.Server;
using Microsoft.AspNetCore.Hosting.Server.Features;

namespace Broker.Frontend.Tests.Metrics;

/// <summary>
/// OTLP export: a real OTLP/HTTP receiver (Kestrel on 127.0.0.1:0 taking POST /v1/metrics,
/// http/protobuf) and a broker pointed at it with the standard OTEL_* settings.
/// </summary>
[Collection(MetricsCollection.Name)]
public sealed class OtlpExportTests
{
    [Fact]
    public async Task Otlp_EndpointSet_MetricsPushedWithTheBrokerInstruments()
    {
        var received = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        var builder = WebApplication.CreateSlimBuilder();
        builder.WebHost.UseUrls("http://127.0.0.1:0");
        builder.Logging.ClearProviders();
        await using var receiver = builder.Build();
        receiver.MapPost("/v1/metrics", async (HttpContext context) =>
        {
            using var body = new MemoryStream();
            await context.Request.Body.CopyToAsync(body);
            if (context.Request.ContentType == "application/x-protobuf" && Contains(body.ToArray(), "broker.connections"u8))
            {
                received.TrySetResult();
            }

            return Results.Ok();
        });
        receiver.MapPost("/v1/traces", () => Results.Ok());
        await receiver.StartAsync();
        var endpoint = receiver.Services.GetRequiredService<IServer>().Features.Get<IServerAddressesFeature>()!.Addresses.First();

        await using var server = await BrokerServer.StartAsync(new Dictionary<string, string?>
        {
            ["OTEL_EXPORTER_OTLP_ENDPOINT"] = endpoint,
            ["OTEL_EXPORTER_OTLP_PROTOCOL"] = "http/protobuf",
            ["OTEL_METRIC_EXPORT_INTERVAL"] = "200",
        });
        await using var client = await server.ConnectAsync();

        await received.Task.WaitAsync(TimeSpan.FromSeconds(30));
    }

    [Fact]
    public async Task Otlp_EndpointSet_APublishTraceIsPushedWithItsCommitAndDelivery()
    {
        const string room = "otlp-trace-room";
        var received = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        var seen = new List<byte>();
        var builder = WebApplication.CreateSlimBuilder();
        builder.WebHost.UseUrls("http://127.0.0.1:0");
        builder.Logging.ClearProviders();
        await using var receiver = builder.Build();
        receiver.MapPost("/v1/metrics", () => Results.Ok());
        receiver.MapPost("/v1/traces", async (HttpContext context) =>
        {
            using var body = new MemoryStream();
            await context.Request.Body.CopyToAsync(body);
            lock (seen)
            {
                // Spans may come in more than one export: look at everything received so far.
                seen.AddRange(body.ToArray());
                var all = seen.ToArray();
                if (Contains(all, "publish"u8) && Contains(all, "room.commit"u8) && Contains(all, "deliver"u8) && Contains(all, System.Text.Encoding.UTF8.GetBytes(room)))
                {
                    received.TrySetResult();
                }
            }

            return Results.Ok();
        });
        await receiver.StartAsync();
        var endpoint = receiver.Services.GetRequiredService<IServer>().Features.Get<IServerAddressesFeature>()!.Addresses.First();

        await using var server = await BrokerServer.StartAsync(new Dictionary<string, string?>
        {
            ["OTEL_EXPORTER_OTLP_ENDPOINT"] = endpoint,
            ["OTEL_EXPORTER_OTLP_PROTOCOL"] = "http/protobuf",
            ["OTEL_BSP_SCHEDULE_DELAY"] = "200",
        });
        await using var client = await server.ConnectAsync();
        Assert.Equal("joined", (await client.JoinAsync(room)).GetProperty("type").GetString());
        Assert.Equal("ack", (await client.PublishAsync(room, "traced")).GetProperty("type").GetString());

        await received.Task.WaitAsync(TimeSpan.FromSeconds(30));
    }

    private static bool Contains(byte[] haystack, ReadOnlySpan<byte> needle) => haystack.AsSpan().IndexOf(needle) >= 0;
}
