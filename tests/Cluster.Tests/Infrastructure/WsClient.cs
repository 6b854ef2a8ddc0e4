using System.Collections.Concurrent;
using System.Diagnostics;
using System.Net.WebSockets;
using System.Text;
using System.Text.Json;

namespace Broker.Cluster.Tests.Infrastructure;

/// <summary>
/// A real ClientWebSocket with a background reader (the approach of the front-end tests' client).
/// Replies (frames carrying the id of a request) complete that request; every other frame is
/// kept in <see cref="Pushes"/>, and tests wait for the push they expect with a timeout —
/// never for a fixed time. Waiting does not consume: any push received so far can match.
/// </summary>
public sealed class WsClient : IAsyncDisposable
{
    public static readonly TimeSpan DefaultTimeout = TimeSpan.FromSeconds(15);

    private readonly ClientWebSocket _socket;
    private readonly SemaphoreSlim _sendLock = new(1, 1);
    private readonly ConcurrentDictionary<long, TaskCompletionSource<Frame>> _pending = new();
    private readonly List<Frame> _pushes = [];
    private readonly TaskCompletionSource<WebSocketCloseStatus?> _closed = new(TaskCreationOptions.RunContinuationsAsynchronously);
    private readonly TaskCompletionSource<Frame> _welcome = new(TaskCreationOptions.RunContinuationsAsynchronously);
    private TaskCompletionSource _changed = new(TaskCreationOptions.RunContinuationsAsynchronously);
    private long _nextId;

    private WsClient(ClientWebSocket socket, string name)
    {
        _socket = socket;
        Name = name;
    }

    /// <summary>For messages: the user asked for, and where it connected.</summary>
    public string Name { get; }

    public JsonElement Welcome { get; private set; }

    public string User => Welcome.GetProperty("user").GetString()!;

    /// <summary>welcome.node: the front-end this socket landed on.</summary>
    public string Node => Welcome.GetProperty("node").GetString()!;

    /// <summary>Completes when the connection closes or breaks, with the close status the server sent, if any.</summary>
    public Task<WebSocketCloseStatus?> Closed => _closed.Task;

    public bool IsOpen => !_closed.Task.IsCompleted && _socket.State == WebSocketState.Open;

    /// <summary>Connects to ws://…/{ns}?user={user} and waits for the welcome frame.</summary>
    public static async Task<WsClient> ConnectAsync(Uri wsBase, string user, string ns = "chat", TimeSpan? timeout = null)
    {
        var uri = new Uri(wsBase, $"{ns}?user={Uri.EscapeDataString(user)}");
        var socket = new ClientWebSocket();
        socket.Options.KeepAliveInterval = TimeSpan.Zero;
        using var cts = new CancellationTokenSource(timeout ?? DefaultTimeout);
        try
        {
            await socket.ConnectAsync(uri, cts.Token);
        }
        catch
        {
            socket.Dispose();
            throw;
        }

        var client = new WsClient(socket, $"{user}@{uri.Authority}");
        _ = Task.Run(client.ReadLoopAsync);
        try
        {
            var welcome = await client._welcome.Task.WaitAsync(timeout ?? DefaultTimeout);
            Assert.Equal("welcome", welcome.Type);
            client.Welcome = welcome.Json;
        }
        catch
        {
            await client.DisposeAsync();
            throw;
        }

        return client;
    }

    /// <summary>Sends a frame with a fresh numeric id; completes with the reply carrying it (TimeoutException when none comes).</summary>
    public async Task<Frame> RequestAsync(Dictionary<string, object?> frame, TimeSpan? timeout = null)
    {
        var id = Interlocked.Increment(ref _nextId);
        frame["id"] = id;
        var reply = new TaskCompletionSource<Frame>(TaskCreationOptions.RunContinuationsAsynchronously);
        _pending[id] = reply;
        try
        {
            await SendTextAsync(JsonSerializer.Serialize(frame));
            return await reply.Task.WaitAsync(timeout ?? DefaultTimeout);
        }
        catch (TimeoutException)
        {
            throw new TimeoutException($"{Name}: no reply to {JsonSerializer.Serialize(frame)} within {timeout ?? DefaultTimeout}.");
        }
        finally
        {
            _pending.TryRemove(id, out _);
        }
    }

    /// <summary>A request whose reply must be of the given type (an error frame fails the test with its message).</summary>
    public async Task<JsonElement> ExpectAsync(string replyType, Dictionary<string, object?> frame, TimeSpan? timeout = null)
    {
        var reply = await RequestAsync(frame, timeout);
        Assert.True(reply.Type == replyType, $"{Name}: expected {replyType} in reply to {frame["type"]}, got {reply.Text}");
        return reply.Json;
    }

    public Task<JsonElement> JoinAsync(string room) =>
        ExpectAsync("joined", new() { ["type"] = "join", ["room"] = room });

    public Task<JsonElement> LeaveAsync(string room) =>
        ExpectAsync("left", new() { ["type"] = "leave", ["room"] = room });

    public Task<JsonElement> PublishAsync(string room, object? data, TimeSpan? timeout = null) =>
        ExpectAsync("ack", new() { ["type"] = "publish", ["room"] = room, ["data"] = data }, timeout);

    public Task<Frame> TryPublishAsync(string room, object? data, TimeSpan timeout) =>
        RequestAsync(new() { ["type"] = "publish", ["room"] = room, ["data"] = data }, timeout);

    public Task<JsonElement> SendToAsync(string user, object? data) =>
        ExpectAsync("ack", new() { ["type"] = "send", ["to"] = user, ["data"] = data });

    public Task<JsonElement> PresenceAsync(string room, TimeSpan? timeout = null) =>
        ExpectAsync("presence", new() { ["type"] = "presence", ["room"] = room }, timeout);

    public Task<JsonElement> HistoryAsync(string room) =>
        ExpectAsync("history", new() { ["type"] = "history", ["room"] = room });

    /// <summary>The users a presence reply lists.</summary>
    public async Task<string[]> PresentUsersAsync(string room, TimeSpan? timeout = null)
    {
        var presence = await PresenceAsync(room, timeout);
        return [.. presence.GetProperty("members").EnumerateArray().Select(m => m.GetProperty("user").GetString()!).Order(StringComparer.Ordinal)];
    }

    /// <summary>Every push received so far (messages, member events, directs …), in arrival order.</summary>
    public IReadOnlyList<Frame> Pushes
    {
        get
        {
            lock (_pushes)
            {
                return [.. _pushes];
            }
        }
    }

    /// <summary>The room's message frames received so far, in arrival order.</summary>
    public IReadOnlyList<Frame> Messages(string room) =>
        [.. Pushes.Where(f => f.Type == "message" && f.Json.GetProperty("room").GetString() == room)];

    /// <summary>Waits until a push received so far, or later, matches.</summary>
    public async Task<Frame> WaitForAsync(Func<Frame, bool> match, TimeSpan? timeout = null, string? what = null)
    {
        Frame? found = null;
        await WaitUntilAsync(pushes => (found = pushes.FirstOrDefault(match)) is not null, timeout, what);
        return found!;
    }

    /// <summary>Waits until the pushes received so far satisfy <paramref name="condition"/> (checked again at every push).</summary>
    public async Task WaitUntilAsync(Func<IReadOnlyList<Frame>, bool> condition, TimeSpan? timeout = null, string? what = null)
    {
        var limit = timeout ?? DefaultTimeout;
        var deadline = Stopwatch.GetTimestamp() + (long)(limit.TotalSeconds * Stopwatch.Frequency);
        while (true)
        {
            Task changed;
            lock (_pushes)
            {
                changed = _changed.Task;
            }

            if (condition(Pushes))
            {
                return;
            }

            var left = Stopwatch.GetElapsedTime(Stopwatch.GetTimestamp(), deadline);
            if (left <= TimeSpan.Zero || _closed.Task.IsCompleted)
            {
                throw new TimeoutException(
                    $"{Name}: {what ?? "the expected frame"} did not arrive within {limit}{(_closed.Task.IsCompleted ? " (connection closed)" : string.Empty)}. " +
                    $"Last pushes: {string.Join(" | ", Pushes.TakeLast(8).Select(f => f.Text))}");
            }

            try
            {
                await changed.WaitAsync(left);
            }
            catch (TimeoutException)
            {
                // Check once more, then report.
            }
        }
    }

    /// <summary>Waits for the message frame in <paramref name="room"/> whose data is the string <paramref name="data"/>.</summary>
    public Task<Frame> WaitForMessageAsync(string room, string data, TimeSpan? timeout = null) =>
        WaitForAsync(
            f => f.Type == "message" && f.Json.GetProperty("room").GetString() == room &&
                 f.Json.GetProperty("data") is { ValueKind: JsonValueKind.String } d && d.GetString() == data,
            timeout,
            $"message \"{data}\" in {room}");

    public Task<Frame> WaitForMemberEventAsync(string type, string room, string user, TimeSpan? timeout = null) =>
        WaitForAsync(
            f => f.Type == type && f.Json.GetProperty("room").GetString() == room && f.Json.GetProperty("user").GetString() == user,
            timeout,
            $"{type} of {user} in {room}");

    public async Task SendTextAsync(string text)
    {
        await _sendLock.WaitAsync();
        try
        {
            await _socket.SendAsync(Encoding.UTF8.GetBytes(text), WebSocketMessageType.Text, true, CancellationToken.None);
        }
        finally
        {
            _sendLock.Release();
        }
    }

    public async ValueTask DisposeAsync()
    {
        if (_socket.State == WebSocketState.Open)
        {
            using var cts = new CancellationTokenSource(TimeSpan.FromSeconds(3));
            try
            {
                await _sendLock.WaitAsync(cts.Token);
                try
                {
                    await _socket.CloseOutputAsync(WebSocketCloseStatus.NormalClosure, "bye", cts.Token);
                }
                finally
                {
                    _sendLock.Release();
                }

                await _closed.Task.WaitAsync(cts.Token);
            }
            catch (Exception ex) when (ex is WebSocketException or OperationCanceledException or TimeoutException or ObjectDisposedException)
            {
                // The peer is gone or slow: just drop the socket.
            }
        }

        _socket.Abort();
        _socket.Dispose();
    }

    private async Task ReadLoopAsync()
    {
        var buffer = new byte[16 * 1024];
        using var message = new MemoryStream();
        try
        {
            while (true)
            {
                message.SetLength(0);
                WebSocketReceiveResult result;
                do
                {
                    result = await _socket.ReceiveAsync(buffer, CancellationToken.None);
                    if (result.MessageType == WebSocketMessageType.Close)
                    {
                        _closed.TrySetResult(result.CloseStatus);
                        return;
                    }

                    message.Write(buffer, 0, result.Count);
                }
                while (!result.EndOfMessage);

                OnFrame(Frame.Parse(Encoding.UTF8.GetString(message.GetBuffer(), 0, (int)message.Length)));
            }
        }
        catch (Exception ex) when (ex is WebSocketException or ObjectDisposedException or OperationCanceledException)
        {
            _closed.TrySetResult(_socket.CloseStatus);
        }
        finally
        {
            _closed.TrySetResult(_socket.CloseStatus);
            _welcome.TrySetException(new InvalidOperationException($"{Name}: closed before the welcome frame."));
            lock (_pushes)
            {
                _changed.TrySetResult();
            }
        }
    }

    private void OnFrame(Frame frame)
    {
        if (frame.Type == "welcome" && _welcome.TrySetResult(frame))
        {
            return;
        }

        if (frame.Id is { } id && _pending.TryGetValue(id, out var reply) && reply.TrySetResult(frame))
        {
            return;
        }

        TaskCompletionSource changed;
        lock (_pushes)
        {
            _pushes.Add(frame);
            changed = _changed;
            _changed = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        }

        changed.TrySetResult();
    }
}

/// <summary>A text frame as received, with its arrival time (Stopwatch timestamp).</summary>
public sealed record Frame(string Text, JsonElement Json, long At)
{
    public string? Type => Json.ValueKind == JsonValueKind.Object && Json.TryGetProperty("type", out var t) ? t.GetString() : null;

    /// <summary>The numeric id of a reply, if it has one.</summary>
    public long? Id => Json.ValueKind == JsonValueKind.Object && Json.TryGetProperty("id", out var id) && id.ValueKind == JsonValueKind.Number ? id.GetInt64() : null;

    public string? ErrorCode => Type == "error" ? Json.GetProperty("code").GetString() : null;

    public long Seq => Json.GetProperty("seq").GetInt64();

    public string DataString => Json.GetProperty("data").ToString();

    public static Frame Parse(string text)
    {
        var at = Stopwatch.GetTimestamp();
        try
        {
            using var doc = JsonDocument.Parse(text);
            return new Frame(text, doc.RootElement.Clone(), at);
        }
        catch (JsonException)
        {
            return new Frame(text, default, at);
        }
    }

    public override string ToString() => Text;
}
