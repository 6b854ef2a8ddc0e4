using System.Text;
using Broker.Frontend.Options;
using Broker.Frontend.Tests.Infrastructure;
using Broker.Transport;
using Microsoft.AspNetCore.Connections;

namespace Broker.Frontend.Tests.Robustness;

/// <summary>
/// The broker's own socket transport ("Broker:SocketTransport" = "Broker", the default): it reads
/// each connection's first request, runs admitted upgrades itself and hands everything else to
/// Kestrel untouched. These tests cover what that split could get wrong: requests whose head
/// arrives in pieces, plain HTTP (kept alive, pipelined) on the same port, clients that vanish
/// before or after the handshake. The WebSocket protocol itself is in <see cref="WireTests"/>.
/// </summary>
public sealed class SocketTransportTests : IAsyncLifetime
{
    private BrokerServer _server = null!;

    public async Task InitializeAsync() => _server = await BrokerServer.StartAsync();

    public async Task DisposeAsync() => await _server.DisposeAsync();

    [Fact]
    public async Task Default_BindsWithTheBrokersTransport_KestrelsWhenAsked()
    {
        Assert.IsType<BrokerSocketTransportFactory>(_server.Services.GetServices<IConnectionListenerFactory>().Last());

        await using var kestrel = await BrokerServer.StartAsync(new Dictionary<string, string?> { ["Broker:SocketTransport"] = "Kestrel" });
        Assert.DoesNotContain(kestrel.Services.GetServices<IConnectionListenerFactory>(), f => f is BrokerSocketTransportFactory);
        using var client = await WireConnection.OpenAsync(kestrel, "/chat?user=on-kestrel");
        Assert.Equal("on-kestrel", client.Welcome.GetProperty("user").GetString());
    }

    [Fact]
    public async Task Upgrade_HeadArrivesInPieces_101AndWelcome()
    {
        using var client = await WireConnection.ConnectAsync(_server);
        var key = WireConnection.NewKey();
        var request = Encoding.ASCII.GetBytes(WireConnection.UpgradeRequest(_server, "/chat?user=pieces", key));

        // One byte per write for the request line, then the headers in two halves.
        for (var i = 0; i < 20; i++)
        {
            await client.WriteAsync(request[i..(i + 1)]);
        }

        var half = 20 + ((request.Length - 20) / 2);
        await client.WriteAsync(request[20..half]);
        await client.WriteAsync(request[half..]);

        var response = await client.ReadHttpResponseAsync("the handshake response");
        Assert.True(response.Status == 101, $"Expected 101, got: {response.Head}{response.Body}");
        Assert.Equal(WireConnection.AcceptFor(key), response.Header("Sec-WebSocket-Accept"));
        var welcome = await client.ReadJsonAsync("the welcome frame");
        Assert.Equal("pieces", welcome.GetProperty("user").GetString());
    }

    [Fact]
    public async Task Http_TwoRequestsOnOneKeptAliveConnection_BothAnswered()
    {
        using var client = await WireConnection.ConnectAsync(_server);

        for (var i = 1; i <= 2; i++)
        {
            await client.WriteAsync(WireConnection.GetRequest(_server, "/healthz"));
            var response = await client.ReadHttpResponseAsync($"health response #{i}");
            Assert.True(response.Status == 200, $"Expected 200, got: {response.Head}{response.Body}");
            Assert.Contains("\"ok\"", response.Body, StringComparison.Ordinal);
        }
    }

    [Fact]
    public async Task Http_PipelinedRefusalAndHealth_BothAnsweredInOrder()
    {
        using var client = await WireConnection.ConnectAsync(_server);

        // A refused upgrade and a second request in one write: the transport reads the first
        // head, refuses it, and Kestrel must still see every byte of both.
        await client.WriteAsync(
            WireConnection.UpgradeRequest(_server, "/no-such-namespace?user=a", WireConnection.NewKey())
            + WireConnection.GetRequest(_server, "/healthz"));

        var refused = await client.ReadHttpResponseAsync("the refusal");
        Assert.True(refused.Status == 404, $"Expected 404, got: {refused.Head}{refused.Body}");
        var health = await client.ReadHttpResponseAsync("the health response after it");
        Assert.True(health.Status == 200, $"Expected 200, got: {health.Head}{health.Body}");
    }

    [Fact]
    public async Task Clients_ResetAfterWelcome_AllForgottenAndServerStillServes()
    {
        var clients = new List<WireConnection>();
        try
        {
            for (var i = 0; i < 20; i++)
            {
                clients.Add(await WireConnection.OpenAsync(_server, $"/chat?user=reset-{i}"));
            }

            await Eventually.WaitUntilAsync(() => _server.Node.ConnectionCount == 20, TimeSpan.FromSeconds(10), "20 connections to register");
            foreach (var client in clients)
            {
                client.Reset();
            }

            await Eventually.WaitUntilAsync(() => _server.Node.ConnectionCount == 0, TimeSpan.FromSeconds(10), "the reset connections to be forgotten");
        }
        finally
        {
            clients.ForEach(c => c.Dispose());
        }

        using var after = await WireConnection.OpenAsync(_server, "/chat?user=after");
        Assert.Equal("after", after.Welcome.GetProperty("user").GetString());
    }

    [Fact]
    public async Task Clients_GoneBeforeOrInsideTheHead_ServerStillServes()
    {
        using (await WireConnection.ConnectAsync(_server))
        {
            // Connected, sent nothing, closed.
        }

        using (var partial = await WireConnection.ConnectAsync(_server))
        {
            await partial.WriteAsync("GET /chat?user=half HTTP/1.1\r\nHost: 127.0.0.1\r\nUpgr");
        }

        var reset = await WireConnection.ConnectAsync(_server);
        await reset.WriteAsync("GET /chat?user=reset HTTP/1.1\r\n");
        reset.Reset();

        using var after = await WireConnection.OpenAsync(_server, "/chat?user=after");
        Assert.Equal("after", after.Welcome.GetProperty("user").GetString());
        Assert.Equal(1, _server.Node.ConnectionCount);
    }
}
