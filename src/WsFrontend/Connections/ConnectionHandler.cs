using System.Buffers;
using System.Net.WebSockets;
using Broker.Frontend.Commands;
using Broker.Frontend.Diagnostics;
using Broker.Frontend.Hosting;
using Broker.Frontend.Options;
using Broker.Frontend.Protocol;
using Broker.Transport;
using Broker.Grains;
using Broker.Grains.Models;
using Microsoft.Extensions.Options;

namespace Broker.Frontend.Connections;

/// <summary>
/// Runs one client connection's lifecycle: welcome, the receive loop, and cleanup in a finally.
/// Frames are taken one at a time; publishes are handed to the connection's
/// <see cref="PublishPipeline"/>, which keeps up to MaxPublishesInFlight of them in flight in
/// order (one call per room at a time), and every other frame waits until the publishes before
/// it are answered. Each frame's command is decided and carried out by the
/// <see cref="CommandDispatcher"/> (shared with the server API); here it becomes a reply frame.
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
    private readonly CommandDispatcher _dispatcher;
    private readonly ILogger<ConnectionHandler> _logger;

    public ConnectionHandler(FrontendNode node, IGrainFactory grains, IOptions<BrokerOptions> options, TimeProvider time, ClientEventLog events, CommandDispatcher dispatcher, ILogger<ConnectionHandler> logger)
    {
        _events = events;
        _dispatcher = dispatcher;
        _node = node;
        _grains = grains;
        _options = options.Value;
        _parser = new FrameParser(_options.MaxNameLength);
        _time = time;
        _logger = logger;
    }

    /// <summary>
    /// Runs an admitted connection to its end. When its token expires it is closed with 1008.
    /// A generated user id (<see cref="Admitted.GeneratedUser"/>) was made up for this
    /// connection alone: its user grain is not told of it (no activation per anonymous
    /// connection) until a direct message to that id activates the grain, which then asks the
    /// front-ends for the user's connections.
    /// </summary>
    public async Task RunAsync(WebSocket socket, Admitted admitted)
    {
        var (ns, nsOptions, user, expires, generatedUser, _) = admitted;
        var connection = new ClientConnection(_node.NextConnectionId(), user, ns, nsOptions, socket, _options.OutboxFrames, _options.OutboxBytes, _options.CloseTimeout, _events)
        {
            UserGrainKnows = !generatedUser,
            Verified = admitted.Token is not null,
            Grants = RoomAuthorizer.GrantsFor(nsOptions, ns, admitted.Token),
        };
        var userKey = GrainKeys.Of(ns, user);
        _node.Register(connection);
        FrontendMetrics.Opened(ns, socket);
        LogConnected(_logger, connection.Id, ns, user);
        try
        {
            // A refresh replaces it (RefreshAsync); the finally stops it. Inside the try: once
            // registered, nothing may skip the finally's unregistering.
            connection.ExpireAt(expires, _time);
            _node.Users.Add(userKey, connection);

            // A generated id's grain is not told: nobody can have sent to it yet, and a first
            // direct message finds the connection here (the grain asks the front-ends).
            if (!generatedUser && !await ConnectToUserGrainAsync(connection, userKey))
            {
                return;
            }

            connection.Send(Counted(SentFrame.Welcome, FrameWriter.Welcome(connection.Id, user, ns, _node.Id)));
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
            connection.StopExpiry();
            connection.Close(CloseCodes.Normal, string.Empty);
            _node.Users.Remove(userKey, connection);

            // Publishes still in flight complete or fail (each call is bounded) before the
            // connection leaves its rooms: a leave never overtakes a publish.
            if (connection.Publishes is { } publishes)
            {
                await publishes.WhenAnsweredAsync();
            }

            await CleanupAsync(connection, userKey);
            var writer = connection.WriterFinished;
            if (await Task.WhenAny(writer, Task.Delay(connection.CloseTimeout + connection.CloseTimeout)) != writer)
            {
                // The peer stopped reading in the middle of a frame: nothing more can be said to it.
                socket.Abort();
            }

            _node.Unregister(connection);
            FrontendMetrics.Closed(ns, socket, connection.CloseStatus);
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
            FrontendMetrics.ClusterCallFailed(ex);
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
            await AfterPublishesAsync(connection);
            FrontendMetrics.FrameReceived(ClientFrameType.Ping);
            if (limiter.TryTake())
            {
                await connection.ReplyAsync(Counted(SentFrame.Pong, FrameWriter.Pong));
            }
            else
            {
                _events.Count(ClientEvent.RateLimited);
                await connection.ReplyAsync(ErrorFrame([], ErrorCodes.RateLimited, RateLimitedMessage()));
            }

            return;
        }

        // Every frame counts against the rate, the ones that fail to parse included.
        var parsed = _parser.TryParse(text.Span, out var frame, out var error);
        FrontendMetrics.FrameReceived(parsed, frame);
        var withinRate = limiter.TryTake();
        if (parsed && frame.Type == ClientFrameType.Publish)
        {
            await PublishAsync(connection, frame, withinRate);
            return;
        }

        await AfterPublishesAsync(connection);
        if (!withinRate)
        {
            _events.Count(ClientEvent.RateLimited);
            await connection.ReplyAsync(ErrorFrame(parsed ? frame.Id : error.Id, ErrorCodes.RateLimited, RateLimitedMessage()));
            return;
        }

        if (!parsed)
        {
            _events.Count(ClientEvent.BadRequest);
            await connection.ReplyAsync(ErrorFrame(error.Id, error.Code, error.Message));
            return;
        }

        var reply = frame.Type switch
        {
            ClientFrameType.Ping => Counted(SentFrame.Pong, FrameWriter.JsonPong(frame.Id)),
            ClientFrameType.Echo => Counted(SentFrame.Echo, FrameWriter.Echo(frame.Id, frame.Data!)),
            ClientFrameType.Join => await JoinAsync(connection, frame),
            ClientFrameType.Leave => await LeaveAsync(connection, frame),
            ClientFrameType.Send => await SendAsync(connection, frame),
            ClientFrameType.Presence => await PresenceAsync(connection, frame),
            ClientFrameType.History => await HistoryAsync(connection, frame),
            ClientFrameType.Refresh => await RefreshAsync(connection, frame),
            _ => ErrorFrame(frame.Id, ErrorCodes.UnknownType, "Unknown frame type."),
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
        var joined = await _dispatcher.JoinAsync(connection.Caller, room, frame.Since, frame.Epoch);
        if (joined.Refused is { } refused)
        {
            return ErrorFrame(frame, refused);
        }

        var (result, membership, again) = joined.Value;
        if (again)
        {
            // Already a member: the room's current position; nothing was missed.
            return Counted(SentFrame.Joined, FrameWriter.Joined(frame.Id, room, result.Seq, result.Epoch, recovered: false));
        }

        // Recovered messages, then joined, then what arrived meanwhile, then the live stream:
        // one ordered sequence. All of it waits for outbox space like any reply — a client back
        // from a 1013 has missed more than its outbox holds — while live deliveries keep
        // waiting in the membership until nothing is left to catch up on. What waits there is
        // bounded by OutboxBytes: a client that does not read is closed with 1013.
        foreach (var message in result.Missed)
        {
            await connection.ReplyAsync(Counted(SentFrame.Message, FrameWriter.Message(room, result.Epoch, message)));
        }

        await connection.ReplyAsync(Counted(SentFrame.Joined, FrameWriter.Joined(frame.Id, room, result.Seq, result.Epoch, result.Recovered)));
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

    private async Task<byte[]> LeaveAsync(ClientConnection connection, ClientFrame frame)
    {
        var left = await _dispatcher.LeaveAsync(connection.Caller, frame.Room!);
        return left.Refused is { } refused ? ErrorFrame(frame, refused) : Counted(SentFrame.Left, FrameWriter.Left(frame.Id, frame.Room!));
    }

    /// <summary>
    /// Hands a publish to the connection's pipeline (made at its first publish), then reads on
    /// only while it has room: at most MaxPublishesInFlight publishes (and
    /// MaxPublishBytesInFlight bytes of data) unanswered, 1 being one frame at a time.
    /// </summary>
    private async Task PublishAsync(ClientConnection connection, ClientFrame frame, bool withinRate)
    {
        var publishes = connection.Publishes ??= new PublishPipeline(connection, _dispatcher, _options.MaxPublishesInFlight, _options.MaxPublishBytesInFlight);
        if (withinRate)
        {
            await publishes.AcceptAsync(frame);
        }
        else
        {
            _events.Count(ClientEvent.RateLimited);
            publishes.AcceptAnswered(ErrorFrame(frame.Id, ErrorCodes.RateLimited, RateLimitedMessage()));
        }

        await publishes.WaitForCapacityAsync();
    }

    /// <summary>Any frame other than a publish waits until the publishes before it are answered: nothing overtakes a publish, nor is overtaken by one.</summary>
    private static ValueTask AfterPublishesAsync(ClientConnection connection) =>
        connection.Publishes is { } publishes ? publishes.WhenAnsweredAsync() : ValueTask.CompletedTask;

    private async Task<byte[]> SendAsync(ClientConnection connection, ClientFrame frame)
    {
        var sent = await _dispatcher.SendAsync(connection.Caller, frame.To!, frame.Data!);
        return sent.Refused is { } refused ? ErrorFrame(frame, refused) : Counted(SentFrame.Ack, FrameWriter.SendAck(frame.Id, sent.Value));
    }

    private async Task<byte[]> PresenceAsync(ClientConnection connection, ClientFrame frame)
    {
        var presence = await _dispatcher.PresenceAsync(connection.Caller, frame.Room!);
        return presence.Refused is { } refused ? ErrorFrame(frame, refused) : Counted(SentFrame.Presence, FrameWriter.Presence(frame.Id, frame.Room!, presence.Value));
    }

    private async Task<byte[]> HistoryAsync(ClientConnection connection, ClientFrame frame)
    {
        var page = await _dispatcher.HistoryAsync(connection.Caller, frame.Room!, frame.Since, frame.Limit);
        return page.Refused is { } refused
            ? ErrorFrame(frame, refused)
            : Counted(SentFrame.History, FrameWriter.History(frame.Id, frame.Room!, page.Value.Epoch, page.Value.Messages, page.Value.More, _options.MaxReplyBytes));
    }

    /// <summary>
    /// A new token for the connection (protocol.md v1.1 "Refreshing a token"): its expiry and
    /// grants become the new token's. The rooms the new grants no longer let it join are left
    /// first, each with a <c>left</c> push carrying a reason, then <c>refreshed</c> answers.
    /// </summary>
    private async Task<byte[]> RefreshAsync(ClientConnection connection, ClientFrame frame)
    {
        var refreshed = await _dispatcher.RefreshAsync(connection.Caller, frame.Token!);
        if (refreshed.Refused is { } refused)
        {
            return ErrorFrame(frame, refused);
        }

        foreach (var room in refreshed.Value.RoomsLeft)
        {
            await connection.ReplyAsync(Counted(SentFrame.Left, FrameWriter.LeftByServer(room, $"The refreshed token's \"rooms\" claim no longer grants \"join\" for room \"{room}\" in namespace \"{connection.Namespace}\".")));
        }

        return Counted(SentFrame.Refreshed, FrameWriter.Refreshed(frame.Id, refreshed.Value.Expires?.ToUnixTimeSeconds()));
    }

    private static byte[] ErrorFrame(ClientFrame frame, CommandError refusal) => ErrorFrame(frame.Id, refusal.Code, refusal.Message);

    /// <summary>An error frame, counted (broker.errors by code, broker.frames.sent).</summary>
    internal static byte[] ErrorFrame(byte[] id, string code, string message)
    {
        FrontendMetrics.Error(code);
        return FrameWriter.Error(id, code, message);
    }

    /// <summary>A reply frame, counted in broker.frames.sent.</summary>
    internal static byte[] Counted(SentFrame type, byte[] frame)
    {
        FrontendMetrics.FrameSent(type);
        return frame;
    }

    private async Task CleanupAsync(ClientConnection connection, string userKey)
    {
        var leaves = new List<Task>(connection.Rooms.Count + 1);
        foreach (var (room, membership) in connection.Rooms)
        {
            var key = GrainKeys.Of(connection.Namespace, room);
            _node.Rooms.Remove(key, membership);
            leaves.Add(_dispatcher.LeaveOrOweAsync(new OwedLeave(IsRoom: true, key, connection.Id)));
        }

        connection.Rooms.Clear();
        if (connection.UserGrainKnows)
        {
            leaves.Add(_dispatcher.LeaveOrOweAsync(new OwedLeave(IsRoom: false, userKey, connection.Id)));
        }

        await Task.WhenAll(leaves);
    }

    /// <summary>What a broken or misbehaving peer makes a socket throw (the receive loop returns on most of them itself).</summary>
    private static bool IsConnectionFault(Exception ex) =>
        ex is WebSocketException or IOException or OperationCanceledException or ObjectDisposedException
            or System.Net.Sockets.SocketException or MessageTooBigException;

    [LoggerMessage(EventId = 1100, Level = LogLevel.Debug, Message = "Connection {ConnectionId} opened in namespace {Namespace} as {User}")]
    private static partial void LogConnected(ILogger logger, string connectionId, string @namespace, string user);

    [LoggerMessage(EventId = 1101, Level = LogLevel.Debug, Message = "Connection {ConnectionId} closed (close status {CloseStatus})")]
    private static partial void LogDisconnected(ILogger logger, string connectionId, int closeStatus);

    [LoggerMessage(EventId = 1102, Level = LogLevel.Debug, Message = "Connection {ConnectionId} ended by a socket fault: {ExceptionType}: {Reason}")]
    private static partial void LogConnectionFaulted(ILogger logger, string connectionId, string exceptionType, string reason);

    [LoggerMessage(EventId = 1103, Level = LogLevel.Error, Message = "Connection {ConnectionId} failed")]
    private static partial void LogConnectionFailed(ILogger logger, string connectionId, Exception exception);

    [LoggerMessage(EventId = 1104, Level = LogLevel.Warning, Message = "Cluster unavailable while connection {ConnectionId} connected: closed with 1013")]
    private static partial void LogClusterUnavailable(ILogger logger, string connectionId, Exception exception);
}
