using System.Net;
using System.Text.Json;
using System.Text.RegularExpressions;
using Broker.Frontend.Options;
using Broker.Frontend.Tests.Infrastructure;
using Broker.Frontend.Tests.Protocol;

namespace Broker.Frontend.Tests.ServerApi;

/// <summary>
/// GET /api/{ns}/rooms/{room}/history: the socket's history reply without its id, byte for
/// byte — the same limit cap, the same cut at MaxReplyBytes, the same "more" — and 400 for a
/// since or limit that is not a whole number in range.
/// </summary>
public sealed partial class HistoryTests(HistoryTests.SmallReplyBroker fixture) : IClassFixture<HistoryTests.SmallReplyBroker>
{
    /// <summary>The smallest reply bound the defaults allow (MaxFrameBytes 64 KiB + headroom), so 10 KB messages cut pages.</summary>
    private const int MaxReplyBytes = BrokerOptions.DefaultMaxFrameBytes + BrokerOptions.ReplyHeadroomBytes;

    [Fact]
    public async Task History_EveryPageAndQuery_EqualsTheSocketsHistoryReplyWithoutItsId()
    {
        var room = BrokerFixture.UniqueRoom();
        await using var alice = await Peer.ConnectAsync(fixture.Server, "/chat?user=alice");
        await alice.JoinAsync(room);
        var filler = new string('x', 10_000);
        for (var i = 1; i <= 30; i++)
        {
            await alice.PublishAsync(room, i % 3 == 0 ? new { n = i, filler } : new { n = i, filler = "short" });
        }

        using var api = new ApiClient(fixture.Server);
        (long? Since, long? Limit)[] queries = [(null, null), (null, 5), (0, null), (3, 4), (29, 10), (30, null), (0, 1000), (100, null)];
        foreach (var (since, limit) in queries)
        {
            await AssertSameAsync(api, alice, room, since, limit);
        }

        // Paging with since and more, as a client does, reaches every message once.
        var seqs = new List<long>();
        var pages = 0;
        long? next = 0;
        while (next is { } from)
        {
            var page = await AssertSameAsync(api, alice, room, from, null);
            var got = page.GetProperty("messages").EnumerateArray().Select(m => m.GetProperty("seq").GetInt64()).ToList();
            seqs.AddRange(got);
            pages++;
            next = page.GetProperty("more").GetBoolean() ? got[^1] : null;
        }

        Assert.Equal(Enumerable.Range(1, 30).Select(i => (long)i), seqs);
        Assert.True(pages >= 2, $"100 KB of messages in replies of at most {MaxReplyBytes} bytes takes at least 2 pages; got {pages}.");
    }

    [Fact]
    public async Task History_RoomNeverPublished_EmptyWithMoreFalse()
    {
        using var api = new ApiClient(fixture.Server);
        var room = BrokerFixture.UniqueRoom();

        var reply = (await api.GetAsync($"/api/chat/rooms/{room}/history")).AssertStatus(HttpStatusCode.OK);

        Assert.Equal("history", reply.Json.GetProperty("type").GetString());
        Assert.Equal(room, reply.Json.GetProperty("room").GetString());
        Assert.False(string.IsNullOrEmpty(reply.Json.GetProperty("epoch").GetString()));
        Assert.Empty(reply.Json.GetProperty("messages").EnumerateArray());
        Assert.False(reply.Json.GetProperty("more").GetBoolean());
        Assert.False(reply.Json.TryGetProperty("id", out _));
    }

    [Theory]
    [InlineData("since=-1")]
    [InlineData("since=abc")]
    [InlineData("since=1.5")]
    [InlineData("since=")]
    [InlineData("since=%2B3")]
    [InlineData("since=99999999999999999999")]
    [InlineData("since=1&since=2")]
    [InlineData("limit=0")]
    [InlineData("limit=-3")]
    [InlineData("limit=ten")]
    [InlineData("limit=1&limit=1")]
    public async Task History_BadSinceOrLimit_400(string query)
    {
        using var api = new ApiClient(fixture.Server);

        var reply = await api.GetAsync($"/api/chat/rooms/{BrokerFixture.UniqueRoom()}/history?{query}");

        Assert.Equal("bad_request", reply.AssertStatus(HttpStatusCode.BadRequest).ErrorCode);
        Assert.Contains(query[..5], reply.Error, StringComparison.Ordinal);
    }

    /// <summary>Asks both paths the same question; the HTTP body must be the socket reply with its id taken out.</summary>
    private static async Task<JsonElement> AssertSameAsync(ApiClient api, Peer peer, string room, long? since, long? limit)
    {
        var frame = new Dictionary<string, object?> { ["type"] = "history", ["room"] = room };
        var query = new List<string>();
        if (since is not null)
        {
            frame["since"] = since;
            query.Add($"since={since}");
        }

        if (limit is not null)
        {
            frame["limit"] = limit;
            query.Add($"limit={limit}");
        }

        var socket = await peer.RequestRawAsync(frame);
        var http = (await api.GetAsync($"/api/chat/rooms/{room}/history?{string.Join('&', query)}")).AssertStatus(HttpStatusCode.OK);

        Assert.StartsWith("application/json", http.ContentType, StringComparison.Ordinal);
        Assert.Equal(IdField().Replace(socket.Text, string.Empty, 1), http.Text);
        return http.Json;
    }

    [GeneratedRegex(",\"id\":[0-9]+")]
    private static partial Regex IdField();

    /// <summary>A broker whose history replies are cut at the smallest MaxReplyBytes allowed.</summary>
    public sealed class SmallReplyBroker : IAsyncLifetime
    {
        public BrokerServer Server { get; private set; } = null!;

        public async Task InitializeAsync() => Server = await BrokerServer.StartAsync(new Dictionary<string, string?>
        {
            ["Broker:MaxReplyBytes"] = MaxReplyBytes.ToString(System.Globalization.CultureInfo.InvariantCulture),
        });

        public async Task DisposeAsync() => await Server.DisposeAsync();
    }
}
