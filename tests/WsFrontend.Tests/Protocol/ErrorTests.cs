using System.Net.WebSockets;
using Broker.Frontend.Tests.Infrastructure;

namespace Broker.Frontend.Tests.Protocol;

/// <summary>
/// protocol.md "Errors and limits": an error frame with code, a sentence, the id when the frame
/// had a valid one; the connection keeps working (a ping after each bad frame is answered) and
/// no other connection is disturbed.
/// </summary>
[Collection(BrokerCollection.Name)]
public sealed class ErrorTests(BrokerFixture fixture)
{
    private static readonly string LongRoom = new('r', 201);

    private BrokerServer Server => fixture.Server;

    /// <summary>Raw frame, expected code, expected id literal (null: none).</summary>
    public static TheoryData<string, string, string?> BadFrames => new()
    {
        { "this is not json", "bad_request", null },
        { "{\"type\":\"ping\"", "bad_request", null },
        { "", "bad_request", null },
        { "[1,2,3]", "bad_request", null },
        { "[{\"type\":\"ping\",\"id\":1}]", "bad_request", null },
        { "\"ping\"", "bad_request", null },
        { "42", "bad_request", null },
        { "null", "bad_request", null },
        { "{}", "bad_request", null },
        { "{\"id\":1}", "bad_request", "1" },
        { "{\"type\":5,\"id\":2}", "bad_request", "2" },
        { "{\"type\":null,\"id\":2}", "bad_request", "2" },
        { "{\"type\":\"ping\",\"id\":{\"x\":1}}", "bad_request", null },
        { "{\"type\":\"ping\",\"id\":[1]}", "bad_request", null },
        { "{\"type\":\"ping\",\"id\":true}", "bad_request", null },
        { "{\"type\":\"join\",\"id\":3}", "bad_request", "3" },
        { "{\"type\":\"join\",\"id\":4,\"room\":5}", "bad_request", "4" },
        { "{\"type\":\"join\",\"id\":4,\"room\":null}", "bad_request", "4" },
        { "{\"type\":\"join\",\"id\":4,\"room\":[\"a\"]}", "bad_request", "4" },
        { "{\"type\":\"join\",\"id\":5,\"room\":\"\"}", "bad_request", "5" },
        { "{\"type\":\"leave\",\"id\":6}", "bad_request", "6" },
        { "{\"type\":\"presence\",\"id\":6}", "bad_request", "6" },
        { "{\"type\":\"history\",\"id\":6}", "bad_request", "6" },
        { "{\"type\":\"publish\",\"id\":7}", "bad_request", "7" },
        { "{\"type\":\"publish\",\"id\":8,\"room\":\"r\"}", "bad_request", "8" },
        { "{\"type\":\"publish\",\"id\":8,\"room\":\"r\",\"data\":1,\"msgId\":5}", "bad_request", "8" },
        { "{\"type\":\"echo\",\"id\":9}", "bad_request", "9" },
        { "{\"type\":\"send\",\"id\":10,\"to\":\"bob\"}", "bad_request", "10" },
        { "{\"type\":\"send\",\"id\":11,\"data\":1}", "bad_request", "11" },
        { "{\"type\":\"send\",\"id\":11,\"to\":\"\",\"data\":1}", "bad_request", "11" },
        { "{\"type\":\"send\",\"id\":11,\"to\":7,\"data\":1}", "bad_request", "11" },
        { "{\"type\":\"join\",\"id\":12,\"room\":\"r\",\"since\":-1}", "bad_request", "12" },
        { "{\"type\":\"join\",\"id\":13,\"room\":\"r\",\"since\":\"5\"}", "bad_request", "13" },
        { "{\"type\":\"join\",\"id\":13,\"room\":\"r\",\"since\":1.5}", "bad_request", "13" },
        { "{\"type\":\"join\",\"id\":13,\"room\":\"r\",\"since\":1,\"epoch\":7}", "bad_request", "13" },
        { "{\"type\":\"history\",\"id\":14,\"room\":\"r\",\"since\":-1}", "bad_request", "14" },
        { "{\"type\":\"history\",\"id\":15,\"room\":\"r\",\"since\":\"x\"}", "bad_request", "15" },
        { "{\"type\":\"history\",\"id\":16,\"room\":\"r\",\"limit\":0}", "bad_request", "16" },
        { "{\"type\":\"history\",\"id\":17,\"room\":\"r\",\"limit\":-3}", "bad_request", "17" },
        { "{\"type\":\"history\",\"id\":18,\"room\":\"r\",\"limit\":\"10\"}", "bad_request", "18" },
        { "{\"type\":\"subscribe\",\"id\":19,\"room\":\"r\"}", "unknown_type", "19" },
        { "{\"type\":\"\",\"id\":\"u\"}", "unknown_type", "\"u\"" },
        { "{\"type\":\"PING\",\"id\":20}", "unknown_type", "20" },
        { "{\"type\":\"leave\",\"id\":21,\"room\":\"never-joined\"}", "not_found", "21" },
        { "{\"type\":\"join\",\"id\":22,\"room\":\"" + LongRoom + "\"}", "too_large", "22" },
        { "{\"type\":\"publish\",\"id\":23,\"room\":\"" + LongRoom + "\",\"data\":1}", "too_large", "23" },
        { "{\"type\":\"send\",\"id\":24,\"to\":\"" + LongRoom + "\",\"data\":1}", "too_large", "24" },
    };

    [Theory]
    [MemberData(nameof(BadFrames))]
    public async Task BadFrame_ErrorWithCodeAndIdThenConnectionStillWorks(string frame, string code, string? idLiteral)
    {
        await using var peer = await Peer.ConnectAsync(Server, "/chat?user=errors");

        await peer.SendRawAsync(frame);
        var before = await peer.SyncAsync();

        var error = Assert.Single(before);
        Assert.True(error.IsJson, $"the reply is not JSON: {error.Text}");
        Wire.AssertError(error.Json, code, idLiteral);
        Assert.Equal("pong", Wire.TypeOf(await peer.RequestAsync(new() { ["type"] = "ping" })));
    }

    [Theory]
    [InlineData("{\"type\":\"ping\",\"id\":9} garbage")]
    [InlineData("{\"type\":\"ping\",\"id\":9}}")]
    [InlineData("{\"type\":\"ping\",\"id\":9}{\"type\":\"ping\",\"id\":10}")]
    [InlineData("{\"type\":\"ping\",\"id\":9},")]
    public async Task TrailingGarbage_BadRequestNotExecutedThenConnectionStillWorks(string frame)
    {
        await using var peer = await Peer.ConnectAsync(Server, "/chat?user=errors");

        await peer.SendRawAsync(frame);
        var before = await peer.SyncAsync();

        var error = Assert.Single(before);
        Assert.Equal("error", Wire.TypeOf(error));
        Assert.Equal("bad_request", error.Json.GetProperty("code").GetString());
        Assert.False(string.IsNullOrWhiteSpace(error.Json.GetProperty("message").GetString()));
    }

    [Fact]
    public async Task TrailingWhitespace_Accepted()
    {
        await using var peer = await Peer.ConnectAsync(Server, "/chat?user=errors");

        await peer.SendRawAsync("  {\"type\":\"ping\",\"id\":9} \n\t ");
        var reply = await peer.ReplyRawAsync("9");

        Assert.Equal("pong", Wire.TypeOf(reply));
    }

    [Fact]
    public async Task Join_RoomAtMaxNameLength_Joined()
    {
        await using var peer = await Peer.ConnectAsync(Server, "/chat?user=errors");

        var joined = await peer.JoinAsync(new string('m', 199) + Guid.NewGuid().ToString("N")[..1]);

        Assert.Equal("joined", Wire.TypeOf(joined));
    }

    [Fact]
    public async Task BadFrame_AfterMany_ConnectionStillServesRoom()
    {
        var room = BrokerFixture.UniqueRoom();
        await using var peer = await Peer.ConnectAsync(Server, "/chat?user=errors");
        await peer.JoinAsync(room);

        foreach (var row in BadFrames)
        {
            await peer.SendRawAsync((string)row[0]);
        }

        var errors = await peer.SyncAsync();
        Assert.Equal(BadFrames.Count, errors.Count);
        Assert.All(errors, e => Assert.Equal("error", Wire.TypeOf(e)));
        var ack = await peer.PublishAsync(room, "still here");
        Assert.Equal(1, ack.GetProperty("seq").GetInt64());
        Assert.Equal("still here", (await peer.TakeTypeAsync("message")).GetProperty("data").GetString());
    }

    [Fact]
    public async Task BadFrame_OneClient_OtherClientInRoomUndisturbed()
    {
        var room = BrokerFixture.UniqueRoom();
        await using var good = await Peer.ConnectAsync(Server, "/chat?user=good");
        await using var bad = await Peer.ConnectAsync(Server, "/chat?user=bad");
        await good.JoinAsync(room);
        await bad.JoinAsync(room);
        await bad.SendRawAsync("{\"type\":\"publish\",\"id\":1,\"room\":\"" + room + "\",\"data\":1}");
        await bad.ReplyRawAsync("1");

        foreach (var row in BadFrames)
        {
            await bad.SendRawAsync((string)row[0]);
        }

        await bad.SendRawAsync("{\"type\":\"publish\",\"room\":\"" + room + "\",\"data\":");
        await bad.SendRawAsync("{\"type\":\"leave\",\"id\":2,\"room\":\"" + room + "-other\"}");
        await good.PublishAsync(room, "from good");
        await bad.PublishAsync(room, "from bad");
        var token = Wire.NewToken();
        await good.PublishAsync(room, Wire.Marker(token));

        var atGood = await good.FramesBeforeMarkerAsync(token);
        Assert.DoesNotContain(atGood, f => Wire.TypeOf(f) == "error");
        Assert.Equal(
            ["1", "\"from good\"", "\"from bad\""],
            atGood.Where(f => Wire.TypeOf(f) == "message").Select(f => f.Json.GetProperty("data").GetRawText()));
        Assert.Equal(WebSocketState.Open, good.Client.Socket.State);

        var atBad = await bad.FramesBeforeMarkerAsync(token);
        Assert.Equal(3, atBad.Count(f => Wire.TypeOf(f) == "message"));
    }
}
