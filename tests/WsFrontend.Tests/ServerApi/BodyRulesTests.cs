using System.Net;
using System.Net.Http.Headers;
using System.Text;
using Broker.Frontend.Tests.Infrastructure;
using Broker.Frontend.Tests.Protocol;

namespace Broker.Frontend.Tests.ServerApi;

/// <summary>
/// JSON only (415 otherwise, forms and text/plain included: what a web page could post
/// cross-site without a preflight), valid UTF-8 throughout and no lone surrogate escape (400,
/// the socket path's rule), at most MaxFrameBytes (413). Nothing refused reaches a member.
/// </summary>
public sealed class BodyRulesTests(BodyRulesTests.SmallFrameBroker fixture) : IClassFixture<BodyRulesTests.SmallFrameBroker>
{
    private const int MaxFrameBytes = 1024;

    public static TheoryData<string> PostRoutes => new() { "/api/chat/rooms/r/publish", "/api/chat/users/u/send", "/api/chat/users/u/disconnect" };

    public static TheoryData<string, byte[]> InvalidUtf8 => new()
    {
        { "a bad byte inside a string", [(byte)'"', 0xFF, (byte)'"'] },
        { "a truncated sequence inside a string", Concat("{\"text\":\"caf", [0xC3], "\"}") },
        { "an overlong encoding inside a string", Concat("[\"", [0xC0, 0xAF], "\"]") },
        { "an encoded surrogate inside a string", Concat("\"", [0xED, 0xA0, 0x80], "\"") },
        { "a bad byte in a property name", Concat("{\"", [0xFE], "\":1}") },
        { "a bad byte outside any string", Concat("[1,", [0xFF], "]") },
    };

    [Theory]
    [MemberData(nameof(PostRoutes))]
    public async Task Post_NotJson_415WithJsonErrorForEveryRoute(string path)
    {
        using var api = new ApiClient(fixture.Server);
        HttpContent[] bodies =
        [
            ApiClient.Json("\"hi\"", "text/plain"),
            ApiClient.Json("\"hi\"", "text/plain; charset=utf-8"),
            new FormUrlEncodedContent([new("data", "1")]),
            new MultipartFormDataContent { { new StringContent("1"), "data" } },
            ApiClient.Json("<data>1</data>", "application/xml"),
            ApiClient.Json("\"hi\"", "application/json; charset=iso-8859-1"),
        ];

        foreach (var body in bodies)
        {
            var sent = body.Headers.ContentType?.ToString();
            var reply = await api.PostAsync(path, body);

            Assert.True(reply.Status == HttpStatusCode.UnsupportedMediaType, $"{sent}: {(int)reply.Status} {reply.Text}");
            Assert.Equal("unsupported_media_type", reply.ErrorCode);
        }

        // No Content-Type at all: a POST without a body is refused too (disconnect has no body to read).
        var bare = await api.PostAsync(path, null);
        Assert.Equal("unsupported_media_type", bare.AssertStatus(HttpStatusCode.UnsupportedMediaType).ErrorCode);
        Assert.Contains("Content-Type: application/json", bare.Error, StringComparison.Ordinal);
    }

    [Fact]
    public async Task Publish_RefusedBodies_NeverReachAMember()
    {
        var room = BrokerFixture.UniqueRoom();
        await using var member = await Peer.ConnectAsync(fixture.Server, "/chat?user=member");
        await member.JoinAsync(room);
        using var api = new ApiClient(fixture.Server);
        var path = $"/api/chat/rooms/{room}/publish";

        Assert.Equal(HttpStatusCode.UnsupportedMediaType, (await api.PostAsync(path, new FormUrlEncodedContent([new("data", "1")]))).Status);
        Assert.Equal(HttpStatusCode.BadRequest, (await api.PostAsync(path, ApiClient.Json([(byte)'"', 0xFF, (byte)'"']))).Status);
        Assert.Equal(HttpStatusCode.BadRequest, (await api.PostJsonAsync(path, "\"\\ud800\"")).Status);
        Assert.Equal(HttpStatusCode.RequestEntityTooLarge, (await api.PostJsonAsync(path, JsonString(MaxFrameBytes + 1))).Status);
        var accepted = (await api.PostJsonAsync(path, "\"after\"")).AssertStatus(HttpStatusCode.OK);

        // The first message the member sees is the accepted one, with the room's first seq.
        var message = (await member.TakeRawAsync(f => f.IsJson && Wire.TypeOf(f.Json) == "message")).Json;
        Assert.Equal("after", message.GetProperty("data").GetString());
        Assert.Equal(1, message.GetProperty("seq").GetInt64());
        Assert.Equal(1, accepted.Json.GetProperty("seq").GetInt64());
    }

    [Theory]
    [InlineData("application/json")]
    [InlineData("application/json; charset=utf-8")]
    [InlineData("Application/JSON; charset=UTF-8")]
    [InlineData("application/merge-patch+json")]
    public async Task Publish_JsonMediaTypes_Accepted(string contentType)
    {
        using var api = new ApiClient(fixture.Server);

        var reply = await api.PostAsync($"/api/chat/rooms/{BrokerFixture.UniqueRoom()}/publish", ApiClient.Json("{\"ok\":true}", contentType));

        reply.AssertStatus(HttpStatusCode.OK);
    }

    [Theory]
    [MemberData(nameof(InvalidUtf8))]
    public async Task Publish_InvalidUtf8_400(string what, byte[] body)
    {
        using var api = new ApiClient(fixture.Server);

        var reply = await api.PostAsync($"/api/chat/rooms/{BrokerFixture.UniqueRoom()}/publish", ApiClient.Json(body));

        Assert.True(reply.Status == HttpStatusCode.BadRequest, $"{what}: {(int)reply.Status} {reply.Text}");
        Assert.Equal("bad_request", reply.ErrorCode);
        Assert.Contains("UTF-8", reply.Error, StringComparison.Ordinal);
    }

    [Theory]
    [InlineData("\"\\ud800\"")]
    [InlineData("{\"text\":\"\\udc00\"}")]
    [InlineData("[\"\\ud800x\"]")]
    [InlineData("{\"\\udbff\":1}")]
    [InlineData("{\"a\":{\"b\":[\"ok\",\"\\ud83d\\u0041\"]}}")]
    public async Task Publish_LoneSurrogateEscape_400LikeTheSocketPath(string body)
    {
        using var api = new ApiClient(fixture.Server);

        var publish = await api.PostJsonAsync($"/api/chat/rooms/{BrokerFixture.UniqueRoom()}/publish", body);
        var send = await api.PostJsonAsync("/api/chat/users/nobody/send", body);

        foreach (var reply in new[] { publish, send })
        {
            Assert.Equal("bad_request", reply.AssertStatus(HttpStatusCode.BadRequest).ErrorCode);
            Assert.Contains("lone surrogate", reply.Error, StringComparison.Ordinal);
        }
    }

    [Fact]
    public async Task Publish_SurrogatePairEscape_Accepted()
    {
        using var api = new ApiClient(fixture.Server);

        var reply = await api.PostJsonAsync($"/api/chat/rooms/{BrokerFixture.UniqueRoom()}/publish", "{\"emoji\":\"\\ud83d\\ude00\"}");

        reply.AssertStatus(HttpStatusCode.OK);
    }

    [Fact]
    public async Task Publish_BodyAtAndOverMaxFrameBytes_AcceptedThen413WithOrWithoutContentLength()
    {
        using var api = new ApiClient(fixture.Server);
        var path = $"/api/chat/rooms/{BrokerFixture.UniqueRoom()}/publish";

        var atLimit = await api.PostJsonAsync(path, JsonString(MaxFrameBytes));
        var over = await api.PostJsonAsync(path, JsonString(MaxFrameBytes + 1));
        var chunked = await api.PostAsync(path, new ChunkedJson(JsonString(MaxFrameBytes * 4)));

        atLimit.AssertStatus(HttpStatusCode.OK);
        Assert.Equal("too_large", over.AssertStatus(HttpStatusCode.RequestEntityTooLarge).ErrorCode);
        Assert.Equal("too_large", chunked.AssertStatus(HttpStatusCode.RequestEntityTooLarge).ErrorCode);
    }

    [Fact]
    public async Task Get_WithANonJsonBody_415()
    {
        using var api = new ApiClient(fixture.Server);

        var reply = await api.SendAsync(HttpMethod.Get, "/api/info", ApiClient.Json("x", "text/plain"));

        Assert.Equal("unsupported_media_type", reply.AssertStatus(HttpStatusCode.UnsupportedMediaType).ErrorCode);
    }

    /// <summary>A JSON string literal of exactly <paramref name="bytes"/> bytes.</summary>
    private static string JsonString(int bytes) => "\"" + new string('x', bytes - 2) + "\"";

    private static byte[] Concat(string before, byte[] middle, string after) =>
        [.. Encoding.UTF8.GetBytes(before), .. middle, .. Encoding.UTF8.GetBytes(after)];

    /// <summary>A broker whose MaxFrameBytes is small, so the size bound is quick to reach.</summary>
    public sealed class SmallFrameBroker : IAsyncLifetime
    {
        public BrokerServer Server { get; private set; } = null!;

        public async Task InitializeAsync() => Server = await BrokerServer.StartAsync(new Dictionary<string, string?>
        {
            ["Broker:MaxFrameBytes"] = MaxFrameBytes.ToString(System.Globalization.CultureInfo.InvariantCulture),
        });

        public async Task DisposeAsync() => await Server.DisposeAsync();
    }

    /// <summary>A JSON body sent chunked: no Content-Length for the server to refuse it by.</summary>
    private sealed class ChunkedJson : HttpContent
    {
        private readonly byte[] _bytes;

        public ChunkedJson(string json)
        {
            _bytes = Encoding.UTF8.GetBytes(json);
            Headers.ContentType = new MediaTypeHeaderValue("application/json");
        }

        protected override Task SerializeToStreamAsync(Stream stream, TransportContext? context) => stream.WriteAsync(_bytes).AsTask();

        protected override bool TryComputeLength(out long length)
        {
            length = 0;
            return false;
        }
    }
}
