using System.Net;
using System.Text.Json;
using Broker.Frontend.Tests.Infrastructure;
using Broker.Frontend.Tests.Protocol;

namespace Broker.Frontend.Tests.ServerApi;

/// <summary>POST /api/{ns}/rooms/{room}/publish: members receive the body as a message from "server"; Idempotency-Key (or v1's msgId) dedupes.</summary>
public sealed class PublishTests(BrokerFixture fixture) : IClassFixture<BrokerFixture>
{
    private BrokerServer Server => fixture.Server;

    [Fact]
    public async Task Publish_JsonBody_EveryMemberReceivesItFromServerAndTheReplyHasRoomSeqEpochDuplicate()
    {
        var room = BrokerFixture.UniqueRoom();
        await using var alice = await Peer.ConnectAsync(Server, "/chat?user=alice");
        await using var bob = await Peer.ConnectAsync(Server, "/chat?user=bob");
        var joined = await alice.JoinAsync(room);
        await bob.JoinAsync(room);
        using var api = new ApiClient(Server);

        var reply = (await api.PostJsonAsync($"/api/chat/rooms/{room}/publish", "\n {\"text\": \"hello\", \"n\": [1, 2.5]} \n")).AssertStatus(HttpStatusCode.OK);

        Assert.Equal(room, reply.Json.GetProperty("room").GetString());
        Assert.Equal(1, reply.Json.GetProperty("seq").GetInt64());
        Assert.Equal(joined.GetProperty("epoch").GetString(), reply.Json.GetProperty("epoch").GetString());
        Assert.False(reply.Json.GetProperty("duplicate").GetBoolean());
        foreach (var member in new[] { alice, bob })
        {
            var message = (await member.TakeRawAsync(f => f.IsJson && Wire.TypeOf(f.Json) == "message")).Json;
            Assert.Equal("server", message.GetProperty("from").GetString());
            Assert.Equal(1, message.GetProperty("seq").GetInt64());

            // The data is the body, without the whitespace around it.
            Assert.Equal("""{"text": "hello", "n": [1, 2.5]}""", message.GetProperty("data").GetRawText());
        }
    }

    [Fact]
    public async Task Publish_SameIdempotencyKeyTwice_SameSeqDuplicateAndMembersGetItOnce()
    {
        var room = BrokerFixture.UniqueRoom();
        await using var member = await Peer.ConnectAsync(Server, "/chat?user=member");
        await member.JoinAsync(room);
        using var api = new ApiClient(Server);
        var path = $"/api/chat/rooms/{room}/publish";

        var first = (await api.PostJsonAsync(path, "\"once\"", r => r.Headers.Add("Idempotency-Key", "order-17"))).AssertStatus(HttpStatusCode.OK);
        var retry = (await api.PostJsonAsync(path, "\"once\"", r => r.Headers.Add("Idempotency-Key", "order-17"))).AssertStatus(HttpStatusCode.OK);
        var token = Wire.NewToken();
        await api.PostJsonAsync(path, JsonSerializer.Serialize(Wire.Marker(token)));

        Assert.False(first.Json.GetProperty("duplicate").GetBoolean());
        Assert.True(retry.Json.GetProperty("duplicate").GetBoolean());
        Assert.Equal(first.Json.GetProperty("seq").GetInt64(), retry.Json.GetProperty("seq").GetInt64());
        var before = await member.FramesBeforeMarkerAsync(token);
        var delivered = Assert.Single(before, f => Wire.TypeOf(f) == "message");
        Assert.Equal("once", delivered.Json.GetProperty("data").GetString());
    }

    [Fact]
    public async Task Publish_QuotedKeyAndMsgIdQueryAlias_NameTheSameMessage()
    {
        var room = BrokerFixture.UniqueRoom();
        using var api = new ApiClient(Server);
        var path = $"/api/chat/rooms/{room}/publish";

        var quoted = (await api.PostJsonAsync(path, "1", r => r.Headers.TryAddWithoutValidation("Idempotency-Key", "\"k-2\""))).AssertStatus(HttpStatusCode.OK);
        var alias = (await api.PostJsonAsync(path + "?msgId=k-2", "1")).AssertStatus(HttpStatusCode.OK);
        var both = (await api.PostJsonAsync(path + "?msgId=k-2", "1", r => r.Headers.Add("Idempotency-Key", "k-2"))).AssertStatus(HttpStatusCode.OK);

        Assert.False(quoted.Json.GetProperty("duplicate").GetBoolean());
        Assert.True(alias.Json.GetProperty("duplicate").GetBoolean());
        Assert.True(both.Json.GetProperty("duplicate").GetBoolean());
        Assert.Equal(quoted.Json.GetProperty("seq").GetInt64(), both.Json.GetProperty("seq").GetInt64());
    }

    [Fact]
    public async Task Publish_KeyAndMsgIdDiffer_400AndNothingPublished()
    {
        var room = BrokerFixture.UniqueRoom();
        using var api = new ApiClient(Server);

        var conflict = await api.PostJsonAsync($"/api/chat/rooms/{room}/publish?msgId=a", "1", r => r.Headers.Add("Idempotency-Key", "b"));

        Assert.Equal("bad_request", conflict.AssertStatus(HttpStatusCode.BadRequest).ErrorCode);
        Assert.Contains("Idempotency-Key", conflict.Error, StringComparison.Ordinal);
        var history = (await api.GetAsync($"/api/chat/rooms/{room}/history")).AssertStatus(HttpStatusCode.OK);
        Assert.Empty(history.Json.GetProperty("messages").EnumerateArray());
    }

    [Fact]
    public async Task Publish_NamespaceWhereClientsMayNotPublish_ServerPublishesAndMembersReceive()
    {
        var room = BrokerFixture.UniqueRoom("alerts");
        await using var member = await Peer.ConnectAsync(Server, "/notifications?user=ops");
        await member.JoinAsync(room);
        var refused = await member.PublishAsync(room, "from a client");
        using var api = new ApiClient(Server);

        (await api.PostJsonAsync($"/api/notifications/rooms/{room}/publish", """{"level":"warn"}""")).AssertStatus(HttpStatusCode.OK);

        Wire.AssertError(refused, "forbidden", refused.GetProperty("id").GetRawText());
        var message = (await member.TakeRawAsync(f => f.IsJson && Wire.TypeOf(f.Json) == "message")).Json;
        Assert.Equal("warn", message.GetProperty("data").GetProperty("level").GetString());
    }

    [Theory]
    [InlineData("/api/nowhere/rooms/r/publish", "1", HttpStatusCode.NotFound, "not_found")]
    [InlineData("/api/chat/rooms/r/publish", "", HttpStatusCode.BadRequest, "bad_request")]
    [InlineData("/api/chat/rooms/r/publish", "{\"a\":", HttpStatusCode.BadRequest, "bad_request")]
    [InlineData("/api/chat/rooms/r/publish", "1 2", HttpStatusCode.BadRequest, "bad_request")]
    [InlineData("/api/chat/rooms/r/publish", "{'a':1}", HttpStatusCode.BadRequest, "bad_request")]
    [InlineData("/api/chat/users/u/send", "nul", HttpStatusCode.BadRequest, "bad_request")]
    public async Task Publish_BadRequest_StatusAndJsonError(string path, string body, HttpStatusCode status, string code)
    {
        using var api = new ApiClient(Server);

        var reply = await api.PostJsonAsync(path, body);

        Assert.Equal(code, reply.AssertStatus(status).ErrorCode);
    }

    [Fact]
    public async Task Publish_NamesOverMaxNameLength_400()
    {
        using var api = new ApiClient(Server);
        var longName = new string('r', 201);

        var room = await api.PostJsonAsync($"/api/chat/rooms/{longName}/publish", "1");
        var key = await api.PostJsonAsync("/api/chat/rooms/r/publish", "1", r => r.Headers.Add("Idempotency-Key", longName));
        var user = await api.PostJsonAsync($"/api/chat/users/{longName}/send", "1");

        Assert.Equal("bad_request", room.AssertStatus(HttpStatusCode.BadRequest).ErrorCode);
        Assert.Equal("bad_request", key.AssertStatus(HttpStatusCode.BadRequest).ErrorCode);
        Assert.Equal("bad_request", user.AssertStatus(HttpStatusCode.BadRequest).ErrorCode);
    }
}
