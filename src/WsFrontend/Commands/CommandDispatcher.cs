using System.Collections.Immutable;
using Broker.Frontend.Connections;
using Broker.Frontend.Diagnostics;
using Broker.Frontend.Options;
using Broker.Frontend.Protocol;
using Broker.Grains;
using Broker.Grains.Models;
using Microsoft.Extensions.Options;

namespace Broker.Frontend.Commands;

/// <summary>
/// The commands of a namespace — join, leave, publish, send, presence, history — for client
/// connections and the server API alike: every rule about who may do what (the namespace's
/// options, membership, authorization) is decided here, once, and every command becomes its
/// grain call here. The connection's lifecycle and its frames are <see cref="ConnectionHandler"/>'s;
/// the HTTP shapes are <see cref="Hosting.ServerApi"/>'s.
/// </summary>
public sealed partial class CommandDispatcher
{
    private readonly FrontendNode _node;
    private readonly IGrainFactory _grains;
    private readonly BrokerOptions _options;
    private readonly RoomAuthorizer _authorizer;
    private readonly TimeProvider _time;
    private readonly ClientEventLog _events;
    private readonly ILogger<CommandDispatcher> _logger;

    public CommandDispatcher(FrontendNode node, IGrainFactory grains, IOptions<BrokerOptions> options, RoomAuthorizer authorizer, TimeProvider time, ClientEventLog events, ILogger<CommandDispatcher> logger)
    {
        _node = node;
        _grains = grains;
        _options = options.Value;
        _authorizer = authorizer;
        _time = time;
        _events = events;
        _logger = logger;
    }

    /// <summary>
    /// Joins a connection to a room: the membership is registered before the room is asked, so
    /// nothing the room sends meanwhile is lost; the caller writes the catch-up. Joining a room
    /// already joined answers with its current position (<c>Again</c>), nothing missed.
    /// </summary>
    public async Task<Outcome<JoinOutcome>> JoinAsync(Caller caller, string room, long? since, string? epoch)
    {
        var connection = caller.Connection ?? throw new InvalidOperationException("Only a connection joins rooms.");
        var key = GrainKeys.Of(caller.Namespace, room);
        var grain = _grains.Ref<IRoomGrain>(key);
        if (connection.Rooms.TryGetValue(room, out var existing))
        {
            var again = await CallAsync(caller, () => grain.Join(JoinRequestFor(connection, room, null, null)));
            return again.Refused is { } failedAgain ? failedAgain : new JoinOutcome(again.Value, existing, Again: true);
        }

        if (connection.Rooms.Count >= _options.MaxRoomsPerConnection)
        {
            return new CommandError(ErrorCodes.TooLarge, $"This connection is already in {connection.Rooms.Count} rooms, the limit; leave one before joining another.");
        }

        if (await _authorizer.AuthorizeAsync(caller, room, RoomAction.Join) is { } refused)
        {
            return refused;
        }

        // A leave of this room still owed from before must not undo this join.
        _node.Settle(new OwedLeave(IsRoom: true, key, connection.Id));
        var membership = new RoomMembership(connection, room);
        connection.Rooms[room] = membership;
        _node.Rooms.Add(key, membership);
        var joined = await CallAsync(caller, () => grain.Join(JoinRequestFor(connection, room, since, epoch)));
        if (joined.Refused is { } failed)
        {
            connection.Rooms.Remove(room);
            _node.Rooms.Remove(key, membership);

            // The room may have taken the join after all; take it back, without waiting.
            _ = LeaveOrOweAsync(new OwedLeave(IsRoom: true, key, connection.Id));
            return failed;
        }

        var result = joined.Value;
        membership.Prime(result.Activation, result.Epoch, result.Version, result.Seq);
        return new JoinOutcome(result, membership, Again: false);
    }

    public async Task<Outcome<bool>> LeaveAsync(Caller caller, string room)
    {
        var connection = caller.Connection ?? throw new InvalidOperationException("Only a connection leaves rooms.");
        // A leave forgets the proxy's answers about the room, joined or not: a client refused a
        // join can leave and ask again, and so see a permission granted since.
        RoomAuthorizer.Forget(connection, room);
        if (!connection.Rooms.Remove(room, out var membership))
        {
            return new CommandError(ErrorCodes.NotFound, $"This connection is not in room \"{room}\"; there is nothing to leave.");
        }

        var key = GrainKeys.Of(caller.Namespace, room);
        _node.Rooms.Remove(key, membership);
        var left = await CallAsync(caller, () => _grains.Ref<IRoomGrain>(key).Leave(connection.Id));
        if (left.Refused is not null)
        {
            // The connection is out of the room here already; the room will hear it from the heartbeat.
            _node.Owe(new OwedLeave(IsRoom: true, key, connection.Id));
        }

        return left;
    }

    public async Task<Outcome<PublishResult>> PublishAsync(Caller caller, string room, byte[] data, string? msgId)
    {
        using var activity = FrontendActivity.StartPublish(caller, room, msgId);
        return FrontendActivity.Published(activity, await PublishToRoomAsync(caller, room, data, msgId));
    }

    private async Task<Outcome<PublishResult>> PublishToRoomAsync(Caller caller, string room, byte[] data, string? msgId)
    {
        if (await CheckPublishAsync(caller, room) is { } refused)
        {
            return refused;
        }

        return await PublishCheckedAsync(caller, room, data, msgId);
    }

    /// <summary>One publish the caller may make (checked with <see cref="CheckPublishAsync"/>), as one <c>Publish</c> call.</summary>
    public Task<Outcome<PublishResult>> PublishCheckedAsync(Caller caller, string room, byte[] data, string? msgId)
    {
        var grain = _grains.Ref<IRoomGrain>(GrainKeys.Of(caller.Namespace, room));
        return CallAsync(caller, () => grain.Publish(new PublishRequest(caller.User, data, msgId, caller.Policy)));
    }

    /// <summary>
    /// Whether the caller may publish to the room (namespace switch, grant, membership where it
    /// is required): null when it may. A connection's publish is checked when its frame is
    /// taken, in frame order, before it joins the connection's publishes in flight
    /// (<see cref="PublishPipeline"/>); the server API's, just before its call.
    /// </summary>
    public async ValueTask<CommandError?> CheckPublishAsync(Caller caller, string room)
    {
        if (caller.IsServer)
        {
            return null;
        }

        if (!caller.Options.ClientPublish)
        {
            return new CommandError(ErrorCodes.Forbidden, $"Clients may not publish in namespace \"{caller.Namespace}\"; only the server's HTTP API may.");
        }

        if (await _authorizer.AuthorizeAsync(caller, room, RoomAction.Publish) is { } refused)
        {
            return refused;
        }

        if (caller.Options.RequireMembership && !caller.IsMemberOf(room))
        {
            return new CommandError(ErrorCodes.NotMember, $"Join room \"{room}\" before publishing to it.");
        }

        return null;
    }

    /// <summary>
    /// Orders several publishes the caller may make (checked with <see cref="CheckPublishAsync"/>)
    /// to one room, in the order given, in one <c>PublishBatch</c> call (a single publish goes as
    /// <see cref="PublishCheckedAsync"/>). One result per message, in order; refused as a whole
    /// when the call fails. The caller keeps at most one such call per room in flight: Orleans
    /// does not keep two calls in flight in order.
    /// </summary>
    public Task<Outcome<ImmutableArray<PublishResult>>> PublishBatchAsync(Caller caller, string room, ImmutableArray<BatchedPublish> messages)
    {
        var grain = _grains.Ref<IRoomGrain>(GrainKeys.Of(caller.Namespace, room));
        return CallAsync(caller, async () =>
        {
            var results = await grain.PublishBatch(new PublishBatchRequest(caller.User, messages, caller.Policy));
            return results.Length == messages.Length
                ? results
                : throw new InvalidOperationException($"The room answered {results.Length} results for {messages.Length} messages.");
        });
    }

    public async Task<Outcome<int>> SendAsync(Caller caller, string to, byte[] data)
    {
        if (!caller.IsServer && !caller.Options.ClientPublish)
        {
            return new CommandError(ErrorCodes.Forbidden, $"Clients may not send messages in namespace \"{caller.Namespace}\"; only the server's HTTP API may.");
        }

        var grain = _grains.Ref<IUserGrain>(GrainKeys.Of(caller.Namespace, to));
        var message = new DirectMessage(caller.User, _time.GetUtcNow().ToUnixTimeMilliseconds(), data);
        return await CallAsync(caller, () => grain.Send(message));
    }

    public async Task<Outcome<ImmutableArray<PresenceEntry>>> PresenceAsync(Caller caller, string room)
    {
        if (!caller.Options.Presence)
        {
            return new CommandError(ErrorCodes.Forbidden, $"Presence is turned off in namespace \"{caller.Namespace}\".");
        }

        if (!caller.IsServer)
        {
            if (caller.Options.PresenceRequiresMembership && !caller.IsMemberOf(room))
            {
                return new CommandError(ErrorCodes.NotMember, $"Join room \"{room}\" before asking for its presence; namespace \"{caller.Namespace}\" shows presence to members only.");
            }

            // Membership first: where it is required, a non-member is refused without asking
            // anyone (no proxy call that could not change the answer).
            if (await _authorizer.AuthorizeAsync(caller, room, RoomAction.Presence) is { } refused)
            {
                return refused;
            }
        }

        var grain = _grains.Ref<IRoomGrain>(GrainKeys.Of(caller.Namespace, room));
        return await CallAsync(caller, () => grain.GetPresence());
    }

    /// <summary>
    /// A page of a room's history: at most <paramref name="limit"/> (capped by the namespace's
    /// window and by <see cref="BrokerOptions.MaxHistoryLimit"/>) messages, cut by the room to
    /// about MaxReplyBytes; the reply's writer cuts to exactly that and either sets "more".
    /// Checked before any grain call, so a client cannot activate rooms by naming them.
    /// </summary>
    public async Task<Outcome<HistoryPage>> HistoryAsync(Caller caller, string room, long? since, int? limit)
    {
        if (!caller.IsServer)
        {
            if (caller.Options.HistoryRequiresMembership && !caller.IsMemberOf(room))
            {
                return new CommandError(ErrorCodes.NotMember, $"Join room \"{room}\" before asking for its history; namespace \"{caller.Namespace}\" shows history to members only.");
            }

            // Membership first: where it is required, a non-member is refused without asking
            // anyone (no proxy call that could not change the answer).
            if (await _authorizer.AuthorizeAsync(caller, room, RoomAction.History) is { } refused)
            {
                return refused;
            }
        }

        var window = Math.Min(caller.Options.History, BrokerOptions.MaxHistoryLimit);
        var take = Math.Min(limit ?? window, window);
        var grain = _grains.Ref<IRoomGrain>(GrainKeys.Of(caller.Namespace, room));
        return await CallAsync(caller, () => grain.GetHistory(since, take, _options.MaxReplyBytes));
    }

    /// <summary>
    /// Takes a new token for a connection (the <c>refresh</c> frame): the authorizer decides
    /// whether it may (same user, valid, the connection came in with a token) and gives the
    /// connection the new token's grants; here the expiry timer is replaced and the rooms the new
    /// grants no longer let it join are left. Refused: nothing about the connection changes.
    /// </summary>
    public async Task<Outcome<RefreshOutcome>> RefreshAsync(Caller caller, string token)
    {
        var connection = caller.Connection ?? throw new InvalidOperationException("Only a connection refreshes a token.");
        var taken = await _authorizer.RefreshAsync(caller, token);
        if (taken.Refused is { } refused)
        {
            return refused;
        }

        connection.ExpireAt(taken.Value.Expires, _time);
        var revoked = RoomAuthorizer.RoomsNoLongerGranted(caller);
        foreach (var room in revoked)
        {
            // Out of the room here whatever the cluster says (a refused leave is owed and retried).
            await LeaveAsync(caller, room);
        }

        return new RefreshOutcome(taken.Value.Expires, revoked);
    }

    /// <summary>Tells a room or user grain a connection left; when the cluster cannot answer, the heartbeat retries.</summary>
    public async Task LeaveOrOweAsync(OwedLeave leave)
    {
        try
        {
            await leave.SendAsync(_grains).WaitAsync(_options.ClusterCallTimeout);
        }
        catch (Exception ex)
        {
            FrontendMetrics.ClusterCallFailed(ex);
            LogLeaveOwed(_logger, leave.ConnectionId, leave.Key, ex);
            _node.Owe(leave);
        }
    }

    private JoinRequest JoinRequestFor(ClientConnection connection, string room, long? since, string? epoch) =>
        new(connection.Id, connection.User, _node.Id, _node.Reference, connection.Policy, since, epoch);

    /// <summary>
    /// Runs one cluster call. A timeout or an unreachable cluster becomes "unavailable",
    /// anything else "internal" (logged); the connection lives on.
    /// </summary>
    private async Task<Outcome<T>> CallAsync<T>(Caller caller, Func<Task<T>> call)
    {
        try
        {
            return new Outcome<T>(await call().WaitAsync(_options.ClusterCallTimeout), null);
        }
        catch (Exception ex) when (ClusterErrors.IsClusterUnavailable(ex))
        {
            FrontendMetrics.ClusterCallFailed(ex);

            // Per frame, and a client can ask for new rooms while the silo refuses activations:
            // counted, and detailed at Debug without a stack trace.
            if (!caller.IsServer)
            {
                _events.Count(ClientEvent.Unavailable);
            }

            LogUnavailable(_logger, caller.Id, ex.GetType().Name, ex.Message);
            return new CommandError(ErrorCodes.Unavailable, "The cluster could not answer in time; try again.");
        }
        catch (Exception ex)
        {
            FrontendMetrics.ClusterCallFailed(ex);
            LogFailed(_logger, caller.Id, ex);
            return new CommandError(ErrorCodes.Internal, "The server failed to handle this request; it has been logged.");
        }
    }

    // ---- Server API only (v1.1 "Server HTTP API") ----

    /// <summary>
    /// Closes every connection of <paramref name="user"/> in the caller's namespace, on every
    /// front-end, with 1008 and <paramref name="reason"/> (at most 123 bytes of UTF-8, the room a
    /// close frame has); the count is of the connections closed. Through the user's grain, which
    /// asks every live front-end: a connection that opens while this runs may stay open.
    /// </summary>
    public Task<Outcome<int>> DisconnectUserAsync(Caller caller, string user, string reason)
    {
        if (!caller.IsServer)
        {
            throw new InvalidOperationException("Only the server API disconnects users.");
        }

        var grain = _grains.Ref<IUserGrain>(GrainKeys.Of(caller.Namespace, user));
        return CallAsync(caller, () => grain.CloseConnections(reason));
    }

    [LoggerMessage(EventId = 1200, Level = LogLevel.Warning, Message = "Could not tell {Key} that connection {ConnectionId} left; retrying with the heartbeat")]
    private static partial void LogLeaveOwed(ILogger logger, string connectionId, string key, Exception exception);

    [LoggerMessage(EventId = 1201, Level = LogLevel.Debug, Message = "A command of {Caller} was answered unavailable: {ExceptionType}: {Reason}")]
    private static partial void LogUnavailable(ILogger logger, string caller, string exceptionType, string reason);

    [LoggerMessage(EventId = 1202, Level = LogLevel.Error, Message = "A command of {Caller} failed")]
    private static partial void LogFailed(ILogger logger, string caller, Exception exception);
}

/// <summary>A join taken: the room's answer and the connection's membership (<c>Again</c>: it was a member already).</summary>
public readonly record struct JoinOutcome(JoinResult Result, RoomMembership Membership, bool Again);

/// <summary>A refresh taken: the new token's expiry (null: none) and the rooms the connection was made to leave.</summary>
public readonly record struct RefreshOutcome(DateTimeOffset? Expires, IReadOnlyList<string> RoomsLeft);
