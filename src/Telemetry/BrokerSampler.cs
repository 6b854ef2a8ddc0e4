using System.Globalization;
using Microsoft.Extensions.Configuration;
using OpenTelemetry.Trace;

namespace Broker.Telemetry;

/// <summary>
/// Which traces are recorded. A trace starts only at a broker <c>publish</c> (a client's frame or
/// the server API's request), sampled by trace id at the ratio <c>OTEL_TRACES_SAMPLER_ARG</c>
/// (default 1: every publish); every other span follows its parent's decision, so a sampled
/// publish brings its room commit and its deliveries, and nothing else. Orleans' own grain calls
/// that no publish caused (membership, heartbeats, the registry) start no trace: with the SDK's
/// default sampler each of them would be a trace of its own.
/// </summary>
public sealed class BrokerSampler : Sampler
{
    /// <summary>The name of the only span that may start a trace.</summary>
    public const string RootSpan = "publish";

    private static readonly SamplingResult Drop = new(SamplingDecision.Drop);
    private static readonly SamplingResult Record = new(SamplingDecision.RecordAndSample);
    private readonly Sampler _roots;

    public BrokerSampler(double ratio)
    {
        Ratio = ratio;
        _roots = new TraceIdRatioBasedSampler(ratio);
        Description = $"BrokerSampler{{publish roots at {ratio.ToString(CultureInfo.InvariantCulture)}, others follow their parent}}";
    }

    /// <summary>The share of publishes that start a recorded trace.</summary>
    public double Ratio { get; }

    /// <summary>
    /// The ratio from the standard variables: <c>OTEL_TRACES_SAMPLER=always_off</c> is 0,
    /// <c>always_on</c> is 1, otherwise <c>OTEL_TRACES_SAMPLER_ARG</c> (0..1) if set, else 1.
    /// </summary>
    public static double RatioFrom(IConfiguration configuration)
    {
        switch (configuration["OTEL_TRACES_SAMPLER"]?.Trim().ToLowerInvariant())
        {
            case "always_off" or "parentbased_always_off":
                return 0;
            case "always_on" or "parentbased_always_on":
                return 1;
        }

        return double.TryParse(configuration["OTEL_TRACES_SAMPLER_ARG"], NumberStyles.Float, CultureInfo.InvariantCulture, out var ratio)
            && ratio is >= 0 and <= 1 ? ratio : 1;
    }

    public override SamplingResult ShouldSample(in SamplingParameters parameters)
    {
        var parent = parameters.ParentContext;
        if (parent.TraceId != default)
        {
            return (parent.TraceFlags & System.Diagnostics.ActivityTraceFlags.Recorded) != 0 ? Record : Drop;
        }

        return parameters.Name == RootSpan ? _roots.ShouldSample(parameters) : Drop;
    }
}
