using Broker.Frontend.Tests.Infrastructure;

namespace Broker.Frontend.Tests.Protocol;

/// <summary>protocol.md: "id comes back exactly as sent: any JSON number (0, 0.5, 2^53−1) or string".</summary>
[Collection(BrokerCollection.Name)]
public sealed class IdEchoTests(BrokerFixture fixture)
{
    public static TheoryData<string> Ids => new()
    {
        "0",
        "0.5",
        "9007199254740991",
        "-17",
        "1e3",
        "\"abc\"",
        "\"\"",
        "\"with \\\"quotes\\\" and é\"",
    };

    [Theory]
    [MemberData(nameof(Ids))]
    public async Task Ping_Id_PongCarriesSameLiteral(string id)
    {
        await using var peer = await Peer.ConnectAsync(fixture.Server, "/chat?user=ids");

        await peer.SendRawAsync("{\"type\":\"ping\",\"id\":" + id + "}");
        var reply = await peer.Client.NextRawAsync();

        Assert.Equal("pong", Wire.TypeOf(reply));
        Assert.Equal(id, reply.Json.GetProperty("id").GetRawText());
        Wire.AssertRawId(reply.Text, id);
    }

    [Theory]
    [MemberData(nameof(Ids))]
    public async Task Error_Id_ErrorCarriesSameLiteral(string id)
    {
        await using var peer = await Peer.ConnectAsync(fixture.Server, "/chat?user=ids");

        await peer.SendRawAsync("{\"type\":\"no-such-type\",\"id\":" + id + "}");
        var reply = await peer.Client.NextRawAsync();

        Wire.AssertError(reply.Json, "unknown_type", id);
        Wire.AssertRawId(reply.Text, id);
    }

    [Theory]
    [InlineData("join")]
    [InlineData("publish")]
    [InlineData("history")]
    [InlineData("presence")]
    [InlineData("echo")]
    [InlineData("send")]
    [InlineData("leave")]
    public async Task Frame_FractionalAndMaxSafeIds_ReplyCarriesSameLiteral(string type)
    {
        var room = BrokerFixture.UniqueRoom();
        await using var peer = await Peer.ConnectAsync(fixture.Server, "/chat?user=ids");
        if (type is "publish" or "leave" or "history" or "presence")
        {
            await peer.JoinAsync(room);
        }

        foreach (var id in new[] { "0.5", "9007199254740991", "0", "\"s-1\"" })
        {
            if (type == "leave" && id != "0.5")
            {
                await peer.JoinAsync(room);
            }

            await peer.SendRawAsync(type switch
            {
                "join" => $"{{\"type\":\"join\",\"id\":{id},\"room\":\"{room}\"}}",
                "publish" => $"{{\"type\":\"publish\",\"id\":{id},\"room\":\"{room}\",\"data\":1}}",
                "history" => $"{{\"type\":\"history\",\"id\":{id},\"room\":\"{room}\"}}",
                "presence" => $"{{\"type\":\"presence\",\"id\":{id},\"room\":\"{room}\"}}",
                "echo" => $"{{\"type\":\"echo\",\"id\":{id},\"data\":1}}",
                "send" => $"{{\"type\":\"send\",\"id\":{id},\"to\":\"nobody-{room}\",\"data\":1}}",
                _ => $"{{\"type\":\"leave\",\"id\":{id},\"room\":\"{room}\"}}",
            });
            var reply = await peer.ReplyRawAsync(id);

            Assert.NotEqual("error", Wire.TypeOf(reply));
            Wire.AssertRawId(reply.Text, id);
        }
    }
}
