using System.Collections.Immutable;
using Broker.Grains.Diagnostics;
using Broker.Grains.Models;
using Broker.Grains.Storage;
using Broker.Grains.Streams;
using Microsoft.Extensions.Logging;

namespace Broker.Grains;

/// <summary>
/// The single writer of a room. Its epoch, seq and history window live in an
/// <see cref="IRoomStore"/>: with a durable store (Redis) a publish is acked only once committed,
/// and a new activation carries on in the same epoch; with the memory store a new activation is
/// a new epoch. Concurrent publishes are committed together (group commit): while one commit is
/// in flight the next batch gathers. Messages are delivered only once committed, so nobody ever
/// sees a message that a crash could take back, and a seq is never reused within an epoch.
/// Membership is not stored: a new activation asks every live front-end who its members are.
/// A room with no members is let go: at once when it holds nothing worth keeping (no history,
/// no remembered msgId), else once nobody has called it for the namespace's EmptyRoomTimeout
/// (with the memory store its epoch and history go with it, except that a room that never had a
/// message resumes its epoch on the same silo: <see cref="EpochTombstones"/>; the Redis store
/// keeps them).
/// With the namespace's Stream option on, every committed message and every announced member
/// join and leave also goes, in that same order, to the room's Orleans stream through a
/// <see cref="RoomStreamOutbox"/> (docs/streams.md); nothing waits for it.
/// Invariants: seq grows by one per accepted publish; Version grows by one per event of this
/// activation; each front-end's queue receives events in Version order; the stream outbox
/// receives committed messages in seq order, member events where they happened between them.
/// </summary>
[CollectionAgeLimit(Minutes = IdleMinutes)]
public sealed partial class RoomGrain : Grain, IRoomGrain
{
    /// <summary>
    /// A room nobody has called for this long is deactivated whatever it holds: a backstop, as
    /// rooms with members are called by their front-ends' heartbeats and empty rooms let
    /// themselves go sooner (<see cref="LetGoIfEmpty"/>).
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
    private readonly RecentlyGone _left = new();
    private readonly IRoomStore _store;
    private readonly IActivationGate _gate;
    private readonly FrontendLanes _lanes;
    private readonly List<StoredMessage> _uncommitted = [];
    private readonly List<(long Seq, TaskCompletionSource Done)> _waiting = [];
    private readonly CommitTraces _traces = new();
    private bool _committing;
    private RoomStoreException? _failure;
    private string _activation = string.Empty;
    private long _committedSeq;
    private string _namespace = string.Empty;
    private string _room = string.Empty;
    private string _epoch = string.Empty;
    private long _seq;
    private long _version;
    private RoomPolicy _policy = new(HistoryLimit: 100, Presence: true);
    private bool _policyApplied;
    private IGrainTimer? _emptyTimer;
    private bool _refused;

    /// <summary>Created at the first item, when the policy has Stream on; null while it never had.</summary>
    private RoomStreamOutbox? _streamOutbox;

    /// <summary>
    /// Connections this activation found on the front-ends when it started, not yet confirmed by
    /// a Join; null when there were none.
    /// </summary>
    private HashSet<string>? _rebuilt;

    /// <summary>OnDeactivateAsync has begun: an outbox that empties then must not start the empty-room timer.</summary>
    private bool _deactivating;

    /// <summary>Counted in broker.rooms.active (a refused or failed activation is not).</summary>
    private bool _counted;

    public RoomGrain(ILogger<RoomGrain> logger, TimeProvider time, IRoomStore store, IActivationGate gate, FrontendLanes lanes)
    {
        _logger = logger;
        _time = time;
        _store = store;
        _gate = gate;
        _lanes = lanes;
        _frontends = new FrontendQueueSet<RoomEvent>(SendAsync, OnFrontendFailed, OnDeliveryRetried, redeliver: true, onDrained: LetGoIfEmpty, timeout: lanes.RoomTimeout);
    }

    public override async Task OnActivateAsync(CancellationToken cancellationToken)
    {
        (_namespace, _room) = GrainKeys.Split(this.GetPrimaryKeyString());
        _activation = MemoryRoomStore.NewEpoch();
        if (!_gate.AdmitsNewActivations)
        {
            // Short of memory: this activation answers its calls with SiloOverloadedException
            // and goes; nothing is loaded, nobody is asked. Throwing from here instead would log
            // an error per refusal and keep the failed activation for seconds.
            _refused = true;
            return;
        }
        var snapshot = await _store.LoadAsync(this.GetPrimaryKeyString(), cancellationToken);
        _epoch = snapshot.Epoch;
        _seq = _committedSeq = snapshot.Seq;
        // Unbounded in bytes until the first call brings the namespace's policy: the log holds
        // what the previous activation's window held, under the bounds it had.
        _history.Resize(Math.Max(_policy.HistoryLimit, snapshot.Recent.Count));
        foreach (var stored in snapshot.Recent)
        {
            _history.Add(stored.Message);
            if (stored.MsgId is { } msgId)
            {
                RememberMsgId(DedupeKey(stored.Message.From, msgId), stored.Message.Seq);
            }
        }

        await FrontendMembership.RebuildAsync(
            GrainFactory,
            _logger,
            (frontend, ct) => frontend.Frontend.GetRoomMembers(_namespace, _room).WaitAsync(ct),
            (frontend, members) =>
            {
                foreach (var member in members)
                {
                    // Rebuilt members were members all along: nobody is told they joined.
                    AddMember(member.ConnectionId, member.User, frontend.FrontendId, frontend.Frontend, announce: false);
                    (_rebuilt ??= new(StringComparer.Ordinal)).Add(member.ConnectionId);
                }
            },
            cancellationToken);
        _counted = true;
        SiloMetrics.RoomActivated();
    }

    /// <summary>
    /// The store learns how far this activation got: the memory store lets a room that never
    /// numbered a message resume its epoch in its next activation, so that clients coming back
    /// with since=0 recover (a room holding nothing is let go at once, see <see cref="LetGoIfEmpty"/>).
    /// </summary>
    public override async Task OnDeactivateAsync(DeactivationReason reason, CancellationToken cancellationToken)
    {
        _deactivating = true;
        if (_streamOutbox is { IsEmpty: false } outbox)
        {
            // Deactivated with items still to produce (the silo shuts down, memory is short, a
            // commit failed): they are committed, so they go first, as long as deactivation allows.
            try
            {
                await outbox.WhenEmptyAsync().WaitAsync(cancellationToken);
            }
            catch (OperationCanceledException)
            {
                outbox.Abandon();
            }
        }

        if (_counted)
        {
            _counted = false;
            SiloMetrics.RoomDeactivated();
        }

        if (!_refused && _epoch.Length > 0)
        {
            _store.Unload(this.GetPrimaryKeyString(), _epoch, Math.Max(_seq, _committedSeq));
        }
    }

    public Task<JoinResult> Join(JoinRequest request)
    {
        ThrowIfRefused();
        ApplyPolicy(request.Policy);
        var recovered = false;
        var missed = ImmutableArray<RoomMessage>.Empty;
        if (request.Since is { } since && request.Epoch == _epoch && since <= _committedSeq)
        {
            // Recoverable when the window still holds every message after since.
            var oldest = _history.OldestSeq ?? (_committedSeq + 1);
            if (since >= oldest - 1)
            {
                missed = _history.After(since, int.MaxValue, long.MaxValue, out _);
                recovered = true;
            }
        }

        _left.Forget(request.ConnectionId);
        if (_rebuilt is not null && _rebuilt.Remove(request.ConnectionId) && _members.ContainsKey(request.ConnectionId)
            && _connectionsPerUser.GetValueOrDefault(request.User) == 1)
        {
            // A front-end registers a joining connection before it calls Join, so the join that
            // activated this room was found by the rebuild: it is the user's arrival all the same.
            AnnounceJoined(request.User);
        }

        AddMember(request.ConnectionId, request.User, request.FrontendId, request.Frontend);
        return Task.FromResult(new JoinResult(_committedSeq, _epoch, _version, recovered, missed, _activation));
    }

    public Task<bool> Leave(string connectionId)
    {
        if (_refused)
        {
            // A refused activation has no members: nothing to leave.
            this.DeactivateOnIdle();
            return Task.FromResult(false);
        }

        var removed = RemoveMember(connectionId);
        if (removed)
        {
            _left.Add(connectionId);
        }

        LetGoIfEmpty();
        return Task.FromResult(removed);
    }

    public async Task<PublishResult> Publish(PublishRequest request)
    {
        using var activity = BrokerActivity.StartRoomCommit(_namespace, _room, request.MsgId);
        try
        {
            var result = await PublishAsync(request, activity);
            BrokerActivity.Committed(activity, result.Seq, result.Duplicate);
            return result;
        }
        catch (Exception ex)
        {
            BrokerActivity.Failed(activity, ex);
            throw;
        }
    }

    private async Task<PublishResult> PublishAsync(PublishRequest request, System.Diagnostics.Activity? activity)
    {
        var started = System.Diagnostics.Stopwatch.GetTimestamp();
        ThrowIfRefused();
        ApplyPolicy(request.Policy);
        if (FindOrdered(request.User, request.MsgId, out var dedupeKey) is { } firstSeq)
        {
            // A retry: acked with the first seq once that one is committed, never delivered twice.
            await WaitCommittedAsync(firstSeq);
            return new PublishResult(firstSeq, _epoch, Duplicate: true);
        }

        if (_failure is not null)
        {
            throw _failure;
        }

        var stored = OrderNew(request.User, request.Payload, request.MsgId, dedupeKey, activity);
        var message = stored.Message;
        if (!_store.IsDurable)
        {
            Commit([stored]);
            SiloMetrics.CommitTook(durable: false, started);
            LetGoIfEmpty();
            return new PublishResult(message.Seq, _epoch, Duplicate: false);
        }

        _uncommitted.Add(stored);
        await WaitCommittedAsync(message.Seq);
        SiloMetrics.CommitTook(durable: true, started);
        LetGoIfEmpty();
        return new PublishResult(message.Seq, _epoch, Duplicate: false);
    }

    public async Task<ImmutableArray<PublishResult>> PublishBatch(PublishBatchRequest request)
    {
        var started = System.Diagnostics.Stopwatch.GetTimestamp();
        ThrowIfRefused();
        ApplyPolicy(request.Policy);
        if (_failure is not null)
        {
            throw _failure;
        }

        // One turn, no await until every message has its seq: the batch is ordered as one run,
        // in the order given, and (durable) joins the next commit as a whole.
        var messages = request.Messages;
        var results = new PublishResult[messages.Length];
        var activities = new System.Diagnostics.Activity?[messages.Length];
        List<StoredMessage>? fresh = null;
        var waitFor = 0L;
        for (var i = 0; i < messages.Length; i++)
        {
            var item = messages[i];
            activities[i] = BrokerActivity.StartBatchedCommit(_namespace, _room, item.MsgId, item.TraceParent);
            if (FindOrdered(request.User, item.MsgId, out var dedupeKey) is { } firstSeq)
            {
                // A retry (of an earlier call, or earlier in this batch): the first seq, once committed.
                results[i] = new PublishResult(firstSeq, _epoch, Duplicate: true);
                waitFor = Math.Max(waitFor, firstSeq);
                continue;
            }

            var stored = OrderNew(request.User, item.Payload, item.MsgId, dedupeKey, activities[i]);
            (fresh ??= new List<StoredMessage>(messages.Length)).Add(stored);
            results[i] = new PublishResult(stored.Message.Seq, _epoch, Duplicate: false);
            waitFor = stored.Message.Seq;
        }

        try
        {
            if (fresh is not null && !_store.IsDurable)
            {
                Commit(fresh);
            }
            else if (fresh is not null)
            {
                _uncommitted.AddRange(fresh);
            }

            await WaitCommittedAsync(waitFor);
        }
        catch (Exception ex)
        {
            foreach (var activity in activities)
            {
                BrokerActivity.Failed(activity, ex);
                activity?.Dispose();
            }

            throw;
        }

        for (var i = 0; i < results.Length; i++)
        {
            BrokerActivity.Committed(activities[i], results[i].Seq, results[i].Duplicate);
            activities[i]?.Dispose();
            if (!results[i].Duplicate)
            {
                SiloMetrics.CommitTook(_store.IsDurable, started);
            }
        }

        LetGoIfEmpty();
        return System.Runtime.InteropServices.ImmutableCollectionsMarshal.AsImmutableArray(results);
    }

    public Task<ImmutableArray<PresenceEntry>> GetPresence()
    {
        ThrowIfRefused();
        var entries = ImmutableArray.CreateBuilder<PresenceEntry>(_connectionsPerUser.Count);
        foreach (var (user, count) in _connectionsPerUser)
        {
            entries.Add(new PresenceEntry(user, count));
        }

        LetGoIfEmpty();
        return Task.FromResult(entries.MoveToImmutable());
    }

    public Task<HistoryPage> GetHistory(long? since, int limit) => GetHistory(since, limit, int.MaxValue);

    public Task<HistoryPage> GetHistory(long? since, int limit, int maxBytes)
    {
        ThrowIfRefused();
        limit = Math.Max(0, limit);
        bool more;
        var messages = since is { } after ? _history.After(after, limit, maxBytes, out more) : _history.Latest(limit, maxBytes, out more);
        LetGoIfEmpty();
        return Task.FromResult(new HistoryPage(_epoch, messages, more));
    }

    public Task SyncFrontend(FrontendRoomSync sync)
    {
        ThrowIfRefused();
        ApplyPolicy(sync.Policy);
        foreach (var member in sync.Members)
        {
            // A snapshot taken before the member left must not bring it back.
            if (!_left.Contains(member.ConnectionId))
            {
                AddMember(member.ConnectionId, member.User, sync.FrontendId, sync.Frontend);
            }
        }

        // The registry may have been rebuilt since this room watched the front-end.
        if (_frontends.Holds(sync.FrontendId))
        {
            FrontendMembership.Watch(GrainFactory, sync.FrontendId, SelfReference<IFrontendWatcher>.Of(this, GrainFactory));
        }

        LetGoIfEmpty();
        return Task.CompletedTask;
    }

    public Task FrontendLost(string frontendId)
    {
        if (_refused)
        {
            this.DeactivateOnIdle();
            return Task.CompletedTask;
        }

        DropFrontend(frontendId);
        LetGoIfEmpty();
        return Task.CompletedTask;
    }

    /// <summary>
    /// Unambiguous for any user and msgId: the user's length comes first, so no separator inside
    /// a name ("a\nb" + "c" against "a" + "b\nc") can make two publishers' keys equal.
    /// </summary>
    /// <summary>The seq a publish with this msgId from this user already got, if any; the key it is remembered by otherwise (null without a msgId).</summary>
    private long? FindOrdered(string user, string? msgId, out string? dedupeKey)
    {
        dedupeKey = msgId is null ? null : DedupeKey(user, msgId);
        return dedupeKey is not null && _seqByMsgId.TryGetValue(dedupeKey, out var firstSeq) ? firstSeq : null;
    }

    /// <summary>Gives a new message the next seq (in the current turn), remembers its msgId and its trace.</summary>
    private StoredMessage OrderNew(string user, byte[] payload, string? msgId, string? dedupeKey, System.Diagnostics.Activity? activity)
    {
        var message = new RoomMessage(++_seq, user, _time.GetUtcNow().ToUnixTimeMilliseconds(), payload);
        if (dedupeKey is not null)
        {
            RememberMsgId(dedupeKey, message.Seq);
        }

        _traces.Add(message.Seq, activity);
        return new StoredMessage(message, msgId);
    }

    private static string DedupeKey(string user, string msgId) =>
        string.Concat(user.Length.ToString(System.Globalization.CultureInfo.InvariantCulture), ":", user, "\n", msgId);

    /// <summary>A refused activation (the silo was short of memory) answers unavailable and goes; the next call tries again.</summary>
    private void ThrowIfRefused()
    {
        if (_refused)
        {
            this.DeactivateOnIdle();
            throw new SiloOverloadedException();
        }
    }

    private Task WaitCommittedAsync(long seq)
    {
        if (seq <= _committedSeq)
        {
            return Task.CompletedTask;
        }

        if (_failure is not null)
        {
            return Task.FromException(_failure);
        }

        var done = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        _waiting.Add((seq, done));
        if (!_committing)
        {
            _committing = true;
            _ = CommitLoopAsync();
        }

        return done.Task;
    }

    /// <summary>Commits what gathered, batch after batch, one store round trip each (group commit).</summary>
    private async Task CommitLoopAsync()
    {
        // Let the current turn and the publishes already queued add to the first batch.
        await Task.Yield();
        try
        {
            while (_uncommitted.Count > 0)
            {
                var batch = _uncommitted.ToArray();
                _uncommitted.Clear();
                try
                {
                    var keep = _history.CountAfterAdding(batch.Select(m => m.Message).ToList());
                    await _store.AppendAsync(this.GetPrimaryKeyString(), _epoch, batch, keep);
                }
                catch (Exception ex)
                {
                    Fail(ex);
                    return;
                }

                Commit(batch);
            }
        }
        finally
        {
            _committing = false;
            LetGoIfEmpty();
        }
    }

    /// <summary>Committed: into the history window, out to the members, and the publishers get their acks.</summary>
    private void Commit(IReadOnlyList<StoredMessage> batch)
    {
        SiloMetrics.Committed(_namespace, batch.Count);
        foreach (var stored in batch)
        {
            _history.Add(stored.Message);
            _committedSeq = stored.Message.Seq;
            _frontends.Broadcast(new RoomEvent(++_version, RoomEventKind.Message, stored.Message.From, stored.Message, TraceParent: _traces.Take(stored.Message.Seq)));
            if (_policy.Stream)
            {
                var message = stored.Message;
                StreamOutbox().Enqueue(new RoomStreamItem(RoomStreamItemKind.Message, _namespace, _room, _epoch, message.Seq, message.From, message.Timestamp, message.Payload, stored.MsgId));
            }
        }

        if (_waiting.Count > 0)
        {
            var done = _waiting.Where(w => w.Seq <= _committedSeq).ToList();
            _waiting.RemoveAll(w => w.Seq <= _committedSeq);
            foreach (var (_, tcs) in done)
            {
                tcs.TrySetResult();
            }
        }
    }

    /// <summary>
    /// A commit failed: nothing uncommitted was acked or delivered. The activation refuses
    /// further publishes and goes away; the next one reloads the committed state, so the seqs
    /// handed out here are never seen by anybody.
    /// </summary>
    private void Fail(Exception exception)
    {
        _failure = exception as RoomStoreException ?? new RoomStoreException($"The room's store failed: {exception.GetType().Name}: {exception.Message}");
        LogCommitFailed(_logger, _namespace, _room, exception);
        foreach (var (_, tcs) in _waiting)
        {
            tcs.TrySetException(_failure);
        }

        _waiting.Clear();
        _uncommitted.Clear();
        _traces.Clear();
        this.DeactivateOnIdle();
    }

    /// <summary>
    /// A front-end's policy replaces the room's; null (server-side code's publish, BrokerServerApi)
    /// keeps it. While no front-end has called this activation, server publishes run under the
    /// defaults' byte bound too (the window is unbounded in bytes until then, see
    /// OnActivateAsync): never below what the window already holds, so nothing loaded is dropped.
    /// </summary>
    private void ApplyPolicy(RoomPolicy? policy)
    {
        if (policy is null)
        {
            if (!_policyApplied)
            {
                _history.Resize(Math.Max(_policy.HistoryLimit, _history.Count), Math.Max(_policy.EffectiveHistoryBytes, _history.Bytes));
            }

            return;
        }

        if (!_policyApplied || policy != _policy)
        {
            _policy = policy;
            _policyApplied = true;
            _history.Resize(policy.HistoryLimit, policy.EffectiveHistoryBytes);
        }
    }

    private void AddMember(string connectionId, string user, string frontendId, IFrontendObserver observer, bool announce = true)
    {
        if (_members.ContainsKey(connectionId))
        {
            return;
        }

        if (_frontends.AddMember(frontendId, observer))
        {
            // The front-end learns where this activation's stream starts: if it had seen less
            // (messages committed by a lost activation never reached it), it fills the gap.
            _frontends.Enqueue(frontendId, new RoomEvent(++_version, RoomEventKind.Position, string.Empty, null, _committedSeq));
            FrontendMembership.Watch(GrainFactory, frontendId, SelfReference<IFrontendWatcher>.Of(this, GrainFactory));
        }

        _members[connectionId] = new Member(user, frontendId);
        _connectionsPerUser.TryGetValue(user, out var count);
        _connectionsPerUser[user] = count + 1;
        if (count == 0 && announce)
        {
            AnnounceJoined(user);
        }
    }

    private void AnnounceJoined(string user)
    {
        if (_policy.Presence)
        {
            _frontends.Broadcast(new RoomEvent(++_version, RoomEventKind.MemberJoined, user, null));
        }

        if (_policy.Stream)
        {
            StreamMemberEvent(RoomStreamItemKind.MemberJoined, user);
        }
    }

    private bool RemoveMember(string connectionId)
    {
        if (!_members.Remove(connectionId, out var member))
        {
            return false;
        }

        _rebuilt?.Remove(connectionId);

        var remaining = _connectionsPerUser[member.User] - 1;
        if (remaining == 0)
        {
            _connectionsPerUser.Remove(member.User);
        }
        else
        {
            _connectionsPerUser[member.User] = remaining;
        }

        if (_frontends.RemoveMember(member.FrontendId))
        {
            // Nobody left there: the registry need not keep this room for that front-end, nor
            // wake it up (to no purpose) when the front-end is lost.
            FrontendMembership.Unwatch(GrainFactory, member.FrontendId, SelfReference<IFrontendWatcher>.Of(this, GrainFactory));
        }

        if (remaining == 0)
        {
            if (_policy.Presence)
            {
                _frontends.Broadcast(new RoomEvent(++_version, RoomEventKind.MemberLeft, member.User, null));
            }

            if (_policy.Stream)
            {
                StreamMemberEvent(RoomStreamItemKind.MemberLeft, member.User);
            }
        }

        return true;
    }

    /// <summary>
    /// A member event for the stream, whether or not Presence is on: Presence is what clients
    /// may see of each other, the stream is the application's own view of its rooms. Seq is the
    /// latest committed message's: the event came after it and before the next.
    /// </summary>
    private void StreamMemberEvent(RoomStreamItemKind kind, string user) =>
        StreamOutbox().Enqueue(new RoomStreamItem(kind, _namespace, _room, _epoch, _committedSeq, user, _time.GetUtcNow().ToUnixTimeMilliseconds()));

    private RoomStreamOutbox StreamOutbox() =>
        _streamOutbox ??= new RoomStreamOutbox(
            () => this.GetStreamProvider(BrokerStreams.ProviderName).GetStream<RoomStreamItem>(BrokerStreams.RoomStream(_namespace, _room)),
            _logger,
            _namespace,
            _room,
            () =>
            {
                if (!_deactivating)
                {
                    LetGoIfEmpty();
                }
            });

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

    private Task SendAsync(string frontendId, IFrontendObserver observer, ImmutableArray<RoomEvent> events)
    {
        BrokerActivity.DetachDelivery();
        SiloMetrics.FanoutCall();
        return _lanes.Send(frontendId, observer, new RoomDelivery(_namespace, _room, _epoch, events, _activation));
    }

    private void OnFrontendFailed(string frontendId, Exception exception)
    {
        LogFrontendFailed(_logger, frontendId, _namespace, _room, exception);
        DropFrontend(frontendId);

        // The front-end may well be alive (only slow): its heartbeat brings the members back and watches again.
        FrontendMembership.Unwatch(GrainFactory, frontendId, SelfReference<IFrontendWatcher>.Of(this, GrainFactory));
        LetGoIfEmpty();
    }

    /// <summary>
    /// Lets an empty room go, so that rooms nobody is in do not pile up for the collection age
    /// (a client can name any number of rooms). Called after every call, and when the last
    /// delivery to a front-end is done. Nothing worth keeping (no history, no msgId to dedupe):
    /// deactivated at once. Else after EmptyRoomTimeout without a call, so that a member who
    /// comes back soon still recovers (with the memory store the history goes with the
    /// activation; the Redis store keeps it). A room with members, or with a commit or a
    /// delivery in flight, stays.
    /// </summary>
    /// <summary>No member, no front-end to deliver to, nothing being committed or waiting for a commit, nothing left to produce to the stream.</summary>
    private bool IsIdleAndEmpty =>
        _members.Count == 0 && _frontends.Count == 0 && !_committing && _uncommitted.Count == 0 && _waiting.Count == 0
        && (_streamOutbox is null || _streamOutbox.IsEmpty);

    private void LetGoIfEmpty()
    {
        if (!IsIdleAndEmpty)
        {
            return;
        }

        var holdsNothing = (_history.Count == 0 || _policy.HistoryLimit == 0) && _seqByMsgId.Count == 0;
        var timeout = _policy.EffectiveEmptyRoomTimeout;
        if (holdsNothing || timeout == TimeSpan.Zero)
        {
            this.DeactivateOnIdle();
            return;
        }

        // One timer per activation, pushed back by every call while the room is empty; its ticks
        // do not keep the room alive (KeepAlive is off).
        if (_emptyTimer is null)
        {
            _emptyTimer = this.RegisterGrainTimer(OnEmptyTimeout, new GrainTimerCreationOptions(timeout, Timeout.InfiniteTimeSpan));
        }
        else
        {
            _emptyTimer.Change(timeout, Timeout.InfiniteTimeSpan);
        }
    }

    private Task OnEmptyTimeout(CancellationToken cancellationToken)
    {
        if (IsIdleAndEmpty)
        {
            LogEmptyRoomReleased(_logger, _namespace, _room, _history.Count);
            this.DeactivateOnIdle();
        }

        return Task.CompletedTask;
    }

    private void OnDeliveryRetried(string frontendId, Exception exception) =>
        LogDeliveryRetried(_logger, frontendId, _namespace, _room, exception.GetType().Name);

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

    [LoggerMessage(EventId = 2000, Level = LogLevel.Debug, Message = "Room {Namespace}/{Room} has had no members nor calls for its empty-room timeout; let go with {Messages} messages of history")]
    private static partial void LogEmptyRoomReleased(ILogger logger, string @namespace, string room, int messages);

    [LoggerMessage(EventId = 2001, Level = LogLevel.Warning, Message = "Room {Namespace}/{Room} could not commit; its pending publishes failed and it reloads on the next call")]
    private static partial void LogCommitFailed(ILogger logger, string @namespace, string room, Exception exception);

    [LoggerMessage(EventId = 2002, Level = LogLevel.Debug, Message = "Delivery of room {Namespace}/{Room} to front-end {FrontendId} failed ({Error}); resending")]
    private static partial void LogDeliveryRetried(ILogger logger, string frontendId, string @namespace, string room, string error);

    [LoggerMessage(EventId = 2003, Level = LogLevel.Warning, Message = "Front-end {FrontendId} fell too far behind room {Namespace}/{Room}; its members were dropped")]
    private static partial void LogFrontendFailed(ILogger logger, string frontendId, string @namespace, string room, Exception exception);

    private readonly record struct Member(string User, string FrontendId);
}
