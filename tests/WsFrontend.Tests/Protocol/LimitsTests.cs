using System.Net.WebSockets;
using System.Text;
using Broker.Frontend.Tests.Infrastructure;

namespace Broker.Frontend.Tests.Protocol;

/// <summary>protocol.md "Errors and limits": close codes and rate_limited.</summary>
[Collection(BrokerCollection.Name)]
public sealed class CloseCodeTests(BrokerFixture fixture)
{
    [Fact]
    public async Task BinaryFrame_DefaultNamespace_Close1003()
    {
        await using var peer = await Peer.ConnectAsync(fixture.Server, "/chat?user=binary");

        await peer.Client.SendBytesAsync("{\"type\":\"ping\"}"u8.ToArray(), WebSocketMessageType.Binary);

        Assert.Equal((WebSocketCloseStatus)1003, await peer.Client.WaitForCloseAsync());
    }

    [Fact]
    public async Task TextFrame_LargerThanMaxFrameBytes_Close1009()
    {
        await using var peer = await Peer.ConnectAsync(fixture.Server, "/chat?user=large");
        var big = "{\"type\":\"echo\",\"data\":\"" + new string('x', 70 * 1024) + "\"}";

        try
        {
            await peer.Client.SendBytesAsync(Encoding.UTF8.GetBytes(big), WebSocketMessageType.Text);
        }
        catch (WebSocketException)
        {
            // The server may close while the frame is still being sent.
        }

        Assert.Equal((WebSocketCloseStatus)1009, await peer.Client.WaitForCloseAsync());
    }

    [Fact]
    public async Task TextFrame_JustUnderMaxFrameBytes_Answered()
    {
        await using var peer = await Peer.ConnectAsync(fixture.Server, "/chat?user=large");
        var data = new string('x', 60 * 1024);

        var echo = await peer.RequestAsync(new() { ["type"] = "echo", ["data"] = data });

        Assert.Equal("echo", Wire.TypeOf(echo));
        Assert.Equal(data, echo.GetProperty("data").GetString());
    }
}

public sealed class RateLimitTests
{
    [Fact]
    public async Task Frames_OverRateLimit_RateLimitedErrorWithIdConnectionStaysOpen()
    {
        await using var server = await BrokerServer.StartAsync(new Dictionary<string, string?>
        {
            ["Broker:RateLimitPerSecond"] = "1",
            ["Broker:RateLimitBurst"] = "2",
        });
        await using var peer = await Peer.ConnectAsync(server, "/chat?user=fast");

        const int count = 20;
        for (var i = 0; i < count; i++)
        {
            await peer.SendRawAsync("{\"type\":\"echo\",\"id\":" + (100 + i) + ",\"data\":" + i + "}");
        }

        var replies = new List<ReceivedFrame>();
        for (var i = 0; i < count; i++)
        {
            replies.Add(await peer.ReplyRawAsync((100 + i).ToString(System.Globalization.CultureInfo.InvariantCulture)));
        }

        var limited = replies.Where(r => Wire.TypeOf(r) == "error").ToList();
        Assert.NotEmpty(limited);
        Assert.All(limited, r => Assert.Equal("rate_limited", r.Json.GetProperty("code").GetString()));
        Assert.All(limited, r => Assert.False(string.IsNullOrWhiteSpace(r.Json.GetProperty("message").GetString())));
        Assert.Contains(replies, r => Wire.TypeOf(r) == "echo");
        Assert.Equal(WebSocketState.Open, peer.Client.Socket.State);
    }
}
