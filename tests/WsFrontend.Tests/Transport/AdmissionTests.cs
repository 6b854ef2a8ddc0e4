using System.Globalization;
using System.Net;
using Broker.Frontend.Hosting;
using Broker.Frontend.Tests.Infrastructure;
using Broker.Frontend.Tests.Robustness;
using Broker.Transport;
using Microsoft.AspNetCore.Connections;

namespace Broker.Frontend.Tests.Transport;

/// <summary>
/// Connection admission (protocol.md "Bounds"), on every transport: the front-end's cap and the
/// per-address cap refuse an upgrade with 503 and Retry-After and give the place back when a
/// socket closes; Kestrel's connection limits hold on the broker's own sockets too. Counts are
/// read from the broker's own accounting (<see cref="ConnectionLimits"/>).
/// </summary>
public sealed class AdmissionTests
{
    private const string Pipe = "Pipe";
    private const string PipeOnKestrel = "PipeOnKestrel";
    private const string AspNetCore = "AspNetCore";
    private static readonly IPAddress Second = IPAddress.Parse("127.0.0.2");

    [Theory]
    [InlineData(Pipe)]
    [InlineData(PipeOnKestrel)]
    [InlineData(AspNetCore)]
    public async Task Upgrade_PastThePerAddressCap_503WithRetryAfterAndOtherAddressesStillAdmitted(string transport)
    {
        await using var server = await BrokerServer.StartAsync(WireTests.Servers.Settings(transport, new() { ["Broker:MaxConnectionsPerIp"] = "2" }));
        var limits = server.Services.GetRequiredService<ConnectionLimits>();
        using var first = await WireConnection.OpenAsync(server, "/chat?user=a1");
        using var second = await WireConnection.OpenAsync(server, "/chat?user=a2");

        var refused = await UpgradeAsync(server, IPAddress.Loopback, "/chat?user=a3");
        Assert.True(refused.Status == 503, $"Expected 503, got: {refused.Head}{refused.Body}");
        Assert.Equal(ConnectionLimits.RetryAfterSeconds.ToString(CultureInfo.InvariantCulture), refused.Header("Retry-After"));
        Assert.Equal(2, limits.CountFor(IPAddress.Loopback));

        // Another address is not held back by this one.
        var other = await UpgradeAsync(server, Second, "/chat?user=b1");
        Assert.True(other.Status == 101, $"Expected 101 from 127.0.0.2, got: {other.Head}{other.Body}");
    }

    [Theory]
    [InlineData(Pipe)]
    [InlineData(PipeOnKestrel)]
    [InlineData(AspNetCore)]
    public async Task Upgrade_PastTheFrontendCap_503ThenAdmittedOnceOneCloses(string transport)
    {
        await using var server = await BrokerServer.StartAsync(WireTests.Servers.Settings(transport, new() { ["Broker:MaxConnections"] = "2" }));
        var limits = server.Services.GetRequiredService<ConnectionLimits>();
        var first = await WireConnection.OpenAsync(server, "/chat?user=a1");
        using var second = await WireConnection.OpenAsync(server, "/chat?user=a2");

        var refused = await UpgradeAsync(server, Second, "/chat?user=b1");
        Assert.True(refused.Status == 503, $"Expected 503, got: {refused.Head}{refused.Body}");
        Assert.NotNull(refused.Header("Retry-After"));
        Assert.Equal(2, limits.Count);

        // A socket that closes gives its place back.
        first.Reset();
        await Eventually.WaitUntilAsync(() => limits.Count == 1, TimeSpan.FromSeconds(10), "the reset connection's place to be released");
        using var third = await WireConnection.OpenAsync(server, "/chat?user=a3");
        Assert.Equal(2, limits.Count);
    }

    [Fact]
    public async Task Echo_PastTheFrontendCap_503()
    {
        await using var server = await BrokerServer.StartAsync(new Dictionary<string, string?> { ["Broker:MaxConnections"] = "1" });
        using var held = await WireConnection.OpenAsync(server, "/chat?user=a1");

        var refused = await UpgradeAsync(server, IPAddress.Loopback, "/echo");

        Assert.True(refused.Status == 503, $"Expected 503, got: {refused.Head}{refused.Body}");
    }

    [Theory]
    [InlineData(Pipe)]
    [InlineData(PipeOnKestrel)]
    [InlineData(AspNetCore)]
    public async Task Upgrade_KestrelsUpgradedConnectionLimit_HonouredWith503(string transport)
    {
        await using var server = await BrokerServer.StartAsync(WireTests.Servers.Settings(transport, new() { ["Kestrel:Limits:MaxConcurrentUpgradedConnections"] = "2" }));
        Assert.Equal(2, server.Services.GetRequiredService<ConnectionLimits>().Max);
        using var first = await WireConnection.OpenAsync(server, "/chat?user=a1");
        using var second = await WireConnection.OpenAsync(server, "/chat?user=a2");

        var refused = await UpgradeAsync(server, Second, "/chat?user=b1");

        Assert.True(refused.Status == 503, $"Expected 503, got: {refused.Head}{refused.Body}");
    }

    [Fact]
    public async Task Accept_PastKestrelsConnectionLimitOnTheBrokersSockets_503AndHealthzAfterwards()
    {
        await using var server = await BrokerServer.StartAsync(new Dictionary<string, string?> { ["Kestrel:Limits:MaxConcurrentConnections"] = "2" });
        var factory = server.Services.GetServices<IConnectionListenerFactory>().OfType<BrokerSocketTransportFactory>().Single();
        var first = await WireConnection.OpenAsync(server, "/chat?user=a1");
        using var second = await WireConnection.OpenAsync(server, "/chat?user=a2");
        Assert.Equal(2, factory.OpenConnections);

        using (var third = await WireConnection.ConnectAsync(server))
        {
            var refused = await third.ReadHttpResponseAsync("the answer to a connection past MaxConcurrentConnections");
            Assert.True(refused.Status == 503, $"Expected 503, got: {refused.Head}{refused.Body}");
        }

        first.Reset();
        await Eventually.WaitUntilAsync(() => factory.OpenConnections == 1, TimeSpan.FromSeconds(10), "the reset connection to be counted out");
        using var health = await WireConnection.ConnectAsync(server);
        await health.WriteAsync(WireConnection.GetRequest(server, "/healthz"));
        var ok = await health.ReadHttpResponseAsync("the /healthz response");
        Assert.Equal(200, ok.Status);
    }

    [Fact]
    public void DerivedMaxConnections_LeavesAReserveBelowTheDescriptorLimit()
    {
        var limit = long.Parse(
            File.ReadLines("/proc/self/limits").Single(l => l.StartsWith("Max open files", StringComparison.Ordinal))["Max open files".Length..]
                .Split(' ', StringSplitOptions.RemoveEmptyEntries)[0],
            CultureInfo.InvariantCulture);

        var derived = ConnectionLimits.DerivedMaxConnections();

        Assert.Equal(limit - Math.Max(ConnectionLimits.DescriptorReserveMin, limit / ConnectionLimits.DescriptorReserveDivisor), derived);
    }

    /// <summary>Connects from <paramref name="source"/>, sends an upgrade request, and reads the HTTP response.</summary>
    private static async Task<WireHttpResponse> UpgradeAsync(BrokerServer server, IPAddress source, string pathAndQuery)
    {
        using var client = await WireConnection.ConnectFromAsync(server, source);
        await client.WriteAsync(WireConnection.UpgradeRequest(server, pathAndQuery, WireConnection.NewKey()));
        return await client.ReadHttpResponseAsync($"the answer to an upgrade to {pathAndQuery} from {source}");
    }
}
