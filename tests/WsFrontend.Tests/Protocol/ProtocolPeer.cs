using System.Net;
using System.Net.WebSockets;
using System.Text.Json;
using System.Text.RegularExpressions;
using Broker.Frontend.Tests.Infrastructure;

namespace Broker.Frontend.Tests.Protocol;

/// <summary>
/// A protocol client for conformance tests. Unlike <see cref="TestClient.WaitForAsync"/>, frames
/// that arrive while a test waits for another one are kept (in arrival order), so a test can
/// wait for an ack and still see the message frame that arrived before it, and can assert what
/// arrived before a marker frame.
/// </summary>
internal sealed class Peer : IAsyncDisposable
{
    private readonly List<ReceivedFrame> _pending = [];
    private int _nextId;

    private Peer(TestClient client) => Client = client;

    public TestClient Client { get; }

    public JsonElement Welcome => Client.Welcome;

    public string User => Client.User;

    public static async Task<Peer> ConnectAsync(BrokerServer server, string pathAndQuery, Action<ClientWebSocketOptions>? configure = null) =>
        new(await TestClient.ConnectAsync(server.Ws(pathAndQuery), autoRead: true, configure));

    public Task SendRawAsync(string text) => Client.SendTextAsync(text);

    public Task SendAsync(Dictionary<string, object?> frame) => Client.SendTextAsync(JsonSerializer.Serialize(frame));

    /// <summary>A fresh numeric id literal, unique on this connection.</summary>
    public string NextId() => (Interlocked.Increment(ref _nextId) + 7000).ToString(System.Globalization.CultureInfo.InvariantCulture);

    /// <summary>Sends the frame with a fresh id and returns the first frame carrying that id.</summary>
    public async Task<JsonElement> RequestAsync(Dictionary<string, object?> frame) => (await RequestRawAsync(frame)).Json;

    public async Task<ReceivedFrame> RequestRawAsync(Dictionary<string, object?> frame)
    {
        var id = NextId();
        frame["id"] = JsonDocument.Parse(id).RootElement.Clone();
        await SendAsync(frame);
        return await ReplyRawAsync(id);
    }

    /// <summary>The first frame whose id has exactly the raw JSON text <paramref name="idLiteral"/>.</summary>
    public Task<ReceivedFrame> ReplyRawAsync(string idLiteral) =>
        TakeRawAsync(f => f.IsJson && f.Json.ValueKind == JsonValueKind.Object && f.Json.TryGetProperty("id", out var id) && id.GetRawText() == idLiteral);

    public Task<JsonElement> JoinAsync(string room, long? since = null, string? epoch = null)
    {
        var frame = new Dictionary<string, object?> { ["type"] = "join", ["room"] = room };
        if (since is not null)
        {
            frame["since"] = since;
        }

        if (epoch is not null)
        {
            frame["epoch"] = epoch;
        }

        return RequestAsync(frame);
    }

    public Task<JsonElement> LeaveAsync(string room) => RequestAsync(new() { ["type"] = "leave", ["room"] = room });

    public Task<JsonElement> PublishAsync(string room, object? data) =>
        RequestAsync(new() { ["type"] = "publish", ["room"] = room, ["data"] = data });

    public Task<JsonElement> SendToAsync(string to, object? data) =>
        RequestAsync(new() { ["type"] = "send", ["to"] = to, ["data"] = data });

    public Task<JsonElement> PresenceAsync(string room) => RequestAsync(new() { ["type"] = "presence", ["room"] = room });

    public Task<JsonElement> HistoryAsync(string room, long? since = null, long? limit = null)
    {
        var frame = new Dictionary<string, object?> { ["type"] = "history", ["room"] = room };
        if (since is not null)
        {
            frame["since"] = since;
        }

        if (limit is not null)
        {
            frame["limit"] = limit;
        }

        return RequestAsync(frame);
    }

    /// <summary>
    /// Sends a JSON ping with a fresh id and returns every frame received before its pong (those
    /// are consumed). The connection answers its frames in order, so the result holds every
    /// direct reply to frames sent before this call.
    /// </summary>
    public async Task<List<ReceivedFrame>> SyncAsync()
    {
        var id = "\"sync-" + NextId() + "\"";
        await SendRawAsync("{\"type\":\"ping\",\"id\":" + id + "}");
        var (before, pong) = await TakeUntilAsync(f => f.IsJson && f.Json.ValueKind == JsonValueKind.Object && f.Json.TryGetProperty("id", out var got) && got.GetRawText() == id);
        Assert.Equal("pong", pong.Json.GetProperty("type").GetString());
        return before;
    }

    /// <summary>Waits for the room message whose data is {"marker": token}; returns what arrived before it.</summary>
    public async Task<List<ReceivedFrame>> FramesBeforeMarkerAsync(string token)
    {
        var (before, _) = await TakeUntilAsync(f => IsMarker(f, token));
        return before;
    }

    public static bool IsMarker(ReceivedFrame f, string token) =>
        f.IsJson && Wire.TypeOf(f.Json) == "message"
        && f.Json.TryGetProperty("data", out var data) && data.ValueKind == JsonValueKind.Object
        && data.TryGetProperty("marker", out var m) && m.GetString() == token;

    public async Task<ReceivedFrame> TakeRawAsync(Func<ReceivedFrame, bool> match, TimeSpan? timeout = null)
    {
        for (var i = 0; i < _pending.Count; i++)
        {
            if (match(_pending[i]))
            {
                var found = _pending[i];
                _pending.RemoveAt(i);
                return found;
            }
        }

        var deadline = DateTime.UtcNow + (timeout ?? TestClient.DefaultTimeout);
        while (true)
        {
            var frame = await Client.NextRawAsync(Left(deadline));
            if (match(frame))
            {
                return frame;
            }

            _pending.Add(frame);
        }
    }

    public async Task<JsonElement> TakeAsync(Func<JsonElement, bool> match, TimeSpan? timeout = null) =>
        (await TakeRawAsync(f => f.IsJson && f.Json.ValueKind == JsonValueKind.Object && match(f.Json), timeout)).Json;

    public Task<JsonElement> TakeTypeAsync(string type, Func<JsonElement, bool>? and = null) =>
        TakeAsync(f => Wire.TypeOf(f) == type && (and is null || and(f)));

    /// <summary>Every frame before the first one matching <paramref name="marker"/>, in order; all consumed.</summary>
    public async Task<(List<ReceivedFrame> Before, ReceivedFrame Marker)> TakeUntilAsync(Func<ReceivedFrame, bool> marker, TimeSpan? timeout = null)
    {
        var before = new List<ReceivedFrame>();
        while (_pending.Count > 0)
        {
            var frame = _pending[0];
            _pending.RemoveAt(0);
            if (marker(frame))
            {
                return (before, frame);
            }

            before.Add(frame);
        }

        var deadline = DateTime.UtcNow + (timeout ?? TestClient.DefaultTimeout);
        while (true)
        {
            var frame = await Client.NextRawAsync(Left(deadline));
            if (marker(frame))
            {
                return (before, frame);
            }

            before.Add(frame);
        }
    }

    public Task CloseAsync() => Client.CloseAsync();

    public ValueTask DisposeAsync() => Client.DisposeAsync();

    private static TimeSpan Left(DateTime deadline)
    {
        var left = deadline - DateTime.UtcNow;
        if (left <= TimeSpan.Zero)
        {
            throw new TimeoutException("The expected frame did not arrive in time.");
        }

        return left;
    }
}

/// <summary>Small protocol assertions shared by the conformance tests.</summary>
internal static class Wire
{
    public static string? TypeOf(JsonElement frame) =>
        frame.ValueKind == JsonValueKind.Object && frame.TryGetProperty("type", out var type) && type.ValueKind == JsonValueKind.String ? type.GetString() : null;

    public static string? TypeOf(ReceivedFrame frame) => frame.IsJson ? TypeOf(frame.Json) : null;

    public static JsonElement Json(string literal) => JsonDocument.Parse(literal).RootElement.Clone();

    /// <summary>A marker payload for <see cref="Peer.FramesBeforeMarkerAsync"/>.</summary>
    public static Dictionary<string, object?> Marker(string token) => new() { ["marker"] = token };

    public static string NewToken() => Guid.NewGuid().ToString("N");

    public static void AssertType(string expected, JsonElement frame) => Assert.Equal(expected, TypeOf(frame));

    /// <summary>An error frame with the code, a non-empty message, and the id (raw JSON) or no id.</summary>
    public static void AssertError(JsonElement frame, string code, string? idLiteral)
    {
        Assert.True(TypeOf(frame) == "error", $"Expected an error frame, got {frame.GetRawText()}");
        Assert.Equal(code, frame.GetProperty("code").GetString());
        Assert.False(string.IsNullOrWhiteSpace(frame.GetProperty("message").GetString()), "The error message must be a sentence.");
        if (idLiteral is null)
        {
            Assert.False(frame.TryGetProperty("id", out _), $"No id was sent, yet the error has one: {frame.GetRawText()}");
        }
        else
        {
            Assert.True(frame.TryGetProperty("id", out var id), $"The error should carry id {idLiteral}: {frame.GetRawText()}");
            Assert.Equal(idLiteral, id.GetRawText());
        }
    }

    /// <summary>A complete message frame, as pushed and as listed in history.</summary>
    public static void AssertMessage(JsonElement frame, string room, long seq, string epoch, string from, JsonElement data)
    {
        Assert.Equal("message", TypeOf(frame));
        Assert.Equal(room, frame.GetProperty("room").GetString());
        Assert.Equal(seq, frame.GetProperty("seq").GetInt64());
        Assert.Equal(epoch, frame.GetProperty("epoch").GetString());
        Assert.Equal(from, frame.GetProperty("from").GetString());
        Assert.True(frame.TryGetProperty("data", out var got), $"message without data: {frame.GetRawText()}");
        Assert.True(JsonElement.DeepEquals(data, got), $"data {got.GetRawText()} differs from {data.GetRawText()}");
        AssertRecentUnixMs(frame.GetProperty("ts"));
    }

    public static void AssertRecentUnixMs(JsonElement ts)
    {
        Assert.Equal(JsonValueKind.Number, ts.ValueKind);
        var value = ts.GetInt64();
        var now = DateTimeOffset.UtcNow.ToUnixTimeMilliseconds();
        Assert.InRange(value, now - (long)TimeSpan.FromMinutes(5).TotalMilliseconds, now + (long)TimeSpan.FromMinutes(5).TotalMilliseconds);
    }

    /// <summary>The raw reply text holds "id":LITERAL, byte for byte.</summary>
    public static void AssertRawId(string rawText, string idLiteral) =>
        Assert.Matches("\"id\"\\s*:\\s*" + Regex.Escape(idLiteral) + "\\s*[,}]", rawText);

    /// <summary>Tries a WebSocket handshake and returns the HTTP status (101 when it succeeded).</summary>
    public static async Task<HttpStatusCode> HandshakeStatusAsync(Uri uri, Action<ClientWebSocketOptions>? configure = null)
    {
        using var socket = new ClientWebSocket();
        socket.Options.CollectHttpResponseDetails = true;
        socket.Options.KeepAliveInterval = TimeSpan.Zero;
        configure?.Invoke(socket.Options);
        using var timeout = new CancellationTokenSource(TestClient.DefaultTimeout);
        try
        {
            await socket.ConnectAsync(uri, timeout.Token);
        }
        catch (WebSocketException)
        {
            return socket.HttpStatusCode;
        }

        var status = socket.HttpStatusCode;
        try
        {
            await socket.CloseAsync(WebSocketCloseStatus.NormalClosure, "done", timeout.Token);
        }
        catch (Exception ex) when (ex is WebSocketException or OperationCanceledException)
        {
            socket.Abort();
        }

        return status;
    }

    public static bool IsMemberEvent(ReceivedFrame f) => TypeOf(f) is "member_joined" or "member_left";

    public static string Describe(IEnumerable<ReceivedFrame> frames) => "[" + string.Join(", ", frames.Select(f => f.Text)) + "]";
}
