using System.Buffers;
using System.Collections.Concurrent;
using System.Net.WebSockets;
using System.Text.Json;

namespace Broker.Client;

/// <summary>The connection ended before the reply came: the caller may retry on the next one.</summary>
internal sealed class ConnectionLostException(string message, Exception? inner = null) : Exception(message, inner);

/// <summary>One WebSocket connection: sends under a lock, matches replies to requests by id.</summary>
internal sealed class Connection : IDisposable
{
    private readonly SemaphoreSlim _sendLock = new(1, 1);
    private readonly ConcurrentDictionary<long, TaskCompletionSource<JsonElement>> _pending = new();
    private readonly Func<long> _nextId;
    private readonly CancellationTokenSource _ended = new();
    private int _endedFlag;

    public Connection(ClientWebSocket socket, Uri url, int generation, Func<long> nextId)
    {
        Socket = socket;
        Url = url;
        Generation = generation;
        _nextId = nextId;
    }

    public ClientWebSocket Socket { get; }

    public Uri Url { get; }

    public int Generation { get; }

    public TaskCompletionSource<JsonElement> Welcome { get; } = new(TaskCreationOptions.RunContinuationsAsynchronously);

    /// <summary>Cancelled when the connection ended.</summary>
    public CancellationToken EndedToken => _ended.Token;

    public bool IsEnded => Volatile.Read(ref _endedFlag) != 0;

    public int? CloseStatus { get; private set; }

    public Exception? EndError { get; private set; }

    public async Task SendAsync(ReadOnlyMemory<byte> frame, CancellationToken ct)
    {
        await _sendLock.WaitAsync(ct).ConfigureAwait(false);
        try
        {
            if (IsEnded)
            {
                throw new ConnectionLostException("The connection ended.");
            }

            await Socket.SendAsync(frame, WebSocketMessageType.Text, true, ct).ConfigureAwait(false);
        }
        catch (Exception ex) when (ex is WebSocketException or ObjectDisposedException or InvalidOperationException or IOException)
        {
            throw new ConnectionLostException("The connection ended while sending.", ex);
        }
        finally
        {
            _sendLock.Release();
        }
    }

    /// <summary>Sends a request and returns its reply; an <c>error</c> reply is thrown as a <see cref="BrokerException"/>.</summary>
    public async Task<JsonElement> RequestAsync(string type, Action<Utf8JsonWriter> fields, TimeSpan timeout, CancellationToken ct)
    {
        var id = _nextId();
        var reply = new TaskCompletionSource<JsonElement>(TaskCreationOptions.RunContinuationsAsynchronously);
        _pending[id] = reply;
        try
        {
            if (IsEnded)
            {
                throw new ConnectionLostException("The connection ended.");
            }

            await SendAsync(Frames.Build(type, id, fields), ct).ConfigureAwait(false);
            JsonElement frame;
            try
            {
                frame = await reply.Task.WaitAsync(timeout, ct).ConfigureAwait(false);
            }
            catch (TimeoutException ex)
            {
                if (IsEnded)
                {
                    throw new ConnectionLostException("The connection ended before the reply.", ex);
                }

                throw new BrokerException("timeout", $"No reply to '{type}' within {timeout.TotalSeconds:0.###} s.", ex);
            }

            if (Frames.TypeOf(frame) == "error")
            {
                throw Frames.ErrorOf(frame);
            }

            return frame;
        }
        finally
        {
            _pending.TryRemove(id, out _);
        }
    }

    /// <summary>Completes the request with this id; false when none waits for it.</summary>
    public bool Reply(long id, JsonElement frame) => _pending.TryGetValue(id, out var waiting) && waiting.TrySetResult(frame);

    /// <summary>Marks the connection ended and fails every request waiting on it.</summary>
    public void End(int? closeStatus, Exception? error)
    {
        if (Interlocked.Exchange(ref _endedFlag, 1) != 0)
        {
            return;
        }

        CloseStatus = closeStatus;
        EndError = error;
        var lost = new ConnectionLostException("The connection ended before the reply.", error);
        Welcome.TrySetException(lost);
        foreach (var waiting in _pending.Values)
        {
            waiting.TrySetException(lost);
        }

        _ended.Cancel();
    }

    public async Task CloseAsync(TimeSpan timeout)
    {
        using var cts = new CancellationTokenSource(timeout);
        try
        {
            await _sendLock.WaitAsync(cts.Token).ConfigureAwait(false);
        }
        catch (OperationCanceledException)
        {
            return;
        }

        try
        {
            if (Socket.State is WebSocketState.Open or WebSocketState.CloseReceived)
            {
                await Socket.CloseAsync(WebSocketCloseStatus.NormalClosure, "client closed", cts.Token).ConfigureAwait(false);
            }
        }
        catch (Exception ex) when (ex is WebSocketException or OperationCanceledException or ObjectDisposedException or InvalidOperationException or IOException)
        {
            // Closing is best effort: the socket is aborted on dispose.
        }
        finally
        {
            _sendLock.Release();
        }
    }

    public void Dispose()
    {
        End(CloseStatus, EndError);
        Socket.Abort();
        Socket.Dispose();
    }
}

/// <summary>Frame writing and reading helpers.</summary>
internal static class Frames
{
    public static ReadOnlyMemory<byte> Build(string type, long? id, Action<Utf8JsonWriter> fields)
    {
        var buffer = new ArrayBufferWriter<byte>(256);
        using (var writer = new Utf8JsonWriter(buffer))
        {
            writer.WriteStartObject();
            writer.WriteString("type", type);
            if (id is { } value)
            {
                writer.WriteNumber("id", value);
            }

            fields(writer);
            writer.WriteEndObject();
        }

        return buffer.WrittenMemory;
    }

    public static string? TypeOf(JsonElement frame) =>
        frame.ValueKind == JsonValueKind.Object && frame.TryGetProperty("type", out var t) && t.ValueKind == JsonValueKind.String ? t.GetString() : null;

    public static string? String(JsonElement frame, string name) =>
        frame.TryGetProperty(name, out var v) && v.ValueKind == JsonValueKind.String ? v.GetString() : null;

    public static long Long(JsonElement frame, string name) =>
        frame.TryGetProperty(name, out var v) && v.ValueKind == JsonValueKind.Number && v.TryGetInt64(out var n) ? n : 0;

    public static bool Bool(JsonElement frame, string name) =>
        frame.TryGetProperty(name, out var v) && v.ValueKind == JsonValueKind.True;

    public static BrokerException ErrorOf(JsonElement frame) =>
        new(String(frame, "code") ?? "internal", String(frame, "message") ?? "The broker answered with an error.");

    public static RoomMessage Message(JsonElement frame) => new(
        String(frame, "room") ?? string.Empty,
        Long(frame, "seq"),
        String(frame, "epoch") ?? string.Empty,
        String(frame, "from") ?? string.Empty,
        frame.TryGetProperty("data", out var data) ? data : default,
        DateTimeOffset.FromUnixTimeMilliseconds(Long(frame, "ts")));
}
