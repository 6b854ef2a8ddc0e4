using System.Net.WebSockets;
using System.Text;
using System.Text.Json;
using System.Threading.Channels;

namespace Broker.Frontend.Tests.Infrastructure;

/// <summary>
/// A real ClientWebSocket with a background reader: every text frame lands in a queue, and
/// tests wait for the frame they expect (never for a fixed time). Each wait has a timeout.
/// </summary>
public sealed class TestClient : IAsyncDisposable
{
    public static readonly TimeSpan DefaultTimeout = TimeSpan.FromSeconds(15);

    private readonly ClientWebSocket _socket;
    private readonly Channel<ReceivedFrame> _frames = Channel.CreateUnbounded<ReceivedFrame>();
    private readonly TaskCompletionSource<WebSocketCloseStatus?> _closed = new(TaskCreationOptions.RunContinuationsAsynchronously);
    private readonly SemaphoreSlim _sendLock = new(1, 1);
    private int _readerStarted;
    private int _nextId;

    private TestClient(ClientWebSocket socket) => _socket = socket;

    public ClientWebSocket Socket => _socket;

    /// <summary>The welcome frame (set by ConnectAsync when autoRead is on).</summary>
    public JsonElement Welcome { get; private set; }

    public string User => Welcome.GetProperty("user").GetString()!;

    public string ConnectionId => Welcome.GetProperty("connection").GetString()!;

    /// <summary>Completes with the close status the server sent (null when the connection just broke).</summary>
    public Task<WebSocketCloseStatus?> Closed => _closed.Task;

    public static async Task<TestClient> ConnectAsync(Uri uri, bool autoRead = true, Action<ClientWebSocketOptions>? configure = null)
    {
        var socket = new ClientWebSocket();
        socket.Options.KeepAliveInterval = TimeSpan.Zero;
        configure?.Invoke(socket.Options);
        using var timeout = new CancellationTokenSource(DefaultTimeout);
        await socket.ConnectAsync(uri, timeout.Token);
        var client = new TestClient(socket);
        if (autoRead)
        {
            client.StartReading();
            client.Welcome = await client.NextAsync();
            Assert.Equal("welcome", client.Welcome.GetProperty("type").GetString());
        }

        return client;
    }

    /// <summary>Starts the background reader (for clients connected with autoRead: false).</summary>
    public void StartReading()
    {
        if (Interlocked.Exchange(ref _readerStarted, 1) == 0)
        {
            _ = Task.Run(ReadLoopAsync);
        }
    }

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

    public async Task SendBytesAsync(byte[] bytes, WebSocketMessageType type)
    {
        await _sendLock.WaitAsync();
        try
        {
            await _socket.SendAsync(bytes, type, true, CancellationToken.None);
        }
        finally
        {
            _sendLock.Release();
        }
    }

    public Task SendAsync(object frame) => SendTextAsync(JsonSerializer.Serialize(frame));

    /// <summary>Sends a frame with a fresh numeric id and waits for the reply carrying that id.</summary>
    public async Task<JsonElement> RequestAsync(Dictionary<string, object?> frame, TimeSpan? timeout = null)
    {
        var id = Interlocked.Increment(ref _nextId) + 1000;
        frame["id"] = id;
        await SendAsync(frame);
        return await WaitForAsync(f => f.TryGetProperty("id", out var got) && got.ValueKind == JsonValueKind.Number && got.GetInt32() == id, timeout);
    }

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

    public Task<JsonElement> PublishAsync(string room, object? data) =>
        RequestAsync(new Dictionary<string, object?> { ["type"] = "publish", ["room"] = room, ["data"] = data });

    /// <summary>The next frame, whatever it is.</summary>
    public async Task<JsonElement> NextAsync(TimeSpan? timeout = null) => (await NextRawAsync(timeout)).Json;

    /// <summary>The next frame with its raw text (for non-JSON frames such as "pong").</summary>
    public async Task<ReceivedFrame> NextRawAsync(TimeSpan? timeout = null)
    {
        using var cts = new CancellationTokenSource(timeout ?? DefaultTimeout);
        try
        {
            return await _frames.Reader.ReadAsync(cts.Token);
        }
        catch (OperationCanceledException)
        {
            throw new TimeoutException($"No frame within {timeout ?? DefaultTimeout}.");
        }
        catch (ChannelClosedException)
        {
            throw new InvalidOperationException("The connection closed before the expected frame arrived.");
        }
    }

    /// <summary>Skips frames until one matches; the skipped ones are gone.</summary>
    public async Task<JsonElement> WaitForAsync(Func<JsonElement, bool> match, TimeSpan? timeout = null)
    {
        var deadline = DateTime.UtcNow + (timeout ?? DefaultTimeout);
        while (true)
        {
            var left = deadline - DateTime.UtcNow;
            if (left <= TimeSpan.Zero)
            {
                throw new TimeoutException("The expected frame did not arrive in time.");
            }

            var frame = await NextRawAsync(left);
            if (frame.IsJson && match(frame.Json))
            {
                return frame.Json;
            }
        }
    }

    public Task<JsonElement> WaitForTypeAsync(string type, TimeSpan? timeout = null) =>
        WaitForAsync(f => f.TryGetProperty("type", out var t) && t.GetString() == type, timeout);

    /// <summary>Reads until the server closes; returns its close status.</summary>
    public async Task<WebSocketCloseStatus?> WaitForCloseAsync(TimeSpan? timeout = null)
    {
        StartReading();
        return await _closed.Task.WaitAsync(timeout ?? DefaultTimeout);
    }

    public async Task CloseAsync()
    {
        if (_socket.State == WebSocketState.Open)
        {
            using var cts = new CancellationTokenSource(DefaultTimeout);
            try
            {
                await _socket.CloseAsync(WebSocketCloseStatus.NormalClosure, "bye", cts.Token);
            }
            catch (Exception ex) when (ex is WebSocketException or OperationCanceledException)
            {
                _socket.Abort();
            }
        }
    }

    public async ValueTask DisposeAsync()
    {
        await CloseAsync();
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

                        // Complete the closing handshake, as browsers and ws do.
                        await _sendLock.WaitAsync();
                        try
                        {
                            await _socket.CloseOutputAsync(WebSocketCloseStatus.NormalClosure, string.Empty, CancellationToken.None);
                        }
                        finally
                        {
                            _sendLock.Release();
                        }

                        return;
                    }

                    message.Write(buffer, 0, result.Count);
                }
                while (!result.EndOfMessage);

                var text = Encoding.UTF8.GetString(message.GetBuffer(), 0, (int)message.Length);
                _frames.Writer.TryWrite(ReceivedFrame.Parse(text));
            }
        }
        catch (Exception ex) when (ex is WebSocketException or ObjectDisposedException or OperationCanceledException)
        {
            _closed.TrySetResult(_socket.CloseStatus);
        }
        finally
        {
            _frames.Writer.TryComplete();
        }
    }
}

/// <summary>A text frame as received: the raw text, and its JSON when it is JSON.</summary>
public readonly record struct ReceivedFrame(string Text, bool IsJson, JsonElement Json)
{
    public static ReceivedFrame Parse(string text)
    {
        try
        {
            using var doc = JsonDocument.Parse(text);
            return new ReceivedFrame(text, true, doc.RootElement.Clone());
        }
        catch (JsonException)
        {
            return new ReceivedFrame(text, false, default);
        }
    }
}

/// <summary>Connecting a <see cref="TestClient"/> to an in-process broker.</summary>
public static class BrokerServerClients
{
    public static Task<TestClient> ConnectAsync(this BrokerServer server, string pathAndQuery = "", bool autoRead = true) =>
        TestClient.ConnectAsync(server.Ws(pathAndQuery), autoRead);
}
