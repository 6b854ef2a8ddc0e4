using System.Net;
using Broker.Frontend.Tests.Infrastructure;

namespace Broker.Frontend.Tests.Health;

/// <summary>/health/live and /health/ready (ASP.NET Core health checks) beside /healthz; "health" is not a namespace name.</summary>
public sealed class HealthEndpointTests
{
    [Fact]
    public async Task Health_RunningEmbeddedBroker_LiveAndReady200()
    {
        await using var server = await BrokerServer.StartAsync();
        using var http = new HttpClient { BaseAddress = server.HttpBase };

        Assert.Equal(HttpStatusCode.OK, (await http.GetAsync("health/live")).StatusCode);
        Assert.Equal(HttpStatusCode.OK, (await http.GetAsync("health/ready")).StatusCode);
        Assert.Equal(HttpStatusCode.OK, (await http.GetAsync("healthz")).StatusCode);
    }

    [Fact]
    public async Task Start_NamespaceNamedHealth_RefusedByValidation()
    {
        var error = await Assert.ThrowsAnyAsync<Exception>(() => BrokerServer.StartAsync(new Dictionary<string, string?> { ["Broker:Namespaces:health:History"] = "10" }));

        Assert.Contains("Broker:Namespaces:health", error.Message, StringComparison.Ordinal);
    }
}
