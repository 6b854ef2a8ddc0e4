using System.Collections.Immutable;
using Broker.Grains.Models;
using Microsoft.Extensions.Logging;

namespace Broker.Grains;

/// <summary>
/// The single writer of a room. State lives in memory for now: an activation that is lost
/// (silo crash, idle collection with no members) comes back with a new epoch and seq 0, which
/// clients see as "history lost" (recovered:false) — a seq is never reused within an epoch.
/// Membership is not lost with it: a new activation asks every live front-end who its members
/// are before it takes any call.
/// Invariants: seq grows by one per accepted publish; Version grows by one per event
/// (message or member event); each front-end's queue receives events in Version order.
/// </summary>
[CollectionAgeLimit(Minutes = IdleMinutes)]
public sealed partial class RoomGrain : Grain, IRoomGrain
{
    /// <summary>
    /// A room nobody has called for this long is deactivated and its in-memory history lost.
    /// Rooms with members are called by their front-ends' heartbeats, so only empty rooms go.
    /// </summary>
    public const double IdleMinutes = 60;

    /// <summary>How many msgIds a room remembers for idempotent publish, at least.</summary>
    internal const int MinDedupeWindow = 1024;

    private readonly ILogger<RoomGrain> _logger;
    private readonly TimeProvider _time;
    private readonly Dictionary<string, Member> _members = new(StringComparer.Ordinal);
    private readonly Dictionary<string, int> _connectionsPerUser = new(StringComparer.Ordinal);
    private readonly FrontendQueueSet<RoomEvent> _frontends;
    private readonly Dictionary<string, long> _seqByMsgId = new(StringComparer.Ordinal);
    private readonly Queue<string> _msgIdOrder = new();
    private readonly HistoryWindow _history = new();
    private string _namespace = string.Empty;
    private string _room = string.Empty;
    private string _epoch = string.Empty;
    private long _seq;
    private long _version;
    private RoomPolicy _policy = new(HistoryLimit: 100, Presence: true);

    public RoomGrain(ILogger<RoomGrain> logger, TimeProvider time)
    {
        _logger = logger;
        _time = time;
        _frontends = new FrontendQueueSet<RoomEvent>(SendAsync, OnFrontendFailed);
    }

    public override async Task OnActivateAsync(CancellationToken cancellationToken)
    {
        (_namespace, _room) = GrainKeys.Split(this.GetPrimaryKeyString());
        _epoch = Guid.NewGuid().ToString("N")[..12];
        _history.Resize(_policy.HistoryLimit);
        await FrontendMembership.RebuildAsync(
            GrainFactory,
            _logger,
            (frontend, ct) => frontend.Frontend.GetRoomMembers(_namespace, _room).WaitAsync(ct),
            (frontend, members) =>
            {
                foreach (var member in members)
                {
                    AddMember(member.ConnectionId, member.User, frontend.FrontendId, frontend.Frontend);
                }
            },
            cancellationToken);
    }

    public Task<JoinResult> Join(JoinRequest request)
    {
        ApplyPolicy(request.Policy);
        var recovered = false;
        var missed = ImmutableArray<RoomMessage>.Empty;
        if (request.Since is { } since && request.Epoch == _epoch && since <= _seq)
        {
            // Recoverable when the window still holds every message after since.
            var oldest = _history.OldestSeq ?? (_seq + 1);
            if (since >= oldest - 1)
            {
                missed = _history.After(since, int.MaxValue);
                recovered = true;
            }
        }

        AddMember(request.ConnectionId, request.User, request.FrontendId, request.Frontend);
        return Task.FromResult(new JoinResult(_seq, _epoch, _version, recovered, missed));
    }

    public Task<bool> Leave(string connectionId) => Task.FromResult(RemoveMember(connectionId));

    public Task<PublishResult> Publish(PublishRequest request)
    {
        ApplyPolicy(request.Policy);
        string? dedupeKey = null;
        if (request.MsgId is { } msgId)
        {
            dedupeKey = string.Concat(request.User, "\n", msgId);
            if (_seqByMsgId.TryGetValue(dedupeKey, out var firstSeq))
            {
                return Task.FromResult(new PublishResult(firstSeq, _epoch, Duplicate: true));
            }
        }

        var message = new RoomMessage(++_seq, request.User, _time.GetUtcNow().ToUnixTimeMilliseconds(), request.Payload);
        _history.Add(message);
        if (dedupeKey is not null)
        {
            RememberMsgId(dedupeKey, message.Seq);
        }

        _frontends.Broadcast(new RoomEvent(++_version, RoomEventKind.Message, request.User, message));
        return Task.FromResult(new PublishResult(message.Seq, _epoch, Duplicate: false));
    }

    public Task<ImmutableArray<PresenceEntry>> GetPresence()
    {
        var entries = ImmutableArray.CreateBuilder<PresenceEntry>(_connectionsPerUser.Count);
        foreach (var (user, count) in _connectionsPerUser)
        {
            entries.Add(new PresenceEntry(user, count));
        }

        return Task.FromResult(entries.MoveToImmutable());
    }

    public Task<HistoryPage> GetHistory(long? since, int limit)
    {
        limit = Math.Max(0, limit);
        var messages = since is { } after ? _history.After(after, limit) : _history.Latest(limit);
        return Task.FromResult(new HistoryPage(_epoch, messages));
    }

    public Task SyncFrontend(FrontendRoomSync sync)
    {
        ApplyPolicy(sync.Policy);
        foreach (var member in sync.Members)
        {
            AddMember(member.ConnectionId, member.User, sync.FrontendId, sync.Frontend);
        }

        // The registry may have been rebuilt since this room watched the front-end.
        FrontendMembership.Watch(GrainFactory, sync.FrontendId, this.AsReference<IFrontendWatcher>());
        return Task.CompletedTask;
    }

    public Task FrontendLost(string frontendId)
    {
        DropFrontend(frontendId);
        return Task.CompletedTask;
    }

    private void ApplyPolicy(RoomPolicy policy)
    {
        if (policy != _policy)
        {
            _policy = policy;
            _history.Resize(policy.HistoryLimit);
        }
    }

    private void AddMember(string connectionId, string user, string frontendId, IFrontendObserver observer)
    {
        if (_members.ContainsKey(connectionId))
        {
            return;
        }

        if (_frontends.AddMember(frontendId, observer))
        {
            FrontendMembership.Watch(GrainFactory, frontendId, this.AsReference<IFrontendWatcher>());
        }

        _members[connectionId] = new Member(user, frontendId);
        _connectionsPerUser.TryGetValue(user, out var count);
        _connectionsPerUser[user] = count + 1;
        if (count == 0 && _policy.Presence)
        {
            _frontends.Broadcast(new RoomEvent(++_version, RoomEventKind.MemberJoined, user, null));
        }
    }

    private bool RemoveMember(string connectionId)
    {
        if (!_members.Remove(connectionId, out var member))
        {
            return false;
        }

        var remaining = _connectionsPerUser[member.User] - 1;
        if (remaining == 0)
        {
            _connectionsPerUser.Remove(member.User);
        }
        else
        {
            _connectionsPerUser[member.User] = remaining;
        }

        _frontends.RemoveMember(member.FrontendId);
        if (remaining == 0 && _policy.Presence)
        {
            _frontends.Broadcast(new RoomEvent(++_version, RoomEventKind.MemberLeft, member.User, null));
        }

        return true;
    }

    /// <summary>A front-end is gone: its members leave (the others see member_left).</summary>
    private void DropFrontend(string frontendId)
    {
        _frontends.Drop(frontendId);
        var lost = _members.Where(m => m.Value.FrontendId == frontendId).Select(m => m.Key).ToList();
        foreach (var connectionId in lost)
        {
            RemoveMember(connectionId);
        }
    }

    private Task SendAsync(IFrontendObserver observer, ImmutableArray<RoomEvent> events) =>
        observer.DeliverRoom(new RoomDelivery(_namespace, _room, _epoch, events));

    private void OnFrontendFailed(string frontendId, Exception exception)
    {
        LogFrontendFailed(_logger, frontendId, _namespace, _room, exception);
        DropFrontend(frontendId);
    }

    private void RememberMsgId(string key, long seq)
    {
        _seqByMsgId[key] = seq;
        _msgIdOrder.Enqueue(key);
        var window = Math.Max(MinDedupeWindow, _policy.HistoryLimit);
        while (_msgIdOrder.Count > window)
        {
            _seqByMsgId.Remove(_msgIdOrder.Dequeue());
        }
    }

    [LoggerMessage(Level = LogLevel.Warning, Message = "Front-end {FrontendId} did not take deliveries of room {Namespace}/{Room}; its members were dropped")]
    private static partial void LogFrontendFailed(ILogger logger, string frontendId, string @namespace, string room, Exception exception);

    private readonly record struct Member(string User, string FrontendId);
}
