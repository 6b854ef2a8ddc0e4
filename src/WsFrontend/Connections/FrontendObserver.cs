using System.Collections.Immutable;
using Broker.Frontend.Diagnostics;
using Broker.Frontend.Options;
using Broker.Frontend.Protocol;
using Broker.Grains;
using Broker.Grains.Models;

namespace Broker.Frontend.Connections;

/// <summary>
/// This process's single delivery observer. Each room event is encoded once and the same bytes
/// are queued to every local member; nothing here waits on a socket. Before a message that
/// follows a gap (messages committed by a room activation that was lost before it delivered
/// them), the missing ones are fetched from the room's history and shown first, so a connected
/// client sees every committed message once and in order.
/// </summary>
public sealed partial class FrontendObserver : IFrontendObserver
{
    /// <summary>Members per parallel chunk of a fan-out: rooms below twice this are delivered on one thread.</summary>
    private const int ParallelChunkMembers = 200;

    /// <summary>Bytes of history one gap-fill call brings back (as the room counts them), the size of a client's history reply.</summary>
    internal const int GapFillPageBytes = BrokerOptions.DefaultMaxReplyBytes;

    private readonly LocalIndex<RoomMembership> _rooms;
    private readonly LocalIndex<ClientConnection> _users;
    private readonly IGrainFactory _grains;
    private readonly ILogger _logger;

    public FrontendObserver(LocalIndex<RoomMembership> rooms, LocalIndex<ClientConnection> users, IGrainFactory grains, ILogger logger)
    {
        _rooms = rooms;
        _users = users;
        _grains = grains;
        _logger = logger;
    }

    public async Task DeliverRoom(RoomDelivery delivery)
    {
        var members = _rooms.Get(GrainKeys.Of(delivery.Namespace, delivery.Room));
        if (members.Length == 0)
        {
            return;
        }

        using var activity = FrontendActivity.StartDeliver(delivery, members.Length);
        foreach (var roomEvent in delivery.Events)
        {
            switch (roomEvent.Kind)
            {
                case RoomEventKind.Message when roomEvent.Message is { } message:
                    await FillGapAsync(delivery, members, message.Seq - 1);
                    var frame = FrameWriter.Message(delivery.Room, delivery.Epoch, message);
                    await OfferAllAsync(members, new Offered(delivery.Activation, delivery.Epoch, roomEvent.Version, message.Seq, frame, null));
                    FrontendMetrics.DeliveredRoomMessage(delivery.Namespace, members.Length, message.Timestamp);
                    break;
                case RoomEventKind.Position:
                    await FillGapAsync(delivery, members, roomEvent.Seq);
                    break;
                case RoomEventKind.MemberJoined or RoomEventKind.MemberLeft:
                    // Member events tell the others: a user is not told about its own arrival or departure.
                    var memberFrame = FrameWriter.MemberEvent(roomEvent.Kind == RoomEventKind.MemberJoined, delivery.Room, roomEvent.User);
                    await OfferAllAsync(members, new Offered(delivery.Activation, delivery.Epoch, roomEvent.Version, 0, memberFrame, roomEvent.User));
                    FrontendMetrics.FramesSent(roomEvent.Kind == RoomEventKind.MemberJoined ? SentFrame.MemberJoined : SentFrame.MemberLeft, members.Length);
                    break;
                default:
                    break;
            }
        }
    }

    /// <summary>Several rooms' deliveries from one silo, one after the other: each room's events stay in its order.</summary>
    public async Task DeliverRooms(ImmutableArray<RoomDelivery> deliveries)
    {
        foreach (var delivery in deliveries)
        {
            await DeliverRoom(delivery);
        }
    }

    public Task<ImmutableArray<RoomMemberRef>> GetRoomMembers(string ns, string room) =>
        Task.FromResult(_rooms.Get(GrainKeys.Of(ns, room)).Select(m => new RoomMemberRef(m.Connection.Id, m.Connection.User)).ToImmutableArray());

    public Task<ImmutableArray<string>> GetUserConnections(string ns, string user)
    {
        var connections = _users.Get(GrainKeys.Of(ns, user));
        foreach (var connection in connections)
        {
            // The grain knows it from here on: it is told when the connection goes.
            connection.UserGrainKnows = true;
        }

        return Task.FromResult(connections.Select(c => c.Id).ToImmutableArray());
    }

    /// <summary>
    /// Starts closing every local connection of the user that is not closing already (1008,
    /// frames still queued for it dropped) and returns at once with their number: each
    /// connection's handler then leaves its rooms and its user grain as on any close, and that
    /// grain may be the caller waiting for this answer.
    /// </summary>
    public Task<int> CloseUserConnections(string ns, string user, string reason)
    {
        var closed = 0;
        foreach (var connection in _users.Get(GrainKeys.Of(ns, user)))
        {
            if (!connection.IsClosing)
            {
                connection.Close(CloseCodes.PolicyViolation, reason, dropPending: true);
                closed++;
            }
        }

        if (closed > 0)
        {
            LogUserDisconnected(_logger, ns, user, closed);
        }

        return Task.FromResult(closed);
    }

    public Task DeliverDirect(DirectDelivery delivery)
    {
        var connections = _users.Get(GrainKeys.Of(delivery.Namespace, delivery.User));
        foreach (var message in delivery.Messages)
        {
            var frame = FrameWriter.Direct(message);
            foreach (var connection in connections)
            {
                connection.Send(frame);
            }
        }

        FrontendMetrics.DeliveredDirect(delivery.Namespace, delivery.Messages.Length, connections.Length);
        return Task.CompletedTask;
    }

    /// <summary>
    /// Makes sure every member has been shown each message up to <paramref name="upTo"/>: the
    /// ones somebody missed come from the room's history. A member whose gap the history window
    /// no longer covers is closed (1013) so that it reconnects and learns recovered:false.
    /// </summary>
    private async Task FillGapAsync(RoomDelivery delivery, RoomMembership[] members, long upTo)
    {
        var from = long.MaxValue;
        foreach (var member in members)
        {
            if (member.LastSeqIn(delivery.Epoch) is { } last && last < upTo)
            {
                from = Math.Min(from, last);
            }
        }

        if (from == long.MaxValue)
        {
            return;
        }

        var room = _grains.Ref<IRoomGrain>(GrainKeys.Of(delivery.Namespace, delivery.Room));

        // Page by page, each bounded in bytes like a client's history reply, so that a large
        // gap never travels (nor sits here) as one message.
        for (var next = from; next < upTo;)
        {
            HistoryPage page;
            try
            {
                page = await room.GetHistory(next, (int)Math.Min(upTo - next, int.MaxValue), GapFillPageBytes);
            }
            catch (Exception ex)
            {
                LogGapFillFailed(_logger, delivery.Namespace, delivery.Room, next, upTo, ex);
                break;
            }

            if (page.Epoch != delivery.Epoch || page.Messages.IsEmpty)
            {
                break;
            }

            foreach (var message in page.Messages.Where(m => m.Seq <= upTo))
            {
                var frame = FrameWriter.Message(delivery.Room, delivery.Epoch, message);
                foreach (var member in members)
                {
                    member.Fill(delivery.Epoch, message.Seq, frame);
                }

                FrontendMetrics.FramesSent(SentFrame.Message, members.Length);
            }

            var last = page.Messages[^1].Seq;
            if (!page.More || last <= next)
            {
                break;
            }

            next = last;
        }

        foreach (var member in members)
        {
            if (member.LastSeqIn(delivery.Epoch) is { } last && last < upTo)
            {
                LogGapNotCovered(_logger, member.Connection.Id, delivery.Namespace, delivery.Room, last, upTo);
                member.Connection.Close(CloseCodes.TryAgainLater, "Missed messages are no longer in the history window; reconnect and join with since+epoch.", dropPending: false);
            }
        }
    }

    /// <summary>
    /// Offers one event to every local member. Each member's frame is queued and, when its socket
    /// is idle, written at once on this thread, so a big room is split over the cores: chunks of
    /// members run in parallel and all finish before the next event (a member's order holds:
    /// each member is in exactly one chunk, and the room sends this front-end one call at a time).
    /// </summary>
    private static Task OfferAllAsync(RoomMembership[] members, Offered offered)
    {
        var chunks = Math.Min(Environment.ProcessorCount, members.Length / ParallelChunkMembers);
        if (chunks <= 1)
        {
            OfferRange(members, 0, members.Length, offered);
            return Task.CompletedTask;
        }

        var size = (members.Length + chunks - 1) / chunks;
        var others = new Task[chunks - 1];
        for (var c = 1; c < chunks; c++)
        {
            var from = c * size;
            var to = Math.Min(members.Length, from + size);
            others[c - 1] = Task.Run(() => OfferRange(members, from, to, offered));
        }

        OfferRange(members, 0, Math.Min(size, members.Length), offered);
        return Task.WhenAll(others);
    }

    private static void OfferRange(RoomMembership[] members, int from, int to, Offered offered)
    {
        for (var i = from; i < to; i++)
        {
            var member = members[i];
            if (offered.ExceptUser is null || member.Connection.User != offered.ExceptUser)
            {
                member.Offer(offered.Activation, offered.Epoch, offered.Version, offered.Seq, offered.Frame);
            }
        }
    }

    /// <summary>An event as offered to each member; member events skip the user they are about.</summary>
    private sealed record Offered(string Activation, string Epoch, long Version, long Seq, byte[] Frame, string? ExceptUser);

    [LoggerMessage(EventId = 1110, Level = LogLevel.Information, Message = "Closed {Count} connections of {Namespace}/{User} for the server API")]
    private static partial void LogUserDisconnected(ILogger logger, string @namespace, string user, int count);

    [LoggerMessage(EventId = 1111, Level = LogLevel.Warning, Message = "Could not fetch messages {From}..{UpTo} of room {Namespace}/{Room} to fill a gap")]
    private static partial void LogGapFillFailed(ILogger logger, string @namespace, string room, long from, long upTo, Exception exception);

    [LoggerMessage(EventId = 1112, Level = LogLevel.Warning, Message = "Connection {ConnectionId} missed messages after {LastSeq} up to {UpTo} of room {Namespace}/{Room} that history no longer holds; closing it so it recovers")]
    private static partial void LogGapNotCovered(ILogger logger, string connectionId, string @namespace, string room, long lastSeq, long upTo);
}
