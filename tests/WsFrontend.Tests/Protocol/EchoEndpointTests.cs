using System.Net;
using Broker.Frontend.Tests.Infrastructure;

namespace Broker.Frontend.Tests.Protocol;

/// <summary>protocol.md: "/echo is a seed-compatible echo endpoint".</summary>
[Collection(BrokerCollection.Name)]
public sealed class EchoEndpointTests(BrokerFixture fixture)
{
    [Fact]
    public async Task EchoEndpoint_Hello_ServerReceivedHelloAsFirstFrame()
    {
        await using var client = await TestClient.ConnectAsync(fixture.Server.Ws("/echo"), autoRead: false);
        client.StartReading();

        await client.SendTextAsync("hello");
        var reply = await client.NextRawAsync();

        Assert.Equal("Server received: hello", reply.Text);
    }

    [Fact]
    public async Task EchoEndpoint_Ping_Pong()
    {
        await using var client = await TestClient.ConnectAsync(fixture.Server.Ws("/echo"), autoRead: false);
        client.StartReading();

        await client.SendTextAsync("ping");
        var reply = await client.NextRawAsync();

        Assert.Equal("pong", reply.Text);
    }

    [Fact]
    public async Task EchoEndpoint_SeveralFrames_AnsweredInOrder()
    {
        await using var client = await TestClient.ConnectAsync(fixture.Server.Ws("/echo"), autoRead: false);
        client.StartReading();

        string[] sent = ["one", "ping", "{\"type\":\"ping\"}", "héllo ✓", "pingping"];
        foreach (var text in sent)
        {
            await client.SendTextAsync(text);
        }

        var replies = new List<string>();
        foreach (var unused in sent)
        {
            replies.Add((await client.NextRawAsync()).Text);
        }

        Assert.Equal(
            ["Server received: one", "pong", "Server received: {\"type\":\"ping\"}", "Server received: héllo ✓", "Server received: pingping"],
            replies);
    }

    [Fact]
    public async Task EchoEndpoint_BinaryMessageNotUtf8_EchoedAsItCameInABinaryMessage()
    {
        using var socket = new System.Net.WebSockets.ClientWebSocket();
        using var timeout = new CancellationTokenSource(TimeSpan.FromSeconds(10));
        await socket.ConnectAsync(fixture.Server.Ws("/echo"), timeout.Token);
        byte[] payload = [0xFE, 0xFE, 0x00, 0xFF];

        await socket.SendAsync(payload, System.Net.WebSockets.WebSocketMessageType.Binary, endOfMessage: true, timeout.Token);
        var buffer = new byte[256];
        var result = await socket.ReceiveAsync(buffer, timeout.Token);

        // Echoed in a text frame, these bytes would be invalid UTF-8 and the client would have to fail the connection.
        Assert.Equal(System.Net.WebSockets.WebSocketMessageType.Binary, result.MessageType);
        Assert.True(result.EndOfMessage);
        Assert.Equal(payload, buffer[..result.Count]);
    }

    [Fact]
    public async Task EchoEndpoint_HandshakeWithQuery_Accepted()
    {
        var status = await Wire.HandshakeStatusAsync(fixture.Server.Ws("/echo?user=alice"));

        Assert.Equal(HttpStatusCode.SwitchingProtocols, status);
    }
}
