using System.Buffers;
using System.Net.WebSockets;
using Broker.Frontend.Diagnostics;
using Broker.Frontend.Options;
using Broker.Frontend.Protocol;
using Broker.Transport;
using Broker.Grains;
using Broker.Grains.Models;
using Microsoft.Extensions.Options;

namespace Broker.Frontend.Connections;

/// <summary>
/// Runs one client connection: welcome, the receive loop, one frame at a time (so a
/// connection's publishes reach the room in the order sent), and cleanup in a finally.
/// Frames are mapped to grain calls here and nowhere else.
/// </summary>
public sealed partial class ConnectionHandler
{
    private const int InitialReceiveBuffer = 4 * 1024;
    private readonly FrontendNode _node;
    private readonly IGrainFactory _grains;
    private readonly BrokerOptions _options;
    private readonly FrameParser _parser;
    private readonly TimeProvider _time;
    private readonly ClientEventLog _events;
    private readonly ILogger<ConnectionHandler> _logger;

    public ConnectionHandler(FrontendNode node, IGrainFactory grains, IOptions<BrokerOptions> options, TimeProvider time, ClientEventLog events, ILogger<ConnectionHandler> logger)
    {
        _events = events;
        _node = node;
        _grains = grains;
        _options = options.Value;
        _parser = new FrameParser(_options.MaxNameLength);
        _time = time;
        _logger = logger;
    }

    /// <param name="expires">When the connection's token expires: the connection is then closed with 1008.</param>
    /// <param name="generatedUser">
    /// The user id was made up for this connection alone: its user grain is not told of it (no
    /// activation per anonymous connection) until a direct message to that id activates the
    /// grain, which then asks the front-ends for the user's connections.
    /// </param>
    public async Task RunAsync(WebSocket socket, string ns, NamespaceOptions nsOptions, string user, DateTimeOffset? expires = null, bool generatedUser = false)
    {
        var connection = new ClientConnection(_node.NextConnectionId(), user, ns, nsOptions, socket, _options.OutboxFrames, _options.OutboxBytes, _options.CloseTimeout, _events)
        {
            UserGrainKnows = !generatedUser,
        };
        var userKey = GrainKeys.Of(ns, user);
        _node.Register(connection);
        using var expiry = expires is { } at
            ? _time.CreateTimer(
                _ => connection.Close(CloseCodes.PolicyViolation, "The token expired; reconnect with a fresh one."),
                null,
                TimeSpan.FromTicks(Math.Max(0, (at - _time.GetUtcNow()).Ticks)),
                Timeout.InfiniteTimeSpan)
            : null;
        LogConnected(_logger, connection.Id, ns, user);
        try
        {
            _node.Users.Add(userKey, connection);

            // A generated id's grain is not told: nobody can have sent to it yet, and a first
            // direct message finds the connection here (the grain asks the front-ends).
            if (!generatedUser && !await ConnectToUserGrainAsync(connection, userKey))
            {
                return;
            }

            connection.Send(FrameWriter.Welcome(connection.Id, user, ns, _node.Id));
            await ReceiveLoopAsync(connection);
        }
        catch (Exception ex) when (IsConnectionFault(ex))
        {
            // The peer's socket broke or it broke the protocol: the client's doing, so Debug —
            // at Error, any client could write a stack trace to the log per connection.
            // The finally closes what is left of it.
            LogConnectionFaulted(_logger, connection.Id, ex.GetType().Name, ex.Message);
        }
        catch (Exception ex)
        {
            // Only a defect of the server reaches this: nothing a client sends may throw here
            // (the frame parser answers every input with a frame or an error).
            LogConnectionFailed(_logger, connection.Id, ex);
            connection.Close(CloseCodes.Internal, "Internal error.");
        }
        finally
        {
            connection.Close(CloseCodes.Normal, string.Empty);
            _node.Users.Remove(userKey, connection);
            await CleanupAsync(connection, userKey);
            var writer = connection.WriterFinished;
            if (await Task.WhenAny(writer, Task.Delay(connection.CloseTimeout + connection.CloseTimeout)) != writer)
            {
                // The peer stopped reading in the middle of a frame: nothing more can be said to it.
                socket.Abort();
            }

            _node.Unregister(connection);
            connection.MarkFinished();

            LogDisconnected(_logger, connection.Id, connection.CloseStatus is { } status ? (int)status : 0);
        }
    }

    /// <summary>
    /// Registers the connection with its user grain before the welcome, so that once a client
    /// has its welcome, direct messages reach it. False (and the connection closed with 1013)
    /// when the cluster does not answer.
    /// </summary>
    private async Task<bool> ConnectToUserGrainAsync(ClientConnection connection, string userKey)
    {
        try
        {
            await _grains.Ref<IUserGrain>(userKey)
                .Connect(new UserConnection(connection.Id, _node.Id, _node.Reference))
                .WaitAsync(_options.ClusterCallTimeout);
            return true;
        }
        catch (Exception ex) when (ClusterErrors.IsClusterUnavailable(ex))
        {
            LogClusterUnavailable(_logger, connection.Id, ex);
            connection.Close(CloseCodes.TryAgainLater, "The cluster is unavailable; try again later.");
            return false;
        }
    }

    private async Task ReceiveLoopAsync(ClientConnection connection)
    {
        var socket = connection.Socket;
        var limiter = new RateLimiter(_time, _options.RateLimitPerSecond, _options.RateLimitBurst);
        if (socket is PipeWebSocket pipe && limiter.Enabled)
        {
            // Pings spend the frame budget too; a flood of them, past a burst's worth dropped, is 1008.
            pipe.LimitControlFrames(limiter, Math.Max(1, _options.RateLimitBurst));
        }

        while (!connection.IsClosing)
        {
            // A zero-byte read waits for the next frame without holding a buffer: an idle
            // connection keeps no receive memory; a buffer is rented only while a frame is read.
            byte[]? buffer = null;
            try
            {
                ValueWebSocketReceiveResult result;
                var count = 0;
                try
                {
                    result = await socket.ReceiveAsync(Memory<byte>.Empty, connection.ReceiveAborted);
                    while (!result.EndOfMessage && count <= _options.MaxFrameBytes)
                    {
                        buffer = RoomFor(buffer, count);
                        result = await socket.ReceiveAsync(buffer.AsMemory(count), connection.ReceiveAborted);
                        count += result.Count;
                    }
                }
                catch (MessageTooBigException)
                {
                    CloseTooLarge(connection);
                    return;
                }
                catch (Exception ex) when (ex is WebSocketException or OperationCanceledException or ObjectDisposedException or IOException)
                {
                    return;
                }

                if (result.MessageType == WebSocketMessageType.Close)
                {
                    connection.Close(CloseCodes.Normal, string.Empty);
                    return;
                }

                if (count > _options.MaxFrameBytes)
                {
                    CloseTooLarge(connection);
                    return;
                }

                if (result.MessageType == WebSocketMessageType.Binary)
                {
                    connection.Close(CloseCodes.BinaryNotAccepted, "Binary frames are not accepted; send JSON text frames.", dropPending: true);
                    return;
                }

                await HandleTextAsync(connection, limiter, buffer.AsMemory(0, count));
            }
            finally
            {
                if (buffer is not null)
                {
                    ArrayPool<byte>.Shared.Return(buffer);
                }
            }
        }
    }

    /// <summary>A pooled buffer with room after its first <paramref name="count"/> bytes (rented, or grown up to MaxFrameBytes + 1).</summary>
    private byte[] RoomFor(byte[]? buffer, int count)
    {
        if (buffer is null)
        {
            return ArrayPool<byte>.Shared.Rent(InitialReceiveBuffer);
        }

        if (count < buffer.Length)
        {
            return buffer;
        }

        var bigger = ArrayPool<byte>.Shared.Rent(Math.Min(buffer.Length * 2, _options.MaxFrameBytes + 1));
        buffer.AsSpan(0, count).CopyTo(bigger);
        ArrayPool<byte>.Shared.Return(buffer);
        return bigger;
    }

    /// <summary>A message over MaxFrameBytes (counted here, or announced by a pipe transport frame header).</summary>
    private void CloseTooLarge(ClientConnection connection) =>
        connection.Close(CloseCodes.FrameTooLarge, $"Frame larger than {_options.MaxFrameBytes} bytes.", dropPending: true);

    private async Task HandleTextAsync(ClientConnection connection, RateLimiter limiter, ReadOnlyMemory<byte> text)
    {
        // A client that does not read its replies gets nothing more done until it does: no
        // cluster call made, no reply built and held while it waits for outbox space.
        if (!await connection.WaitForRoomAsync())
        {
            // Closing: nobody to answer.
            return;
        }
        if (text.Span.SequenceEqual("ping"u8))
        {
            if (limiter.TryTake())
            {
                await connection.ReplyAsync(FrameWriter.Pong);
            }
            else
            {
                _events.Count(ClientEvent.RateLimited);
                await connection.ReplyAsync(FrameWriter.Error([], ErrorCodes.RateLimited, RateLimitedMessage()));
            }

            return;
        }

        // Every frame counts against the rate, the ones that fail to parse included.
        var parsed = _parser.TryParse(text.Span, out var frame, out var error);
        if (!limiter.TryTake())
        {
            _events.Count(ClientEvent.RateLimited);
            await connection.ReplyAsync(FrameWriter.Error(parsed ? frame.Id : error.Id, ErrorCodes.RateLimited, RateLimitedMessage()));
            return;
        }

        if (!parsed)
        {
            _events.Count(ClientEvent.BadRequest);
            await connection.ReplyAsync(FrameWriter.Error(error.Id, error.Code, error.Message));
            return;
        }

        var reply = frame.Type switch
        {
            ClientFrameType.Ping => FrameWriter.JsonPong(frame.Id),
            ClientFrameType.Echo => FrameWriter.Echo(frame.Id, frame.Data!),
            ClientFrameType.Join => await JoinAsync(connection, frame),
            ClientFrameType.Leave => await LeaveAsync(connection, frame),
            ClientFrameType.Publish => await PublishAsync(connection, frame),
            ClientFrameType.Send => await SendAsync(connection, frame),
            ClientFrameType.Presence => await PresenceAsync(connection, frame),
            ClientFrameType.History => NotAMemberForHistory(connection, frame) ?? await HistoryAsync(connection, frame),
            _ => FrameWriter.Error(frame.Id, ErrorCodes.UnknownType, "Unknown frame type."),
        };
        if (reply is not null)
        {
            await connection.ReplyAsync(reply);
        }
    }

    private string RateLimitedMessage() =>
        $"Too many frames: the limit is {_options.RateLimitPerSecond} per second (bursts of {_options.RateLimitBurst}); this frame was dropped.";

    private async Task<byte[]?> JoinAsync(ClientConnection connection, ClientFrame frame)
    {
        var room = frame.Room!;
        var key = GrainKeys.Of(connection.Namespace, room);
        var grain = _grains.Ref<IRoomGrain>(key);
        if (connection.Rooms.ContainsKey(room))
        {
            // Already a member: answer with the room's current position; nothing was missed.
            var again = await CallAsync(connection, frame.Id, () => grain.Join(JoinRequestFor(connection, room, null, null)));
            return again.Failure ?? FrameWriter.Joined(frame.Id, room, again.Value.Seq, again.Value.Epoch, recovered: false);
        }

        if (connection.Rooms.Count >= _options.MaxRoomsPerConnection)
        {
            return FrameWriter.Error(
                frame.Id,
                ErrorCodes.TooLarge,
                $"This connection is already in {connection.Rooms.Count} rooms, the limit; leave one before joining another.");
        }

        // A leave of this room still owed from before must not undo this join.
        _node.Settle(new OwedLeave(IsRoom: true, key, connection.Id));
        var membership = new RoomMembership(connection, room);
        connection.Rooms[room] = membership;
        _node.Rooms.Add(key, membership);
        var joined = await CallAsync(connection, frame.Id, () => grain.Join(JoinRequestFor(connection, room, frame.Since, frame.Epoch)));
        if (joined.Failure is not null)
        {
            connection.Rooms.Remove(room);
            _node.Rooms.Remove(key, membership);

            // The room may have taken the join after all; take it back, without waiting.
            _ = LeaveOrOweAsync(new OwedLeave(IsRoom: true, key, connection.Id));
            return joined.Failure;
        }

        // Recovered messages, then joined, then what arrived meanwhile, then the live stream:
        // one ordered sequence. All of it waits for outbox space like any reply — a client back
        // from a 1013 has missed more than its outbox holds — while live deliveries keep
        // waiting in the membership until nothing is left to catch up on. What waits there is
        // bounded by OutboxBytes: a client that does not read is closed with 1013.
        var result = joined.Value;
        membership.Prime(result.Activation, result.Epoch, result.Version, result.Seq);
        foreach (var message in result.Missed)
        {
            await connection.ReplyAsync(FrameWriter.Message(room, result.Epoch, message));
        }

        await connection.ReplyAsync(FrameWriter.Joined(frame.Id, room, result.Seq, result.Epoch, result.Recovered));
        while (!connection.IsClosing)
        {
            // What waited goes out as the outbox makes room, while the room goes on: only what
            // arrives while the outbox is full waits in the membership.
            while (!connection.IsClosing && membership.TakeWaiting() is { Count: > 0 } waited)
            {
                foreach (var frameBytes in waited)
                {
                    await connection.ReplyAsync(frameBytes);
                }
            }

            // The live stream takes over with the outbox empty: its pushes never wait, and the
            // catch-up's frames ahead of them may be large (up to MaxFrameBytes each).
            await connection.WaitForOutboxBelowAsync(0);
            if (membership.TakeDeliverable() is not { } caughtUp)
            {
                break;
            }

            foreach (var frameBytes in caughtUp)
            {
                await connection.ReplyAsync(frameBytes);
            }
        }

        return null;
    }

    private JoinRequest JoinRequestFor(ClientConnection connection, string room, long? since, string? epoch) =>
        new(connection.Id, connection.User, _node.Id, _node.Reference, connection.Policy, since, epoch);

    private async Task<byte[]?> LeaveAsync(ClientConnection connection, ClientFrame frame)
    {
        var room = frame.Room!;
        if (!connection.Rooms.Remove(room, out var membership))
        {
            return FrameWriter.Error(frame.Id, ErrorCodes.NotFound, $"This connection is not in room \"{room}\"; there is nothing to leave.");
        }

        var key = GrainKeys.Of(connection.Namespace, room);
        _node.Rooms.Remove(key, membership);
        var left = await CallAsync(connection, frame.Id, () => _grains.Ref<IRoomGrain>(key).Leave(connection.Id));
        if (left.Failure is not null)
        {
            // The connection is out of the room here already; the room will hear it from the heartbeat.
            _node.Owe(new OwedLeave(IsRoom: true, key, connection.Id));
        }

        return left.Failure ?? FrameWriter.Left(frame.Id, room);
    }

    private async Task<byte[]?> PublishAsync(ClientConnection connection, ClientFrame frame)
    {
        var room = frame.Room!;
        if (!connection.Options.ClientPublish)
        {
            return FrameWriter.Error(frame.Id, ErrorCodes.Forbidden, $"Clients may not publish in namespace \"{connection.Namespace}\"; only the server's HTTP API may.");
        }

        if (connection.Options.RequireMembership && !connection.Rooms.ContainsKey(room))
        {
            return FrameWriter.Error(frame.Id, ErrorCodes.NotMember, $"Join room \"{room}\" before publishing to it.");
        }

        var grain = _grains.Ref<IRoomGrain>(GrainKeys.Of(connection.Namespace, room));
        var published = await CallAsync(connection, frame.Id, () => grain.Publish(new PublishRequest(connection.User, frame.Data!, frame.MsgId, connection.Policy)));
        return published.Failure ?? FrameWriter.PublishAck(frame.Id, room, published.Value.Seq);
    }

    private async Task<byte[]?> SendAsync(ClientConnection connection, ClientFrame frame)
    {
        if (!connection.Options.ClientPublish)
        {
            return FrameWriter.Error(frame.Id, ErrorCodes.Forbidden, $"Clients may not send messages in namespace \"{connection.Namespace}\"; only the server's HTTP API may.");
        }

        var grain = _grains.Ref<IUserGrain>(GrainKeys.Of(connection.Namespace, frame.To!));
        var message = new DirectMessage(connection.User, _time.GetUtcNow().ToUnixTimeMilliseconds(), frame.Data!);
        var sent = await CallAsync(connection, frame.Id, () => grain.Send(message));
        return sent.Failure ?? FrameWriter.SendAck(frame.Id, sent.Value);
    }

    private async Task<byte[]?> PresenceAsync(ClientConnection connection, ClientFrame frame)
    {
        var room = frame.Room!;
        if (!connection.Options.Presence)
        {
            return FrameWriter.Error(frame.Id, ErrorCodes.Forbidden, $"Presence is turned off in namespace \"{connection.Namespace}\".");
        }

        if (connection.Options.PresenceRequiresMembership && !connection.Rooms.ContainsKey(room))
        {
            return FrameWriter.Error(frame.Id, ErrorCodes.NotMember, $"Join room \"{room}\" before asking for its presence; namespace \"{connection.Namespace}\" shows presence to members only.");
        }

        var grain = _grains.Ref<IRoomGrain>(GrainKeys.Of(connection.Namespace, room));
        var presence = await CallAsync(connection, frame.Id, () => grain.GetPresence());
        return presence.Failure ?? FrameWriter.Presence(frame.Id, room, presence.Value);
    }

    /// <summary>
    /// The not_member error when the namespace shows history to members only and this
    /// connection has not joined the room; null when the room may be asked. Checked before
    /// any grain call, so a client cannot activate rooms by naming them.
    /// </summary>
    private static byte[]? NotAMemberForHistory(ClientConnection connection, ClientFrame frame) =>
        connection.Options.HistoryRequiresMembership && !connection.Rooms.ContainsKey(frame.Room!)
            ? FrameWriter.Error(frame.Id, ErrorCodes.NotMember, $"Join room \"{frame.Room}\" before asking for its history; namespace \"{connection.Namespace}\" shows history to members only.")
            : null;

    private async Task<byte[]?> HistoryAsync(ClientConnection connection, ClientFrame frame)
    {
        var room = frame.Room!;
        var window = Math.Min(connection.Options.History, BrokerOptions.MaxHistoryLimit);
        var limit = Math.Min(frame.Limit ?? window, window);
        var grain = _grains.Ref<IRoomGrain>(GrainKeys.Of(connection.Namespace, room));

        // The room cuts the page to about MaxReplyBytes (its own measure of a message), the
        // writer to exactly that in frame bytes; either sets "more" and the client pages on.
        var page = await CallAsync(connection, frame.Id, () => grain.GetHistory(frame.Since, limit, _options.MaxReplyBytes));
        return page.Failure ?? FrameWriter.History(frame.Id, room, page.Value.Epoch, page.Value.Messages, page.Value.More, _options.MaxReplyBytes);
    }

    private async Task CleanupAsync(ClientConnection connection, string userKey)
    {
        var leaves = new List<Task>(connection.Rooms.Count + 1);
        foreach (var (room, membership) in connection.Rooms)
        {
            var key = GrainKeys.Of(connection.Namespace, room);
            _node.Rooms.Remove(key, membership);
            leaves.Add(LeaveOrOweAsync(new OwedLeave(IsRoom: true, key, connection.Id)));
        }

        connection.Rooms.Clear();
        if (connection.UserGrainKnows)
        {
            leaves.Add(LeaveOrOweAsync(new OwedLeave(IsRoom: false, userKey, connection.Id)));
        }

        await Task.WhenAll(leaves);
    }

    /// <summary>Tells a room or user grain a connection left; when the cluster cannot answer, the heartbeat retries.</summary>
    private async Task LeaveOrOweAsync(OwedLeave leave)
    {
        try
        {
            await leave.SendAsync(_grains).WaitAsync(_options.ClusterCallTimeout);
        }
        catch (Exception ex)
        {
            LogLeaveOwed(_logger, leave.ConnectionId, leave.Key, ex);
            _node.Owe(leave);
        }
    }

    /// <summary>
    /// Runs one cluster call for a frame. A timeout or an unreachable cluster becomes an
    /// "unavailable" error frame, anything else "internal" (logged); the connection lives on.
    /// </summary>
    private async Task<CallResult<T>> CallAsync<T>(ClientConnection connection, byte[] id, Func<Task<T>> call)
    {
        try
        {
            return new CallResult<T>(await call().WaitAsync(_options.ClusterCallTimeout), null);
        }
        catch (Exception ex) when (ClusterErrors.IsClusterUnavailable(ex))
        {
            // Per frame, and a client can ask for new rooms while the silo refuses activations:
            // counted, and detailed at Debug without a stack trace.
            _events.Count(ClientEvent.Unavailable);
            LogFrameUnavailable(_logger, connection.Id, ex.GetType().Name, ex.Message);
            return new CallResult<T>(default!, FrameWriter.Error(id, ErrorCodes.Unavailable, "The cluster could not answer in time; try again."));
        }
        catch (Exception ex)
        {
            LogFrameFailed(_logger, connection.Id, ex);
            return new CallResult<T>(default!, FrameWriter.Error(id, ErrorCodes.Internal, "The server failed to handle this frame; it has been logged."));
        }
    }

    /// <summary>What a broken or misbehaving peer makes a socket throw (the receive loop returns on most of them itself).</summary>
    private static bool IsConnectionFault(Exception ex) =>
        ex is WebSocketException or IOException or OperationCanceledException or ObjectDisposedException
            or System.Net.Sockets.SocketException or MessageTooBigException;

    /// <summary>A cluster call's value, or the error frame to answer with.</summary>
    private readonly record struct CallResult<T>(T Value, byte[]? Failure);

    [LoggerMessage(Level = LogLevel.Debug, Message = "Connection {ConnectionId} opened in namespace {Namespace} as {User}")]
    private static partial void LogConnected(ILogger logger, string connectionId, string @namespace, string user);

    [LoggerMessage(Level = LogLevel.Debug, Message = "Connection {ConnectionId} closed (close status {CloseStatus})")]
    private static partial void LogDisconnected(ILogger logger, string connectionId, int closeStatus);

    [LoggerMessage(Level = LogLevel.Debug, Message = "Connection {ConnectionId} ended by a socket fault: {ExceptionType}: {Reason}")]
    private static partial void LogConnectionFaulted(ILogger logger, string connectionId, string exceptionType, string reason);

    [LoggerMessage(Level = LogLevel.Error, Message = "Connection {ConnectionId} failed")]
    private static partial void LogConnectionFailed(ILogger logger, string connectionId, Exception exception);

    [LoggerMessage(Level = LogLevel.Warning, Message = "Could not tell {Key} that connection {ConnectionId} left; retrying with the heartbeat")]
    private static partial void LogLeaveOwed(ILogger logger, string connectionId, string key, Exception exception);

    [LoggerMessage(Level = LogLevel.Warning, Message = "Cluster unavailable for a frame of connection {ConnectionId}")]
    private static partial void LogClusterUnavailable(ILogger logger, string connectionId, Exception exception);

    [LoggerMessage(Level = LogLevel.Debug, Message = "A frame of connection {ConnectionId} was answered unavailable: {ExceptionType}: {Reason}")]
    private static partial void LogFrameUnavailable(ILogger logger, string connectionId, string exceptionType, string reason);

    [LoggerMessage(Level = LogLevel.Error, Message = "A frame of connection {ConnectionId} failed")]
    private static partial void LogFrameFailed(ILogger logger, string connectionId, Exception exception);
}
