using System.Text.Json;
using System.Threading.Channels;

namespace Broker.Client;

/// <summary>
/// A room of a <see cref="BrokerClient"/> (from <see cref="BrokerClient.Room"/>). Once joined it
/// stays joined across reconnects: the client re-joins it with <c>since</c> + <c>epoch</c>, and its
/// messages reach the application exactly once and in <c>seq</c> order.
/// </summary>
public sealed class BrokerRoom
{
    private const int MaxBuffered = 10_000;

    private readonly BrokerClient _client;
    private readonly object _sync = new();
    private readonly SemaphoreSlim _joinLock = new(1, 1);
    private readonly List<RoomMessage> _buffer = [];
    private Channel<RoomMessage>? _channel;
    private bool _desired;
    private bool _joinPending;
    private string? _epoch;
    private long _lastSeq;
    private int _joinedGeneration = -1;
    private JoinResult? _lastJoin;

    internal BrokerRoom(BrokerClient client, string name)
    {
        _client = client;
        Name = name;
    }

    /// <summary>The room's name.</summary>
    public string Name { get; }

    /// <summary>True between <see cref="JoinAsync"/> and <see cref="LeaveAsync"/> (or the server taking the client out).</summary>
    public bool IsJoined
    {
        get
        {
            lock (_sync)
            {
                return _desired;
            }
        }
    }

    /// <summary>The seq of the last message delivered (or the room's seq at the join), and its epoch; null before the first join.</summary>
    public (long Seq, string Epoch)? Position
    {
        get
        {
            lock (_sync)
            {
                return _epoch is null ? null : (_lastSeq, _epoch);
            }
        }
    }

    /// <summary>A message of the room, exactly once and in order. Raised on the client's receive loop: keep handlers short.</summary>
    public event EventHandler<RoomMessage>? MessageReceived;

    /// <summary>A gap could not be recovered (<c>recovered:false</c> or a new epoch); delivery goes on after it.</summary>
    public event EventHandler<RoomResetEventArgs>? Reset;

    /// <summary>A user's first connection joined the room.</summary>
    public event EventHandler<MemberEventArgs>? MemberJoined;

    /// <summary>A user's last connection left the room.</summary>
    public event EventHandler<MemberEventArgs>? MemberLeft;

    /// <summary>The room was left without <see cref="LeaveAsync"/> (the server took the client out, or refused a re-join).</summary>
    public event EventHandler<RoomLeftEventArgs>? Left;

    /// <summary>
    /// The room's messages as an async stream (exactly once, in order). Buffering starts at the first
    /// access: read it before <see cref="JoinAsync"/> to see every message. One reader at a time; it
    /// completes when the client is closed.
    /// </summary>
    public IAsyncEnumerable<RoomMessage> Messages
    {
        get
        {
            lock (_sync)
            {
                _channel ??= Channel.CreateUnbounded<RoomMessage>(new UnboundedChannelOptions { SingleWriter = true });
                return _channel.Reader.ReadAllAsync();
            }
        }
    }

    /// <summary>
    /// Joins the room (connecting first if needed). From now on the client keeps it joined across
    /// reconnects until <see cref="LeaveAsync"/>. Joining a room already joined returns its position.
    /// </summary>
    /// <exception cref="BrokerException">The broker refused (e.g. <c>forbidden</c>, <c>too_large</c>).</exception>
    public async Task<JoinResult> JoinAsync(CancellationToken cancellationToken = default)
    {
        lock (_sync)
        {
            _desired = true;
        }

        while (true)
        {
            var connection = await _client.WaitReadyAsync(cancellationToken).ConfigureAwait(false);
            try
            {
                return await JoinOnAsync(connection, cancellationToken).ConfigureAwait(false);
            }
            catch (ConnectionLostException)
            {
                // Joined again by the next connection (or by this loop).
            }
            catch (BrokerException)
            {
                lock (_sync)
                {
                    _desired = false;
                }

                throw;
            }
        }
    }

    /// <summary>Leaves the room: no more of its messages arrive, and it is not re-joined on reconnect.</summary>
    public async Task LeaveAsync(CancellationToken cancellationToken = default)
    {
        lock (_sync)
        {
            if (!_desired)
            {
                return;
            }

            Forget();
        }

        var connection = _client.CurrentReady;
        if (connection is null)
        {
            return; // Not connected: the next connection does not join it.
        }

        try
        {
            await connection.RequestAsync("leave", w => w.WriteString("room", Name), _client.Options.RequestTimeout, cancellationToken).ConfigureAwait(false);
        }
        catch (ConnectionLostException)
        {
            // The connection that was in the room is gone.
        }
        catch (BrokerException ex) when (ex.Code == "not_found")
        {
            // Not in the room on the server either.
        }
    }

    /// <summary>Publishes <paramref name="data"/> (serialized with <see cref="BrokerClientOptions.SerializerOptions"/>); see <see cref="PublishAsync(JsonElement, CancellationToken)"/>.</summary>
    public Task<PublishAck> PublishAsync<T>(T data, CancellationToken cancellationToken = default) =>
        PublishAsync(data is JsonElement element ? element : JsonSerializer.SerializeToElement(data, _client.Options.SerializerOptions), cancellationToken);

    /// <summary>
    /// Publishes a JSON value. A msgId is chosen here and the publish is retried with it — after a
    /// timeout, an <c>unavailable</c> or <c>rate_limited</c> reply, a reconnect — until the broker
    /// acks it, so it is ordered once, with one seq. A client's publishes go out one at a time, in
    /// the order of the calls. Cancelling stops the retries (the message may or may not have been published).
    /// </summary>
    /// <exception cref="BrokerException">The broker refused it for good (<c>forbidden</c>, <c>not_member</c>, <c>too_large</c> …), or the client was closed.</exception>
    public Task<PublishAck> PublishAsync(JsonElement data, CancellationToken cancellationToken = default) =>
        _client.EnqueuePublish(Name, data, cancellationToken);

    /// <summary>Who is in the room.</summary>
    public async Task<IReadOnlyList<PresenceMember>> PresenceAsync(CancellationToken cancellationToken = default)
    {
        var reply = await _client.RequestRetryingAsync("presence", w => w.WriteString("room", Name), cancellationToken).ConfigureAwait(false);
        var members = new List<PresenceMember>();
        if (reply.TryGetProperty("members", out var list) && list.ValueKind == JsonValueKind.Array)
        {
            foreach (var m in list.EnumerateArray())
            {
                members.Add(new PresenceMember(Frames.String(m, "user") ?? string.Empty, (int)Frames.Long(m, "connections")));
            }
        }

        return members;
    }

    /// <summary>
    /// A page of the room's history: without <paramref name="since"/> the latest messages, else the
    /// first ones after it (page on with the last seq while <see cref="HistoryPage.More"/>).
    /// </summary>
    public async Task<HistoryPage> HistoryAsync(long? since = null, int? limit = null, CancellationToken cancellationToken = default)
    {
        var reply = await _client.RequestRetryingAsync("history", w =>
        {
            w.WriteString("room", Name);
            if (since is { } s)
            {
                w.WriteNumber("since", s);
            }

            if (limit is { } l)
            {
                w.WriteNumber("limit", l);
            }
        }, cancellationToken).ConfigureAwait(false);
        var messages = new List<RoomMessage>();
        if (reply.TryGetProperty("messages", out var list) && list.ValueKind == JsonValueKind.Array)
        {
            foreach (var m in list.EnumerateArray())
            {
                messages.Add(Frames.Message(m));
            }
        }

        return new HistoryPage(Name, Frames.String(reply, "epoch") ?? string.Empty, messages, Frames.Bool(reply, "more"));
    }

    internal bool Desired
    {
        get
        {
            lock (_sync)
            {
                return _desired;
            }
        }
    }

    /// <summary>Joins on this connection unless it already did; retries answers that a retry can fix.</summary>
    internal async Task<JoinResult> JoinOnAsync(Connection connection, CancellationToken ct)
    {
        await _joinLock.WaitAsync(ct).ConfigureAwait(false);
        try
        {
            for (var attempt = 0; ; attempt++)
            {
                long since;
                string? epoch;
                lock (_sync)
                {
                    if (_joinedGeneration == connection.Generation && _lastJoin is not null)
                    {
                        return _lastJoin;
                    }

                    _joinPending = true;
                    since = _lastSeq;
                    epoch = _epoch;
                }

                JsonElement reply;
                try
                {
                    reply = await connection.RequestAsync("join", w =>
                    {
                        w.WriteString("room", Name);
                        if (epoch is not null)
                        {
                            w.WriteNumber("since", since);
                            w.WriteString("epoch", epoch);
                        }
                    }, _client.Options.RequestTimeout, ct).ConfigureAwait(false);
                }
                catch (BrokerException ex) when (BrokerClient.IsRetryable(ex.Code))
                {
                    await Task.Delay(_client.Backoff(attempt), ct).ConfigureAwait(false);
                    continue;
                }

                lock (_sync)
                {
                    _joinedGeneration = connection.Generation;
                    _lastJoin = new JoinResult(Name, Frames.Long(reply, "seq"), Frames.String(reply, "epoch") ?? string.Empty, Frames.Bool(reply, "recovered"));
                    return _lastJoin;
                }
            }
        }
        finally
        {
            _joinLock.Release();
        }
    }

    /// <summary>The re-join on a new connection was refused for good.</summary>
    internal void OnRejoinRefused(BrokerException error)
    {
        lock (_sync)
        {
            Forget();
        }

        Raise(Left, new RoomLeftEventArgs(Name, error.Message, error.Code));
    }

    // ---- Called on the receive loop only, in the order frames arrive. ----

    internal void OnMessage(JsonElement frame)
    {
        var message = Frames.Message(frame);
        RoomResetEventArgs? reset = null;
        lock (_sync)
        {
            if (!_desired)
            {
                return;
            }

            if (_joinPending)
            {
                if (_epoch is not null && message.Epoch == _epoch && message.Seq <= _lastSeq)
                {
                    return;
                }

                if (_epoch is not null && message.Epoch == _epoch && message.Seq == _lastSeq + 1)
                {
                    _lastSeq = message.Seq;
                }
                else
                {
                    if (_buffer.Count < MaxBuffered)
                    {
                        _buffer.Add(message);
                    }

                    return;
                }
            }
            else if (message.Epoch == _epoch)
            {
                if (message.Seq <= _lastSeq)
                {
                    return;
                }

                _lastSeq = message.Seq;
            }
            else
            {
                // The room's state was lost while joined: a new epoch numbers from 1 again.
                reset = new RoomResetEventArgs(Name, _epoch ?? string.Empty, _lastSeq, message.Epoch, message.Seq - 1);
                _epoch = message.Epoch;
                _lastSeq = message.Seq;
            }
        }

        if (reset is not null)
        {
            Raise(Reset, reset);
        }

        Deliver(message);
    }

    internal void OnJoined(JsonElement frame)
    {
        var seq = Frames.Long(frame, "seq");
        var epoch = Frames.String(frame, "epoch") ?? string.Empty;
        var recovered = Frames.Bool(frame, "recovered");
        RoomResetEventArgs? reset = null;
        List<RoomMessage> deliver = [];
        lock (_sync)
        {
            if (!_desired)
            {
                return;
            }

            if (_epoch is null)
            {
                _epoch = epoch;
                _lastSeq = seq;
            }
            else if (!(recovered && epoch == _epoch))
            {
                reset = new RoomResetEventArgs(Name, _epoch, _lastSeq, epoch, seq);
                _epoch = epoch;
                _lastSeq = seq;
            }

            foreach (var m in _buffer.Where(m => m.Epoch == _epoch).OrderBy(m => m.Seq))
            {
                if (m.Seq > _lastSeq)
                {
                    _lastSeq = m.Seq;
                    deliver.Add(m);
                }
            }

            _buffer.Clear();
            _joinPending = false;
        }

        if (reset is not null)
        {
            Raise(Reset, reset);
        }

        foreach (var m in deliver)
        {
            Deliver(m);
        }
    }

    internal void OnServerLeft(JsonElement frame)
    {
        lock (_sync)
        {
            if (!_desired)
            {
                return;
            }

            Forget();
        }

        Raise(Left, new RoomLeftEventArgs(Name, Frames.String(frame, "reason") ?? "The server took the connection out of the room.", null));
    }

    internal void OnMember(bool joined, JsonElement frame)
    {
        var args = new MemberEventArgs(Name, Frames.String(frame, "user") ?? string.Empty);
        Raise(joined ? MemberJoined : MemberLeft, args);
    }

    internal void Complete()
    {
        lock (_sync)
        {
            _channel?.Writer.TryComplete();
        }
    }

    private void Forget()
    {
        _desired = false;
        _joinPending = false;
        _epoch = null;
        _lastSeq = 0;
        _joinedGeneration = -1;
        _lastJoin = null;
        _buffer.Clear();
    }

    private void Deliver(RoomMessage message)
    {
        Channel<RoomMessage>? channel;
        lock (_sync)
        {
            channel = _channel;
        }

        channel?.Writer.TryWrite(message);
        Raise(MessageReceived, message);
    }

    private void Raise<T>(EventHandler<T>? handler, T args)
    {
        try
        {
            handler?.Invoke(this, args);
        }
#pragma warning disable CA1031 // An application's handler must not stop the receive loop.
        catch (Exception)
#pragma warning restore CA1031
        {
        }
    }
}
