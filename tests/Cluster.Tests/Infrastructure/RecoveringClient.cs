using System.Diagnostics;
using System.Globalization;
using System.Net.WebSockets;

namespace Broker.Cluster.Tests.Infrastructure;

/// <summary>
/// A user's client that behaves as a careful application should: when its connection ends (a
/// dead front-end, a 1012, a 1013) it connects to a live front-end (another one first) and
/// re-joins each of its rooms with <c>since</c> = the last seq it saw + the room's epoch,
/// retrying a join answered with an error. It keeps every connection it had, so that the
/// messages it saw can be accounted for across all of them.
/// </summary>
public sealed class RecoveringClient : IAsyncDisposable
{
    private static readonly TimeSpan ReconnectLimit = TimeSpan.FromSeconds(30);

    private readonly Func<IReadOnlyList<FrontendProcess>> _frontends;
    private readonly SemaphoreSlim _gate = new(1, 1);
    private readonly List<WsClient> _connections = [];
    private readonly Dictionary<string, (long Seq, string Epoch)> _firstJoin = [];
    private readonly List<string> _problems = [];
    private readonly List<Rejoin> _rejoins = [];
    private readonly List<(string Node, WebSocketCloseStatus? Status, long At)> _ends = [];
    private readonly CancellationTokenSource _stop = new();
    private Task _watch = Task.CompletedTask;

    private RecoveringClient(string user, IReadOnlyList<string> rooms, Func<IReadOnlyList<FrontendProcess>> frontends, TimeSpan reconnectDelay)
    {
        User = user;
        Rooms = rooms;
        _frontends = frontends;
        ReconnectDelay = reconnectDelay;
    }

    /// <summary>How long the client waits after its connection ended before it reconnects (an application's backoff).</summary>
    public TimeSpan ReconnectDelay { get; }

    public string User { get; }

    public IReadOnlyList<string> Rooms { get; }

    /// <summary>The connection in use (the latest).</summary>
    public WsClient Current { get; private set; } = null!;

    /// <summary>Every connection this client had, oldest first.</summary>
    public IReadOnlyList<WsClient> Connections
    {
        get
        {
            lock (_connections)
            {
                return [.. _connections];
            }
        }
    }

    /// <summary>What went against the guarantees while recovering (a recovered:false, a join never answered …).</summary>
    public IReadOnlyList<string> Problems
    {
        get
        {
            lock (_problems)
            {
                return [.. _problems];
            }
        }
    }

    public IReadOnlyList<Rejoin> Rejoins
    {
        get
        {
            lock (_rejoins)
            {
                return [.. _rejoins];
            }
        }
    }

    /// <summary>Each connection that ended: its node, the close status the server sent (null: it broke), when.</summary>
    public IReadOnlyList<(string Node, WebSocketCloseStatus? Status, long At)> Ends
    {
        get
        {
            lock (_ends)
            {
                return [.. _ends];
            }
        }
    }

    /// <summary>Connects to <paramref name="frontend"/>, joins every room (plainly), then watches the connection.</summary>
    public static async Task<RecoveringClient> StartAsync(
        string user, FrontendProcess frontend, IReadOnlyList<string> rooms, Func<IReadOnlyList<FrontendProcess>> frontends, TimeSpan reconnectDelay = default)
    {
        var client = new RecoveringClient(user, rooms, frontends, reconnectDelay);
        var connection = await WsClient.ConnectAsync(frontend.WsBase, user);
        client._connections.Add(connection);
        client.Current = connection;
        foreach (var room in rooms)
        {
            var joined = await connection.JoinAsync(room);
            client._firstJoin[room] = (joined.GetProperty("seq").GetInt64(), joined.GetProperty("epoch").GetString()!);
        }

        client._watch = Task.Run(client.WatchAsync);
        return client;
    }

    /// <summary>The epoch of the room at the first join.</summary>
    public string FirstEpoch(string room) => _firstJoin[room].Epoch;

    /// <summary>Every message of the room this client saw, over all its connections, in the order seen.</summary>
    public IReadOnlyList<Frame> Seen(string room) => [.. Connections.SelectMany(c => c.Messages(room))];

    /// <summary>The last seq seen in the room (the joined seq when no message came yet), and its epoch.</summary>
    public (long Since, string Epoch) Position(string room)
    {
        var seen = Seen(room);
        var (seq, epoch) = _firstJoin[room];
        if (seen.Count > 0)
        {
            var last = seen.MaxBy(m => m.Seq)!;
            seq = Math.Max(seq, last.Seq);
            epoch = last.Json.GetProperty("epoch").GetString()!;
        }

        return (seq, epoch);
    }

    /// <summary>The open connection, after reconnecting and re-joining when the current one ended.</summary>
    public async Task<WsClient> EnsureConnectedAsync()
    {
        await _gate.WaitAsync();
        try
        {
            if (Current.IsOpen)
            {
                return Current;
            }

            var lost = Current;
            WebSocketCloseStatus? status = null;
            try
            {
                status = await lost.Closed.WaitAsync(TimeSpan.FromSeconds(5));
            }
            catch (TimeoutException)
            {
                // Its socket is not open any more; the reader just has not noticed yet.
            }

            var endedAt = Stopwatch.GetTimestamp();
            lock (_ends)
            {
                _ends.Add((lost.Node, status, endedAt));
            }

            // Let the socket go, as a browser does once the close handshake is over (its frames stay readable).
            await lost.DisposeAsync();

            if (ReconnectDelay > TimeSpan.Zero)
            {
                // The application's reconnect backoff (behaviour under test, not synchronisation).
                await Task.Delay(ReconnectDelay);
            }

            var clock = Stopwatch.StartNew();
            while (true)
            {
                var next = await ConnectAnywhereAsync(lost.Node, clock);
                lock (_connections)
                {
                    _connections.Add(next);
                }

                try
                {
                    foreach (var room in Rooms)
                    {
                        await RejoinAsync(next, room, endedAt, clock);
                    }

                    Current = next;
                    return next;
                }
                catch (ConnectionEndedException)
                {
                    // The new connection ended while re-joining: again, elsewhere.
                    lost = next;
                }
            }
        }
        finally
        {
            _gate.Release();
        }
    }

    public async Task StopWatchingAsync()
    {
        await _stop.CancelAsync();
        await _watch;
    }

    public async ValueTask DisposeAsync()
    {
        await StopWatchingAsync();
        await Task.WhenAll(Connections.Select(c => c.DisposeAsync().AsTask()));
    }

    private async Task WatchAsync()
    {
        while (!_stop.IsCancellationRequested)
        {
            try
            {
                await Current.Closed.WaitAsync(_stop.Token);
                await EnsureConnectedAsync();
            }
            catch (OperationCanceledException)
            {
                return;
            }
            catch (Exception ex)
            {
                AddProblem($"could not reconnect: {ex.Message}");
                return;
            }
        }
    }

    private async Task<WsClient> ConnectAnywhereAsync(string avoid, Stopwatch clock)
    {
        var errors = new List<string>();
        while (true)
        {
            var candidates = _frontends().Where(f => !f.HasExited).OrderBy(f => f.NodeId == avoid ? 1 : 0).ToList();
            foreach (var frontend in candidates)
            {
                try
                {
                    return await WsClient.ConnectAsync(frontend.WsBase, User, timeout: TimeSpan.FromSeconds(5));
                }
                catch (Exception ex) when (ex is WebSocketException or TimeoutException or InvalidOperationException or OperationCanceledException or HttpRequestException)
                {
                    errors.Add($"{frontend.NodeId}: {ex.Message}");
                }
            }

            if (clock.Elapsed > ReconnectLimit)
            {
                throw new TimeoutException($"{User}: no front-end accepted a connection within {ReconnectLimit}: {string.Join("; ", errors.TakeLast(4))}");
            }

            // Bounded retry pacing, not synchronisation.
            await Task.Delay(100);
        }
    }

    private async Task RejoinAsync(WsClient connection, string room, long endedAt, Stopwatch clock)
    {
        var (since, epoch) = Position(room);
        var errors = new List<string>();
        for (var attempt = 1; ; attempt++)
        {
            var sent = Stopwatch.GetTimestamp();
            var request = connection.RequestAsync(
                new() { ["type"] = "join", ["room"] = room, ["since"] = since, ["epoch"] = epoch },
                TimeSpan.FromSeconds(20));
            var done = await Task.WhenAny(request, connection.Closed);
            if (done != request)
            {
                _ = request.ContinueWith(t => t.Exception, TaskScheduler.Default);
                throw new ConnectionEndedException();
            }

            Frame reply;
            try
            {
                reply = await request;
            }
            catch (Exception ex) when (ex is WebSocketException or ObjectDisposedException or InvalidOperationException)
            {
                throw new ConnectionEndedException();
            }
            catch (TimeoutException ex)
            {
                errors.Add("timeout");
                if (!connection.IsOpen)
                {
                    throw new ConnectionEndedException();
                }

                if (clock.Elapsed > ReconnectLimit)
                {
                    AddProblem($"{room}: re-join never answered: {ex.Message}");
                    throw;
                }

                continue;
            }

            if (reply.Type == "joined")
            {
                var seq = reply.Seq;
                var recovered = reply.Json.GetProperty("recovered").GetBoolean();
                var replayed = connection.Messages(room).Count(m => m.At <= reply.At);
                lock (_rejoins)
                {
                    _rejoins.Add(new Rejoin(User, room, connection.Node, since, seq, recovered, replayed, attempt, errors, endedAt, sent, reply.At));
                }

                if (!recovered)
                {
                    AddProblem($"{room}: join on {connection.Node} with since={since} epoch={epoch} answered recovered:false (room at seq {seq}, epoch {reply.Json.GetProperty("epoch")}): {reply.Text}");
                }

                return;
            }

            errors.Add(reply.ErrorCode ?? reply.Text);
            if (clock.Elapsed > ReconnectLimit)
            {
                AddProblem($"{room}: re-join failed {attempt} times within {ReconnectLimit}: {string.Join(", ", errors.TakeLast(5))}");
                throw new TimeoutException($"{User}: re-join of {room} failed: {reply.Text}");
            }

            // Bounded retry pacing after an error reply (unavailable while a silo is being declared dead).
            await Task.Delay(100);
        }
    }

    private void AddProblem(string problem)
    {
        lock (_problems)
        {
            _problems.Add($"{User}: {problem}");
        }
    }

    /// <summary>One re-join after a connection ended: where, from which seq, what came back, when.</summary>
    public sealed record Rejoin(
        string User, string Room, string Node, long Since, long JoinedSeq, bool Recovered, int Replayed, int Attempts,
        IReadOnlyList<string> Errors, long ConnectionEndedAt, long SentAt, long JoinedAt)
    {
        public override string ToString() =>
            $"{User} {Room} on {Node}: since {Since} -> joined seq {JoinedSeq} recovered:{Recovered.ToString().ToLowerInvariant()}, " +
            $"{Replayed.ToString(CultureInfo.InvariantCulture)} replayed, attempt {Attempts.ToString(CultureInfo.InvariantCulture)}" +
            (Errors.Count > 0 ? $" (before: {string.Join(",", Errors)})" : string.Empty) +
            $", {Ms.Format(Ms.Between(ConnectionEndedAt, JoinedAt))} after the connection ended";
    }

    private sealed class ConnectionEndedException : Exception;
}
