using System.Collections.Immutable;
using System.Text;
using Broker.Grains.Models;

namespace Broker.Grains.Tests.Infrastructure;

/// <summary>
/// A front-end's delivery observer for tests: records every delivery (thread-safe) and wakes
/// waiters whose condition becomes true. A behaviour hook may make a delivery throw or never
/// complete, as a broken or stuck front-end would.
/// </summary>
public sealed class RecordingFrontend : IFrontendObserver
{
    public static readonly TimeSpan DefaultTimeout = TimeSpan.FromSeconds(10);

    private readonly object _gate = new();
    private readonly List<RoomDelivery> _roomDeliveries = [];
    private readonly List<DirectDelivery> _directDeliveries = [];
    private readonly List<string[]> _sharedCalls = [];
    private readonly List<(Func<RecordingFrontend, bool> Condition, TaskCompletionSource Done)> _waiters = [];

    public RecordingFrontend(string id) => Id = id;

    /// <summary>The front-end id sent with joins, e.g. "fe-a-…".</summary>
    public string Id { get; }

    /// <summary>The observer reference grains call; set by the test that created this front-end.</summary>
    public IFrontendObserver Reference { get; set; } = null!;

    /// <summary>Runs after a room delivery is recorded; its task is what the grain awaits.</summary>
    public Func<RoomDelivery, Task>? OnDeliverRoom { get; set; }

    /// <summary>Runs after a direct delivery is recorded; its task is what the grain awaits.</summary>
    public Func<DirectDelivery, Task>? OnDeliverDirect { get; set; }

    /// <summary>What this front-end answers when a new room activation asks for its members, by room key.</summary>
    public Dictionary<string, ImmutableArray<RoomMemberRef>> RoomMembers { get; } = [];

    /// <summary>What this front-end answers when a new user activation asks for its connections, by user key.</summary>
    public Dictionary<string, ImmutableArray<string>> UserConnections { get; } = [];

    public Task<ImmutableArray<RoomMemberRef>> GetRoomMembers(string ns, string room)
    {
        lock (_gate)
        {
            return Task.FromResult(RoomMembers.GetValueOrDefault(GrainKeys.Of(ns, room), []));
        }
    }

    public Task<ImmutableArray<string>> GetUserConnections(string ns, string user)
    {
        lock (_gate)
        {
            return Task.FromResult(UserConnections.GetValueOrDefault(GrainKeys.Of(ns, user), []));
        }
    }

    /// <summary>Every CloseUserConnections call: the user key and the reason.</summary>
    public List<(string UserKey, string Reason)> Closings { get; } = [];

    /// <summary>Answers the number of connections <see cref="UserConnections"/> lists for the user, and forgets them.</summary>
    public Task<int> CloseUserConnections(string ns, string user, string reason)
    {
        lock (_gate)
        {
            var key = GrainKeys.Of(ns, user);
            Closings.Add((key, reason));
            var count = UserConnections.GetValueOrDefault(key, []).Length;
            UserConnections.Remove(key);
            return Task.FromResult(count);
        }
    }

    public Task DeliverRoom(RoomDelivery delivery)
    {
        Record(() => _roomDeliveries.Add(delivery));
        return OnDeliverRoom?.Invoke(delivery) ?? Task.CompletedTask;
    }

    /// <summary>Shared calls (several rooms' deliveries from one silo): each recorded as a delivery of its own, in order.</summary>
    public async Task DeliverRooms(ImmutableArray<RoomDelivery> deliveries)
    {
        lock (_gate)
        {
            _sharedCalls.Add([.. deliveries.Select(d => GrainKeys.Of(d.Namespace, d.Room))]);
        }

        foreach (var delivery in deliveries)
        {
            await DeliverRoom(delivery);
        }
    }

    public Task DeliverDirect(DirectDelivery delivery)
    {
        Record(() => _directDeliveries.Add(delivery));
        return OnDeliverDirect?.Invoke(delivery) ?? Task.CompletedTask;
    }

    /// <summary>The rooms of each DeliverRooms call, in call order.</summary>
    public IReadOnlyList<string[]> SharedCalls()
    {
        lock (_gate)
        {
            return [.. _sharedCalls];
        }
    }

    public IReadOnlyList<RoomDelivery> RoomDeliveries(string roomKey)
    {
        lock (_gate)
        {
            return _roomDeliveries.Where(d => GrainKeys.Of(d.Namespace, d.Room) == roomKey).ToList();
        }
    }

    /// <summary>Every message and member event of the room, in arrival order (Position markers left out).</summary>
    public IReadOnlyList<RoomEvent> RoomEvents(string roomKey) =>
        AllRoomEvents(roomKey).Where(e => e.Kind != RoomEventKind.Position).ToList();

    /// <summary>Every event of the room, Position markers included, in arrival order.</summary>
    public IReadOnlyList<RoomEvent> AllRoomEvents(string roomKey) =>
        RoomDeliveries(roomKey).SelectMany(d => d.Events).ToList();

    public IReadOnlyList<RoomMessage> RoomMessages(string roomKey) =>
        RoomEvents(roomKey).Where(e => e.Kind == RoomEventKind.Message).Select(e => e.Message!).ToList();

    public IReadOnlyList<RoomEvent> MemberEvents(string roomKey) =>
        RoomEvents(roomKey).Where(e => e.Kind != RoomEventKind.Message).ToList();

    public IReadOnlyList<DirectDelivery> DirectDeliveries(string userKey)
    {
        lock (_gate)
        {
            return _directDeliveries.Where(d => GrainKeys.Of(d.Namespace, d.User) == userKey).ToList();
        }
    }

    public IReadOnlyList<DirectMessage> DirectMessages(string userKey) =>
        DirectDeliveries(userKey).SelectMany(d => d.Messages).ToList();

    /// <summary>Completes when <paramref name="condition"/> holds; throws TimeoutException (with what was received) otherwise.</summary>
    public async Task WaitUntilAsync(Func<RecordingFrontend, bool> condition, string what, TimeSpan? timeout = null)
    {
        var limit = timeout ?? DefaultTimeout;
        if (limit < TimeSpan.Zero)
        {
            limit = TimeSpan.Zero; // a deadline already passed: check once, then time out
        }

        var entry = (condition, new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously));
        lock (_gate)
        {
            if (condition(this))
            {
                return;
            }

            _waiters.Add(entry);
        }

        try
        {
            await entry.Item2.Task.WaitAsync(limit);
        }
        catch (TimeoutException)
        {
            lock (_gate)
            {
                _waiters.Remove(entry);
            }

            throw new TimeoutException($"Front-end {Id} did not see {what} within {limit.TotalSeconds} s. Received: {Describe()}");
        }
    }

    public Task WaitForMessagesAsync(string roomKey, int count, TimeSpan? timeout = null) =>
        WaitUntilAsync(f => f.RoomMessages(roomKey).Count >= count, $"{count} messages of {roomKey}", timeout);

    public Task WaitForSeqAsync(string roomKey, long seq, TimeSpan? timeout = null) =>
        WaitUntilAsync(f => f.RoomMessages(roomKey).Any(m => m.Seq == seq), $"seq {seq} of {roomKey}", timeout);

    public Task WaitForMemberEventAsync(string roomKey, RoomEventKind kind, string user, TimeSpan? timeout = null) =>
        WaitUntilAsync(
            f => f.RoomEvents(roomKey).Any(e => e.Kind == kind && e.User == user),
            $"{kind} {user} in {roomKey}",
            timeout);

    public Task WaitForDirectAsync(string userKey, int count, TimeSpan? timeout = null) =>
        WaitUntilAsync(f => f.DirectMessages(userKey).Count >= count, $"{count} direct messages for {userKey}", timeout);

    private void Record(Action add)
    {
        List<TaskCompletionSource> ready = [];
        lock (_gate)
        {
            add();
            for (var i = _waiters.Count - 1; i >= 0; i--)
            {
                if (_waiters[i].Condition(this))
                {
                    ready.Add(_waiters[i].Done);
                    _waiters.RemoveAt(i);
                }
            }
        }

        foreach (var done in ready)
        {
            done.TrySetResult();
        }
    }

    private string Describe()
    {
        lock (_gate)
        {
            var sb = new StringBuilder();
            foreach (var d in _roomDeliveries)
            {
                sb.Append('[').Append(d.Room).Append(':');
                foreach (var e in d.Events)
                {
                    sb.Append(' ').Append(e.Version).Append('/').Append(e.Kind).Append('/').Append(e.User);
                    if (e.Message is { } m)
                    {
                        sb.Append("#").Append(m.Seq);
                    }
                }

                sb.Append("] ");
            }

            foreach (var d in _directDeliveries)
            {
                sb.Append("[direct ").Append(d.User).Append(": ").Append(d.Messages.Length).Append(" msgs] ");
            }

            return sb.Length == 0 ? "nothing" : sb.ToString();
        }
    }
}
