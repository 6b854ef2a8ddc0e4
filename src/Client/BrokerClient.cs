using System.Buffers;
using System.Collections.Concurrent;
using System.Globalization;
using System.Net;
using System.Net.WebSockets;
using System.Text;
using System.Text.Json;
using System.Threading.Channels;

namespace Broker.Client;

/// <summary>
/// A client of the broker that keeps its guarantees across failures: it connects to one of
/// several front-end URLs, reconnects with exponential backoff and jitter (at once to the next URL
/// after a 1012, later after a 1013), re-joins every joined room with <c>since</c> + <c>epoch</c> so
/// that each room's messages arrive exactly once and in order, retries publishes with the same
/// msgId until acked, and refreshes its token before it expires.
/// </summary>
/// <example>
/// <code>
/// await using var client = new BrokerClient(new[] { new Uri("ws://localhost:5000/chat") }, new BrokerClientOptions { User = "alice" });
/// var room = client.Room("lobby");
/// room.MessageReceived += (_, m) => Console.WriteLine($"{m.From}: {m.Data}");
/// await room.JoinAsync();
/// var ack = await room.PublishAsync(new { text = "hi" });
/// </code>
/// </example>
public sealed class BrokerClient : IAsyncDisposable, IDisposable
{
    private static readonly HashSet<string> RetryableCodes = ["unavailable", "rate_limited", "timeout"];

    private readonly Uri[] _urls;
    private readonly ConcurrentDictionary<string, BrokerRoom> _rooms = new(StringComparer.Ordinal);
    private readonly Channel<PendingPublish> _publishes = Channel.CreateUnbounded<PendingPublish>(new UnboundedChannelOptions { SingleReader = true });
    private readonly CancellationTokenSource _closing = new();
    private readonly object _sync = new();
    private readonly string _msgIdPrefix = Guid.NewGuid().ToString("N")[..12];
    private TaskCompletionSource<Connection> _ready = NewReady();
    private Task? _run;
    private Task? _pump;
    private long _nextId;
    private long _nextMsgId;
    private int _generation;
    private int _urlIndex;
    private BrokerConnectionState _state = BrokerConnectionState.Disconnected;
    private string? _token;

    /// <summary>A client of one front-end.</summary>
    public BrokerClient(Uri url, BrokerClientOptions? options = null)
        : this([url], options)
    {
    }

    /// <summary>
    /// A client of several front-ends (<c>ws://host:port/{namespace}</c>, all of one namespace); it
    /// connects to the first and moves along the list when a connection fails or ends. Nothing
    /// happens until <see cref="ConnectAsync"/> or the first request.
    /// </summary>
    public BrokerClient(IEnumerable<Uri> urls, BrokerClientOptions? options = null)
    {
        ArgumentNullException.ThrowIfNull(urls);
        _urls = [.. urls];
        if (_urls.Length == 0)
        {
            throw new ArgumentException("Give at least one URL.", nameof(urls));
        }

        foreach (var url in _urls)
        {
            if (!url.IsAbsoluteUri || (url.Scheme != "ws" && url.Scheme != "wss"))
            {
                throw new ArgumentException($"'{url}' is not a ws:// or wss:// URL.", nameof(urls));
            }
        }

        Options = options ?? new BrokerClientOptions();
        Options.Validate();
    }

    /// <summary>The options given.</summary>
    public BrokerClientOptions Options { get; }

    /// <summary>The connection's state.</summary>
    public BrokerConnectionState State
    {
        get
        {
            lock (_sync)
            {
                return _state;
            }
        }
    }

    /// <summary>The user the broker named this client in its <c>welcome</c> (null before the first connection).</summary>
    public string? UserId { get; private set; }

    /// <summary>The current (or last) connection's id, from <c>welcome</c>.</summary>
    public string? ConnectionId { get; private set; }

    /// <summary>The front-end node of the current (or last) connection, from <c>welcome</c>.</summary>
    public string? Node { get; private set; }

    /// <summary>The URL of the current (or last) connection.</summary>
    public Uri? Url { get; private set; }

    /// <summary>The connection's state changed. Raised on a background thread; handlers must not block.</summary>
    public event EventHandler<BrokerStateChangedEventArgs>? StateChanged;

    /// <summary>A direct message to this client's user. Raised on the receive loop: keep handlers short.</summary>
    public event EventHandler<DirectMessage>? DirectReceived;

    internal Connection? CurrentReady
    {
        get
        {
            var task = Volatile.Read(ref _ready).Task;
            return task.IsCompletedSuccessfully && !task.Result.IsEnded ? task.Result : null;
        }
    }

    /// <summary>The room called <paramref name="name"/> (the same object for the same name). Nothing is sent until it is joined.</summary>
    public BrokerRoom Room(string name)
    {
        ArgumentException.ThrowIfNullOrEmpty(name);
        return _rooms.GetOrAdd(name, n => new BrokerRoom(this, n));
    }

    /// <summary>
    /// Connects (if not yet) and returns once connected. Not needed before other calls, which
    /// connect on demand; after a failed attempt the client keeps trying in the background.
    /// </summary>
    /// <exception cref="BrokerException">The handshake was refused for good (<c>unauthorized</c>, <c>forbidden</c>, <c>not_found</c>, <c>bad_request</c>) or the client was closed.</exception>
    public async Task ConnectAsync(CancellationToken cancellationToken = default) =>
        await WaitReadyAsync(cancellationToken).ConfigureAwait(false);

    /// <summary>Sends a direct message to every connection of <paramref name="user"/> in this namespace; returns how many it reached.</summary>
    public Task<int> SendAsync<T>(string user, T data, CancellationToken cancellationToken = default) =>
        SendAsync(user, data is JsonElement element ? element : JsonSerializer.SerializeToElement(data, Options.SerializerOptions), cancellationToken);

    /// <summary>
    /// Sends a direct message to every connection of <paramref name="user"/> in this namespace; returns
    /// how many it reached. Not retried (a retry could deliver twice): when the connection ends before
    /// the ack it fails with code <c>disconnected</c>.
    /// </summary>
    public async Task<int> SendAsync(string user, JsonElement data, CancellationToken cancellationToken = default)
    {
        ArgumentException.ThrowIfNullOrEmpty(user);
        var connection = await WaitReadyAsync(cancellationToken).ConfigureAwait(false);
        try
        {
            var reply = await connection.RequestAsync("send", w =>
            {
                w.WriteString("to", user);
                w.WritePropertyName("data");
                data.WriteTo(w);
            }, Options.RequestTimeout, cancellationToken).ConfigureAwait(false);
            return (int)Frames.Long(reply, "delivered");
        }
        catch (ConnectionLostException ex)
        {
            throw new BrokerException("disconnected", "The connection ended before the send was acknowledged; it may or may not have been delivered.", ex);
        }
    }

    /// <summary>Closes the connection (1000) and stops reconnecting; pending publishes fail with code <c>closed</c>.</summary>
    public async ValueTask DisposeAsync()
    {
        if (_closing.IsCancellationRequested)
        {
            return;
        }

        await _closing.CancelAsync().ConfigureAwait(false);

        foreach (var task in new[] { _run, _pump })
        {
            if (task is not null)
            {
                try
                {
                    await task.ConfigureAwait(false);
                }
                catch (OperationCanceledException)
                {
                }
            }
        }

        Shutdown(new BrokerException("closed", "The client was closed."));
    }

    /// <summary>Closes the client; see <see cref="DisposeAsync"/>.</summary>
    public void Dispose() => DisposeAsync().AsTask().GetAwaiter().GetResult();

    internal static bool IsRetryable(string code) => RetryableCodes.Contains(code);

    /// <summary>Exponential backoff with jitter: [d/2, d] where d = ReconnectDelay · 2^attempt, capped.</summary>
    internal TimeSpan Backoff(int attempt)
    {
        var baseMs = Options.ReconnectDelay.TotalMilliseconds * Math.Pow(2, Math.Min(attempt, 20));
        var capped = Math.Min(baseMs, Options.MaxReconnectDelay.TotalMilliseconds);
        return TimeSpan.FromMilliseconds(capped * (0.5 + (Random.Shared.NextDouble() / 2)));
    }

    internal async Task<Connection> WaitReadyAsync(CancellationToken ct)
    {
        EnsureStarted();
        while (true)
        {
            var connection = await Volatile.Read(ref _ready).Task.WaitAsync(ct).ConfigureAwait(false);
            if (!connection.IsEnded)
            {
                return connection;
            }

            // Ended, and the run loop is about to replace the ready signal.
            await Task.Delay(5, ct).ConfigureAwait(false);
        }
    }

    /// <summary>A request that is safe to repeat: retried on the next connection when the connection ends.</summary>
    internal async Task<JsonElement> RequestRetryingAsync(string type, Action<Utf8JsonWriter> fields, CancellationToken ct)
    {
        while (true)
        {
            var connection = await WaitReadyAsync(ct).ConfigureAwait(false);
            try
            {
                return await connection.RequestAsync(type, fields, Options.RequestTimeout, ct).ConfigureAwait(false);
            }
            catch (ConnectionLostException)
            {
            }
        }
    }

    internal Task<PublishAck> EnqueuePublish(string room, JsonElement data, CancellationToken ct)
    {
        if (_closing.IsCancellationRequested)
        {
            return Task.FromException<PublishAck>(new BrokerException("closed", "The client was closed."));
        }

        EnsureStarted();
        var msgId = _msgIdPrefix + "-" + Interlocked.Increment(ref _nextMsgId).ToString(CultureInfo.InvariantCulture);
        var pending = new PendingPublish(room, data.Clone(), msgId, ct);
        if (ct.CanBeCanceled)
        {
            var registration = ct.Register(() => pending.Result.TrySetCanceled(ct));
            _ = pending.Result.Task.ContinueWith(_ => registration.Dispose(), CancellationToken.None, TaskContinuationOptions.ExecuteSynchronously, TaskScheduler.Default);
        }

        if (!_publishes.Writer.TryWrite(pending))
        {
            return Task.FromException<PublishAck>(new BrokerException("closed", "The client was closed."));
        }

        return pending.Result.Task;
    }

    private static TaskCompletionSource<Connection> NewReady() => new(TaskCreationOptions.RunContinuationsAsynchronously);

    private void EnsureStarted()
    {
        lock (_sync)
        {
            if (_run is not null || _closing.IsCancellationRequested)
            {
                return;
            }

            _run = Task.Run(RunAsync);
            _pump = Task.Run(PumpPublishesAsync);
        }
    }

    private void SetState(BrokerConnectionState state, Uri? url, int? closeStatus = null, Exception? error = null)
    {
        lock (_sync)
        {
            if (_state == state || _state == BrokerConnectionState.Closed)
            {
                return;
            }

            _state = state;
        }

        try
        {
            StateChanged?.Invoke(this, new BrokerStateChangedEventArgs(state, url, closeStatus, error));
        }
#pragma warning disable CA1031 // An application's handler must not stop the client.
        catch (Exception)
#pragma warning restore CA1031
        {
        }
    }

    private async Task RunAsync()
    {
        var failures = 0;
        var ct = _closing.Token;
        while (!ct.IsCancellationRequested)
        {
            var url = _urls[_urlIndex % _urls.Length];
            SetState(BrokerConnectionState.Connecting, url);
            Connection? connection = null;
            var wasUp = false;
            int? closeStatus = null;
            Exception? error = null;
            try
            {
                connection = await OpenAsync(url, ct).ConfigureAwait(false);
                await RejoinAllAsync(connection, ct).ConfigureAwait(false);
                Url = url;
                wasUp = true;
                failures = 0;
                SetState(BrokerConnectionState.Connected, url);
                Volatile.Read(ref _ready).TrySetResult(connection);
                using var refresh = CancellationTokenSource.CreateLinkedTokenSource(ct, connection.EndedToken);
                var refresher = Options.GetToken is null ? Task.CompletedTask : RefreshLoopAsync(connection, refresh.Token);
                try
                {
                    await Task.Delay(Timeout.Infinite, refresh.Token).ConfigureAwait(false);
                }
                catch (OperationCanceledException)
                {
                }

                await refresher.ConfigureAwait(false);
                if (ct.IsCancellationRequested)
                {
                    await connection.CloseAsync(TimeSpan.FromSeconds(2)).ConfigureAwait(false);
                }

                closeStatus = connection.CloseStatus;
                error = connection.EndError;
            }
            catch (OperationCanceledException) when (ct.IsCancellationRequested)
            {
                break;
            }
            catch (BrokerException ex) when (IsFatal(ex))
            {
                connection?.Dispose();
                Shutdown(ex);
                return;
            }
#pragma warning disable CA1031 // Any failure of an attempt leads to the next attempt.
            catch (Exception ex)
#pragma warning restore CA1031
            {
                closeStatus = connection?.CloseStatus;
                error = ex;
            }
            finally
            {
                lock (_sync)
                {
                    if (_ready.Task.IsCompleted)
                    {
                        _ready = NewReady();
                    }
                }
            }

            connection?.Dispose();
            if (ct.IsCancellationRequested)
            {
                break;
            }

            if (closeStatus == (int)WebSocketCloseStatus.PolicyViolation && Options.GetToken is null)
            {
                Shutdown(new BrokerException("policy", $"The broker closed the connection (1008): {error?.Message ?? "authorization expired or revoked"}."));
                return;
            }

            SetState(BrokerConnectionState.Disconnected, url, closeStatus, error);
            _urlIndex++;
            TimeSpan delay;
            if (closeStatus == 1012)
            {
                delay = TimeSpan.Zero; // Service restart: go elsewhere now.
            }
            else if (wasUp)
            {
                delay = TimeSpan.FromMilliseconds(Options.ReconnectDelay.TotalMilliseconds * Random.Shared.NextDouble());
            }
            else
            {
                delay = Backoff(failures++);
            }

            if (closeStatus == 1013 && delay < Options.OverloadedDelay)
            {
                delay = Options.OverloadedDelay + TimeSpan.FromMilliseconds(Options.OverloadedDelay.TotalMilliseconds * Random.Shared.NextDouble() / 2);
            }

            try
            {
                await Task.Delay(delay, ct).ConfigureAwait(false);
            }
            catch (OperationCanceledException)
            {
                break;
            }
        }
    }

    private static bool IsFatal(BrokerException ex) => ex.Code is "unauthorized" or "forbidden" or "not_found" or "bad_request";

    private async Task<Connection> OpenAsync(Uri url, CancellationToken ct)
    {
        var socket = new ClientWebSocket();
        socket.Options.CollectHttpResponseDetails = true;
        socket.Options.KeepAliveInterval = Options.KeepAliveInterval;
        var target = url;
        if (Options.GetToken is { } getToken)
        {
            _token = await getToken(ct).ConfigureAwait(false);
        }
        else
        {
            _token = Options.Token;
        }

        if (_token is not null)
        {
            socket.Options.SetRequestHeader("Authorization", "Bearer " + _token);
        }
        else if (Options.User is not null)
        {
            var builder = new UriBuilder(url);
            var query = builder.Query.TrimStart('?');
            builder.Query = (query.Length > 0 ? query + "&" : string.Empty) + "user=" + Uri.EscapeDataString(Options.User);
            target = builder.Uri;
        }

        var connection = new Connection(socket, url, Interlocked.Increment(ref _generation), () => Interlocked.Increment(ref _nextId));
        using var timeout = CancellationTokenSource.CreateLinkedTokenSource(ct);
        timeout.CancelAfter(Options.ConnectTimeout);
        try
        {
            await socket.ConnectAsync(target, timeout.Token).ConfigureAwait(false);
        }
        catch (WebSocketException ex) when (socket.HttpStatusCode is HttpStatusCode status && status != HttpStatusCode.SwitchingProtocols && status != 0)
        {
            connection.Dispose();
            var code = status switch
            {
                HttpStatusCode.Unauthorized when Options.GetToken is null => "unauthorized",
                HttpStatusCode.Forbidden => "forbidden",
                HttpStatusCode.NotFound => "not_found",
                HttpStatusCode.BadRequest => "bad_request",
                _ => "unavailable",
            };
            throw new BrokerException(code, $"{url} refused the handshake with HTTP {(int)status}.", ex);
        }
        catch
        {
            connection.Dispose();
            throw;
        }

        _ = Task.Run(() => ReceiveLoopAsync(connection), CancellationToken.None);
        try
        {
            var welcome = await connection.Welcome.Task.WaitAsync(timeout.Token).ConfigureAwait(false);
            UserId = Frames.String(welcome, "user");
            ConnectionId = Frames.String(welcome, "connection");
            Node = Frames.String(welcome, "node");
            return connection;
        }
        catch
        {
            connection.Dispose();
            throw;
        }
    }

    private async Task RejoinAllAsync(Connection connection, CancellationToken ct)
    {
        using var linked = CancellationTokenSource.CreateLinkedTokenSource(ct, connection.EndedToken);
        var rooms = _rooms.Values.Where(r => r.Desired).ToList();
        await Task.WhenAll(rooms.Select(async room =>
        {
            try
            {
                await room.JoinOnAsync(connection, linked.Token).ConfigureAwait(false);
            }
            catch (BrokerException ex)
            {
                room.OnRejoinRefused(ex);
            }
        })).ConfigureAwait(false);
        if (connection.IsEnded)
        {
            throw new ConnectionLostException("The connection ended while re-joining.");
        }
    }

    private async Task ReceiveLoopAsync(Connection connection)
    {
        var buffer = new ArrayBufferWriter<byte>(4096);
        int? closeStatus = null;
        Exception? error = null;
        try
        {
            while (true)
            {
                buffer.Clear();
                ValueWebSocketReceiveResult result;
                do
                {
                    result = await connection.Socket.ReceiveAsync(buffer.GetMemory(4096), CancellationToken.None).ConfigureAwait(false);
                    buffer.Advance(result.Count);
                }
                while (!result.EndOfMessage && result.MessageType != WebSocketMessageType.Close);

                if (result.MessageType == WebSocketMessageType.Close)
                {
                    closeStatus = (int?)connection.Socket.CloseStatus;
                    error = new WebSocketException($"The server closed the connection ({closeStatus}): {connection.Socket.CloseStatusDescription}");
                    break;
                }

                if (result.MessageType == WebSocketMessageType.Text)
                {
                    Dispatch(connection, buffer.WrittenSpan);
                }
            }
        }
#pragma warning disable CA1031 // Whatever ended the socket ends this connection.
        catch (Exception ex)
#pragma warning restore CA1031
        {
            error = ex;
        }

        connection.End(closeStatus, error);
    }

    private void Dispatch(Connection connection, ReadOnlySpan<byte> utf8)
    {
        JsonElement frame;
        try
        {
            if (utf8.SequenceEqual("pong"u8))
            {
                return;
            }

            var reader = new Utf8JsonReader(utf8);
            frame = JsonElement.ParseValue(ref reader);
        }
        catch (JsonException)
        {
            return; // Not JSON: nothing this client asked for.
        }

        if (frame.ValueKind != JsonValueKind.Object)
        {
            return;
        }

        var type = Frames.TypeOf(frame);
        var room = Frames.String(frame, "room") is { } name && _rooms.TryGetValue(name, out var r) ? r : null;
        var hasId = frame.TryGetProperty("id", out var idElement) && idElement.ValueKind == JsonValueKind.Number && idElement.TryGetInt64(out _);
        switch (type)
        {
            case "welcome":
                connection.Welcome.TrySetResult(frame);
                return;
            case "message":
                room?.OnMessage(frame);
                return;
            case "joined":
                room?.OnJoined(frame);
                break;
            case "left" when !hasId:
                room?.OnServerLeft(frame);
                return;
            case "member_joined":
            case "member_left":
                room?.OnMember(type == "member_joined", frame);
                return;
            case "direct":
                try
                {
                    DirectReceived?.Invoke(this, new DirectMessage(
                        Frames.String(frame, "from") ?? string.Empty,
                        frame.TryGetProperty("data", out var data) ? data : default,
                        DateTimeOffset.FromUnixTimeMilliseconds(Frames.Long(frame, "ts"))));
                }
#pragma warning disable CA1031 // An application's handler must not stop the receive loop.
                catch (Exception)
#pragma warning restore CA1031
                {
                }

                return;
        }

        if (hasId)
        {
            connection.Reply(idElement.GetInt64(), frame);
        }
    }

    private async Task RefreshLoopAsync(Connection connection, CancellationToken ct)
    {
        try
        {
            var expires = JwtExpiry(_token);
            while (expires is { } exp)
            {
                var lifetime = exp - DateTimeOffset.UtcNow;
                var wait = lifetime - Options.RefreshBeforeExpiry;
                if (wait < lifetime / 2)
                {
                    wait = lifetime / 2; // Short-lived tokens: refresh half-way.
                }

                if (wait > TimeSpan.Zero)
                {
                    await Task.Delay(wait, ct).ConfigureAwait(false);
                }

                var token = await Options.GetToken!(ct).ConfigureAwait(false);
                try
                {
                    var reply = await connection.RequestAsync("refresh", w => w.WriteString("token", token), Options.RequestTimeout, ct).ConfigureAwait(false);
                    _token = token;
                    expires = reply.TryGetProperty("expires", out var e) && e.ValueKind == JsonValueKind.Number
                        ? DateTimeOffset.FromUnixTimeSeconds(e.GetInt64())
                        : null;
                }
                catch (BrokerException)
                {
                    // Refused or not answered: try again a little later, while the old token lasts.
                    expires = DateTimeOffset.UtcNow + Options.RefreshBeforeExpiry / 2 + TimeSpan.FromSeconds(1);
                    await Task.Delay(TimeSpan.FromSeconds(1), ct).ConfigureAwait(false);
                }
            }
        }
        catch (Exception ex) when (ex is OperationCanceledException or ConnectionLostException)
        {
        }
    }

    /// <summary>The <c>exp</c> of a JWT (read, not verified: the broker verifies).</summary>
    internal static DateTimeOffset? JwtExpiry(string? token)
    {
        var parts = token?.Split('.');
        if (parts is not { Length: 3 })
        {
            return null;
        }

        try
        {
            var payload = parts[1].Replace('-', '+').Replace('_', '/');
            payload = payload.PadRight(payload.Length + ((4 - (payload.Length % 4)) % 4), '=');
            using var doc = JsonDocument.Parse(Convert.FromBase64String(payload));
            return doc.RootElement.TryGetProperty("exp", out var exp) && exp.TryGetInt64(out var seconds)
                ? DateTimeOffset.FromUnixTimeSeconds(seconds)
                : null;
        }
        catch (Exception ex) when (ex is FormatException or JsonException)
        {
            return null;
        }
    }

    private async Task PumpPublishesAsync()
    {
        var ct = _closing.Token;
        try
        {
            await foreach (var publish in _publishes.Reader.ReadAllAsync(ct).ConfigureAwait(false))
            {
                await PublishUntilDoneAsync(publish, ct).ConfigureAwait(false);
            }
        }
        catch (OperationCanceledException)
        {
        }
    }

    private async Task PublishUntilDoneAsync(PendingPublish publish, CancellationToken ct)
    {
        using var both = CancellationTokenSource.CreateLinkedTokenSource(ct, publish.Cancellation);
        for (var attempt = 0; !publish.Result.Task.IsCompleted; attempt++)
        {
            try
            {
                var connection = await WaitReadyAsync(both.Token).ConfigureAwait(false);
                var reply = await connection.RequestAsync("publish", w =>
                {
                    w.WriteString("room", publish.Room);
                    w.WritePropertyName("data");
                    publish.Data.WriteTo(w);
                    w.WriteString("msgId", publish.MsgId);
                }, Options.RequestTimeout, both.Token).ConfigureAwait(false);
                publish.Result.TrySetResult(new PublishAck(publish.Room, Frames.Long(reply, "seq"), publish.MsgId));
            }
            catch (ConnectionLostException)
            {
                // Again, with the same msgId, on the next connection.
            }
            catch (BrokerException ex) when (IsRetryable(ex.Code))
            {
                try
                {
                    await Task.Delay(Backoff(attempt), both.Token).ConfigureAwait(false);
                }
                catch (OperationCanceledException)
                {
                }
            }
            catch (BrokerException ex)
            {
                publish.Result.TrySetException(ex);
            }
            catch (OperationCanceledException) when (publish.Cancellation.IsCancellationRequested)
            {
                publish.Result.TrySetCanceled(publish.Cancellation);
            }
            catch (OperationCanceledException)
            {
                publish.Result.TrySetException(new BrokerException("closed", "The client was closed before the publish was acknowledged."));
            }
        }
    }

    private void Shutdown(BrokerException reason)
    {
        _closing.Cancel();
        lock (_sync)
        {
            if (!_ready.TrySetException(reason))
            {
                _ready = NewReady();
                _ready.SetException(reason);
            }
        }

        _ready.Task.Exception?.Handle(_ => true);
        _publishes.Writer.TryComplete();
        while (_publishes.Reader.TryRead(out var pending))
        {
            pending.Result.TrySetException(reason);
        }

        foreach (var room in _rooms.Values)
        {
            room.Complete();
        }

        SetState(BrokerConnectionState.Closed, Url, null, reason);
    }

    private sealed class PendingPublish(string room, JsonElement data, string msgId, CancellationToken cancellation)
    {
        public string Room { get; } = room;

        public JsonElement Data { get; } = data;

        public string MsgId { get; } = msgId;

        public CancellationToken Cancellation { get; } = cancellation;

        public TaskCompletionSource<PublishAck> Result { get; } = new(TaskCreationOptions.RunContinuationsAsynchronously);
    }
}
