using System.Net.Sockets;
using Broker.Frontend.Diagnostics;
using Broker.Frontend.Hosting;
using Broker.Frontend.Tests.Infrastructure;
using Broker.Frontend.Tests.Robustness;

namespace Broker.Frontend.Tests.Transport;

/// <summary>
/// The first request of a connection, on every transport: one deadline for all of it
/// (Broker:HandshakeTimeout, Kestrel's timeouts set to match), at most 100 headers, HTTP/1.1
/// only, and lines that Kestrel and the broker's parser can only read one way.
/// </summary>
public sealed class HandshakeLimitTests(WireTests.Servers servers) : IClassFixture<WireTests.Servers>
{
    private const string Pipe = "Pipe";
    private const string PipeOnKestrel = "PipeOnKestrel";
    private const string AspNetCore = "AspNetCore";

    [Theory]
    [InlineData(Pipe)]
    [InlineData(PipeOnKestrel)]
    [InlineData(AspNetCore)]
    public async Task HalfOpenConnections_AllClosedAfterTheHandshakeTimeout(string transport)
    {
        await using var server = await BrokerServer.StartAsync(WireTests.Servers.Settings(transport, new() { ["Broker:HandshakeTimeout"] = "00:00:01" }));
        var partialUpgrade = $"GET /chat?user=slow HTTP/1.1\r\nHost: 127.0.0.1:{server.HttpBase.Port}\r\nUpgrade: websocket\r\nConn";
        var partialGet = $"GET /healthz HTTP/1.1\r\nHost: 127.0.0.1:{server.HttpBase.Port}\r\n";
        var clients = new List<TcpClient>();
        try
        {
            // 100 upgrade heads cut short, 50 plain GETs cut short, 50 connections that send nothing.
            for (var i = 0; i < 200; i++)
            {
                var client = new TcpClient();
                clients.Add(client);
                await client.ConnectAsync(System.Net.IPAddress.Loopback, server.HttpBase.Port);
                if (i < 150)
                {
                    await client.GetStream().WriteAsync(System.Text.Encoding.ASCII.GetBytes(i < 100 ? partialUpgrade : partialGet));
                }
            }

            // Every one is closed by the server (Kestrel answers its own with 408 first; the
            // broker's transports close an upgrade unanswered). Kestrel's timeouts are checked
            // once a second, so a deadline of 1 s ends within a few.
            using var deadline = new CancellationTokenSource(WireConnection.Timeout);
            var answered = await Task.WhenAll(clients.Select(c => ReadToEndAsync(c, deadline.Token)));
            if (transport != AspNetCore)
            {
                Assert.All(answered.Take(100), bytes => Assert.Equal(0, bytes));
            }
        }
        finally
        {
            clients.ForEach(c => c.Dispose());
        }

        if (transport != AspNetCore)
        {
            // The broker's transports read every first request themselves: they closed all 200.
            Assert.True(server.Services.GetRequiredService<ClientEventLog>().Total(ClientEvent.HandshakeTimeout) >= 200);
        }

        using var after = await WireConnection.OpenAsync(server, "/chat?user=after");
        Assert.Equal("after", after.Welcome.GetProperty("user").GetString());
    }

    [Theory]
    [InlineData(Pipe, 100, 101)]
    [InlineData(Pipe, 101, 431)]
    [InlineData(PipeOnKestrel, 100, 101)]
    [InlineData(PipeOnKestrel, 101, 431)]
    [InlineData(AspNetCore, 100, 101)]
    [InlineData(AspNetCore, 101, 431)]
    public async Task Upgrade_HeaderCount_AtMost100(string transport, int headers, int expected)
    {
        var server = await servers.ForAsync(transport);
        using var client = await WireConnection.ConnectAsync(server);
        var request = WireConnection.UpgradeRequest(server, "/chat?user=many", WireConnection.NewKey());

        // The request has 5 headers of its own (Host, Upgrade, Connection, the key, the version).
        var extra = string.Concat(Enumerable.Range(0, headers - 5).Select(i => $"X-Pad-{i}: v\r\n"));
        await client.WriteAsync(request[..^2] + extra + "\r\n");

        var response = await client.ReadHttpResponseAsync($"the answer to an upgrade with {headers} headers");
        Assert.True(response.Status == expected, $"Expected {expected}, got: {response.Head}{response.Body}");
    }

    [Theory]
    [InlineData(Pipe, "/chat?user=old")]
    [InlineData(PipeOnKestrel, "/chat?user=old")]
    [InlineData(AspNetCore, "/chat?user=old")]
    [InlineData(Pipe, "/echo")]
    public async Task Upgrade_Http10_400(string transport, string path)
    {
        var server = await servers.ForAsync(transport);
        using var client = await WireConnection.ConnectAsync(server);
        var request = WireConnection.UpgradeRequest(server, path, WireConnection.NewKey()).Replace("HTTP/1.1", "HTTP/1.0", StringComparison.Ordinal);

        await client.WriteAsync(request);

        var response = await client.ReadHttpResponseAsync("the answer to an HTTP/1.0 upgrade");
        Assert.True(response.Status == 400, $"Expected 400, got: {response.Head}{response.Body}");
    }

    [Theory]
    [InlineData(Pipe)]
    [InlineData(PipeOnKestrel)]
    [InlineData(AspNetCore)]
    public async Task Upgrade_HeaderLineEndingInBareLf_ReadByKestrelAlone(string transport)
    {
        var server = await servers.ForAsync(transport);
        using var client = await WireConnection.ConnectAsync(server);
        var key = WireConnection.NewKey();

        // Kestrel ends a line at a bare LF; a parser that did not would read "X-Pad: a\nUpgrade:
        // websocket" as one header. The broker's parser leaves such a request to Kestrel.
        await client.WriteAsync(
            $"GET /chat?user=lf HTTP/1.1\r\nHost: 127.0.0.1:{server.HttpBase.Port}\r\nX-Pad: a\nUpgrade: websocket\r\n" +
            $"Connection: Upgrade\r\nSec-WebSocket-Key: {key}\r\nSec-WebSocket-Version: 13\r\n\r\n");

        var response = await client.ReadHttpResponseAsync("the answer to an upgrade with a bare LF");
        Assert.True(response.Status == 101, $"Expected 101, got: {response.Head}{response.Body}");
        Assert.Equal(WireConnection.AcceptFor(key), response.Header("Sec-WebSocket-Accept"));

        // Kestrel's answer (it names itself), not the broker transport's.
        Assert.Equal("Kestrel", response.Header("Server"));
        Assert.Equal("welcome", Frame.Type(await client.ReadJsonAsync("the welcome frame")));
    }

    [Theory]
    [InlineData(Pipe)]
    [InlineData(PipeOnKestrel)]
    [InlineData(AspNetCore)]
    public async Task Upgrade_HeaderLineWithBareCr_400(string transport)
    {
        var server = await servers.ForAsync(transport);
        using var client = await WireConnection.ConnectAsync(server);

        await client.WriteAsync(
            $"GET /chat?user=cr HTTP/1.1\r\nHost: 127.0.0.1:{server.HttpBase.Port}\r\nX-Pad: a\rUpgrade: websocket\r\n" +
            $"Connection: Upgrade\r\nSec-WebSocket-Key: {WireConnection.NewKey()}\r\nSec-WebSocket-Version: 13\r\n\r\n");

        var response = await client.ReadHttpResponseAsync("the answer to an upgrade with a bare CR");
        Assert.True(response.Status == 400, $"Expected 400, got: {response.Head}{response.Body}");
    }

    /// <summary>Reads until the server ends the connection (EOF or reset); the bytes it sent before. Fails if it does not end in time.</summary>
    private static async Task<int> ReadToEndAsync(TcpClient client, CancellationToken cancellationToken)
    {
        var buffer = new byte[1024];
        var total = 0;
        try
        {
            int read;
            while ((read = await client.GetStream().ReadAsync(buffer, cancellationToken)) > 0)
            {
                total += read;
            }
        }
        catch (IOException)
        {
            // Reset: ended too.
        }
        catch (OperationCanceledException)
        {
            Assert.Fail($"A half-open connection was still open after {WireConnection.Timeout}.");
        }

        return total;
    }
}
