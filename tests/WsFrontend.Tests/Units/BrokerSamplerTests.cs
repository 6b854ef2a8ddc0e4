using System.Diagnostics;
using Broker.Telemetry;
using Microsoft.Extensions.Configuration;
using OpenTelemetry.Trace;

namespace Broker.Frontend.Tests.Units;

/// <summary>Which spans start or continue a trace (the OTLP test shows a sampled trace end to end).</summary>
public sealed class BrokerSamplerTests
{
    private static SamplingDecision Decide(BrokerSampler sampler, string name, ActivityContext parent = default) =>
        sampler.ShouldSample(new SamplingParameters(parent, ActivityTraceId.CreateRandom(), name, ActivityKind.Internal)).Decision;

    [Fact]
    public void Roots_OnlyAPublishStartsATrace()
    {
        var sampler = new BrokerSampler(1);
        Assert.Equal(SamplingDecision.RecordAndSample, Decide(sampler, BrokerSampler.RootSpan));
        Assert.Equal(SamplingDecision.Drop, Decide(sampler, "IMembershipTable/ReadAll"));
        Assert.Equal(SamplingDecision.Drop, Decide(new BrokerSampler(0), BrokerSampler.RootSpan));
    }

    [Fact]
    public void Children_FollowTheirParent()
    {
        var sampler = new BrokerSampler(0);
        var recorded = new ActivityContext(ActivityTraceId.CreateRandom(), ActivitySpanId.CreateRandom(), ActivityTraceFlags.Recorded, isRemote: true);
        var notRecorded = new ActivityContext(ActivityTraceId.CreateRandom(), ActivitySpanId.CreateRandom(), ActivityTraceFlags.None, isRemote: true);
        Assert.Equal(SamplingDecision.RecordAndSample, Decide(sampler, "room.commit", recorded));
        Assert.Equal(SamplingDecision.Drop, Decide(new BrokerSampler(1), "room.commit", notRecorded));
    }

    [Theory]
    [InlineData(null, null, 1.0)]
    [InlineData(null, "0.01", 0.01)]
    [InlineData("parentbased_traceidratio", "0.25", 0.25)]
    [InlineData("always_off", "0.5", 0.0)]
    [InlineData("always_on", "0.5", 1.0)]
    [InlineData(null, "2", 1.0)]
    [InlineData(null, "lots", 1.0)]
    public void Ratio_FromTheStandardVariables(string? samplerName, string? arg, double expected)
    {
        var configuration = new ConfigurationBuilder().AddInMemoryCollection(new Dictionary<string, string?>
        {
            ["OTEL_TRACES_SAMPLER"] = samplerName,
            ["OTEL_TRACES_SAMPLER_ARG"] = arg,
        }).Build();
        Assert.Equal(expected, BrokerSampler.RatioFrom(configuration));
    }
}
