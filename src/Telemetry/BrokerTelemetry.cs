using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Routing;
using Microsoft.Extensions.Configuration;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Hosting;
using OpenTelemetry.Metrics;
using OpenTelemetry.Resources;
using OpenTelemetry.Trace;

namespace Broker.Telemetry;

/// <summary>
/// Metrics and traces for both processes, the front-end and the silo: the broker's own meter
/// (<see cref="MeterName"/>) with Orleans', ASP.NET Core's, Kestrel's and the runtime's, served
/// in Prometheus text format at <see cref="MetricsPath"/> and, when the standard
/// <c>OTEL_EXPORTER_OTLP_ENDPOINT</c> is set, pushed over OTLP with the traces of the
/// <c>Broker</c> activity source and Orleans'. <c>Metrics:Enabled=false</c> turns metrics off:
/// nothing listens to any meter and <see cref="MetricsPath"/> is not served.
/// </summary>
public static class BrokerTelemetry
{
    /// <summary>The broker's meter, on front-ends and silos alike (docs/operations.md lists its instruments).</summary>
    public const string MeterName = "Broker";

    /// <summary>The broker's activity source (spans: publish, room.commit, deliver).</summary>
    public const string ActivitySourceName = "Broker";

    /// <summary>Where Prometheus scrapes: the front-end's HTTP port, the silo's health port.</summary>
    public const string MetricsPath = "/metrics";

    /// <summary>The switch both processes read (default true).</summary>
    public const string EnabledKey = "Metrics:Enabled";

    /// <summary>The standard OTLP endpoint variable: set, metrics and traces are also pushed there.</summary>
    public const string OtlpEndpointKey = "OTEL_EXPORTER_OTLP_ENDPOINT";

    /// <summary>
    /// The meters exported besides ours: Orleans' (one meter for the runtime's instruments),
    /// ASP.NET Core's request and Kestrel's connection meters, and the runtime's (GC, thread pool, …).
    /// </summary>
    public static readonly string[] ExportedMeters =
    [
        MeterName,
        "Microsoft.Orleans",
        "Microsoft.AspNetCore.Hosting",
        "Microsoft.AspNetCore.Server.Kestrel",
        "System.Runtime",
    ];

    /// <summary>Orleans' activity sources (grain calls; with AddActivityPropagation, linked across processes).</summary>
    public static readonly string[] ExportedSources = [ActivitySourceName, "Microsoft.Orleans.Runtime", "Microsoft.Orleans.Application"];

    /// <summary>What is wrong with the telemetry settings, if anything (checked at start by both processes).</summary>
    public static IEnumerable<string> Validate(IConfiguration configuration)
    {
        if (configuration[EnabledKey] is { } enabled && !bool.TryParse(enabled, out _))
        {
            yield return $"{EnabledKey} must be true or false, not \"{enabled}\".";
        }

        if (configuration[OtlpEndpointKey] is { Length: > 0 } endpoint && !Uri.TryCreate(endpoint, UriKind.Absolute, out _))
        {
            yield return $"{OtlpEndpointKey} must be an absolute URL (e.g. http://collector:4318), not \"{endpoint}\".";
        }
    }

    /// <summary>True unless <c>Metrics:Enabled</c> is false.</summary>
    public static bool MetricsEnabled(IConfiguration configuration) =>
        !bool.TryParse(configuration[EnabledKey], out var enabled) || enabled;

    /// <summary>True when <c>OTEL_EXPORTER_OTLP_ENDPOINT</c> is set.</summary>
    public static bool OtlpEnabled(IConfiguration configuration) =>
        !string.IsNullOrEmpty(configuration[OtlpEndpointKey]);

    /// <summary>
    /// Registers OpenTelemetry: metrics (unless off) for <c>/metrics</c> and, with an OTLP
    /// endpoint, for OTLP; traces only with an OTLP endpoint (nothing listens to the activity
    /// sources otherwise, so no span is created). Invalid settings throw here, at start.
    /// </summary>
    public static IHostApplicationBuilder AddBrokerTelemetry(this IHostApplicationBuilder builder, string serviceName)
    {
        var problems = Validate(builder.Configuration).ToList();
        if (problems.Count > 0)
        {
            throw new InvalidOperationException(string.Join(Environment.NewLine, problems));
        }

        var metrics = MetricsEnabled(builder.Configuration);
        var otlp = OtlpEnabled(builder.Configuration);
        if (!metrics && !otlp)
        {
            return builder;
        }

        var telemetry = builder.Services.AddOpenTelemetry()
            .ConfigureResource(resource => resource.AddService(serviceName));
        if (metrics)
        {
            telemetry.WithMetrics(meters =>
            {
                meters.AddMeter(ExportedMeters);

                // No cached answer: two scrapes in a row see what happened between them.
                meters.AddPrometheusExporter(o => o.ScrapeResponseCacheDurationMilliseconds = 0);
                if (otlp)
                {
                    meters.AddOtlpExporter();
                }
            });
        }

        if (otlp)
        {
            var ratio = BrokerSampler.RatioFrom(builder.Configuration);
            telemetry.WithTracing(traces => traces.AddSource(ExportedSources).SetSampler(new BrokerSampler(ratio)).AddOtlpExporter());
        }

        return builder;
    }

    /// <summary>Serves <c>/metrics</c> (Prometheus text format) when metrics are on.</summary>
    public static IEndpointRouteBuilder MapBrokerMetrics(this IEndpointRouteBuilder endpoints)
    {
        var configuration = endpoints.ServiceProvider.GetRequiredService<IConfiguration>();
        if (MetricsEnabled(configuration))
        {
            endpoints.MapPrometheusScrapingEndpoint(MetricsPath);
        }

        return endpoints;
    }
}
