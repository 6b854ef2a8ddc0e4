using System.Buffers;
using System.Net.WebSockets;
using Broker.Frontend.Hosting;
using Broker.Frontend.Protocol;
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
    private readonly ILogger<ConnectionHandler> _logger;

    public ConnectionHandler(FrontendNode node, IGrainFactory grains, IOptions<BrokerOptions> options, TimeProvider time, ILogger<ConnectionHandler> logger)
    {
        _node = node;
        _grains = grains;
        _options = options.Value;
        _parser = new FrameParser(_options.MaxNameLength);
        _time = time;
        _logger = logger;
    }

    /// <param name="expires">When the connection's token expires: the connection is then closed with 1008.</param>
    public async Task RunAsync(WebSocket socket, string ns, NamespaceOptions nsOptions, string user, DateTimeOffset? expires = null)
    {
        var connection = new ClientConnection(_node.NextConnectionId(), user, ns, nsOptions, socket, _options.OutboxFrames, _options.CloseTimeout);
        var userKey = GrainKeys.Of(ns, user);
        _node.Register(connection);
        var writer = connection.RunWriterAsync();
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
            try
            {
                // Registered before welcome: once a client has its welcome, direct messages reach it.
                await _grains.GetGrain<IUserGrain>(userKey)
                    .Connect(new UserConnection(connection.Id, _node.Id, _node.Reference))
                    .WaitAsync(_options.ClusterCallTimeout);
            }
            catch (Exception ex) when (ex is TimeoutException or OrleansException)
            {
                LogClusterUnavailable(_logger, connection.Id, ex);
                connection.Close(CloseCodes.TryAgainLater, "The cluster is unavailable; try again later.");
                return;
            }

            connection.Send(FrameWriter.Welcome(connection.Id, user, ns, _node.Id));
            await ReceiveLoopAsync(connection);
        }
        catch (Exception ex)
        {
            LogConnectionFailed(_logger, connection.Id, ex);
            connection.Close(CloseCodes.Internal, "Internal error.");
        }
        finally
        {
            connection.Close(CloseCodes.Normal, string.Empty);
            _node.Users.Remove(userKey, connection);
            await CleanupAsync(connection, userKey);
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

    private async Task ReceiveLoopAsync(ClientConnection connection)
    {
        var socket = connection.Socket;
        var limiter = new RateLimiter(_time, _options.RateLimitPerSecond, _options.RateLimitBurst);
        var buffer = ArrayPool<byte>.Shared.Rent(InitialReceiveBuffer);
        try
        {
            while (!connection.IsClosing)
            {
                var count = 0;
                ValueWebSocketReceiveResult result;
                do
                {
                    if (count == buffer.Length)
                    {
                        var bigger = ArrayPool<byte>.Shared.Rent(Math.Min(buffer.Length * 2, _options.MaxFrameBytes + 1));
                        buffer.AsSpan(0, count).CopyTo(bigger);
                        ArrayPool<byte>.Shared.Return(buffer);
                        buffer = bigger;
                    }

                    try
                    {
                        result = await socket.ReceiveAsync(buffer.AsMemory(count), connection.ReceiveAborted);
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

                    count += result.Count;
                    if (count > _options.MaxFrameBytes)
                    {
                        connection.Close(CloseCodes.FrameTooLarge, $"Frame larger than {_options.MaxFrameBytes} bytes.", dropPending: true);
                        return;
                    }
                }
                while (!result.EndOfMessage);

                if (result.MessageType == WebSocketMessageType.Binary)
                {
                    connection.Close(CloseCodes.BinaryNotAccepted, "Binary frames are not accepted; send JSON text frames.", dropPending: true);
                    return;
                }

                await HandleTextAsync(connection, limiter, buffer.AsMemory(0, count));
            }
        }
        finally
        {
            ArrayPool<byte>.Shared.Return(buffer);
        }
    }

    private Task HandleTextAsync(ClientConnection connection, RateLimiter limiter, ReadOnlyMemory<byte> text)
    {
        var span = text.Span;
        if (span.SequenceEqual("ping"u8))
        {
            if (limiter.TryTake())
            {
                connection.Send(FrameWriter.Pong);
            }
            else
            {
                connection.Send(FrameWriter.Error([], ErrorCodes.RateLimited, RateLimitedMessage()));
            }

            return Task.CompletedTask;
        }

        // Every frame counts against the rate, the ones that fail to parse included.
        var parsed = _parser.TryParse(span, out var frame, out var error);
        if (!limiter.TryTake())
        {
            connection.Send(FrameWriter.Error(parsed ? frame.Id : error.Id, ErrorCodes.RateLimited, RateLimitedMessage()));
            return Task.CompletedTask;
        }

        if (!parsed)
        {
            connection.Send(FrameWriter.Error(error.Id, error.Code, error.Message));
            return Task.CompletedTask;
        }

        switch (frame.Type)
        {
            case ClientFrameType.Ping:
                connection.Send(FrameWriter.JsonPong(frame.Id));
                return Task.CompletedTask;
            case ClientFrameType.Echo:
                connection.Send(FrameWriter.Echo(frame.Id, frame.Data!));
                return Task.CompletedTask;
            case ClientFrameType.Join:
                return JoinAsync(connection, frame);
            case ClientFrameType.Leave:
                return LeaveAsync(connection, frame);
            case ClientFrameType.Publish:
                return PublishAsync(connection, frame);
            case ClientFrameType.Send:
                return SendAsync(connection, frame);
            case ClientFrameType.Presence:
                return PresenceAsync(connection, frame);
            case ClientFrameType.History:
                return HistoryAsync(connection, frame);
            default:
                connection.Send(FrameWriter.Error(frame.Id, ErrorCodes.UnknownType, "Unknown frame type."));
                return Task.CompletedTask;
        }
    }

    private string RateLimitedMessage() =>
        $"Too many frames: the limit is {_options.RateLimitPerSecond} per second (bursts of {_options.RateLimitBurst}); this frame was dropped.";

    private async Task JoinAsync(ClientConnection connection, ClientFrame frame)
    {
        var room = frame.Room!;
        var grain = _grains.GetGrain<IRoomGrain>(GrainKeys.Of(connection.Namespace, room));
        if (connection.Rooms.ContainsKey(room))
        {
            // Already a member: answer with the room's current position; nothing was missed.
            var (ok, again) = await CallAsync(connection, frame.Id, () => grain.Join(JoinRequestFor(connection, room, null, null)));
            if (ok)
            {
                connection.Send(FrameWriter.Joined(frame.Id, room, again.Seq, again.Epoch, recovered: false));
            }

            return;
        }

        if (connection.Rooms.Count >= _options.MaxRoomsPerConnection)
        {
            connection.Send(FrameWriter.Error(
                frame.Id,
                ErrorCodes.TooLarge,
                $"This connection is already in {connection.Rooms.Count} rooms, the limit; leave one before joining another."));
            return;
        }

        var key = GrainKeys.Of(connection.Namespace, room);
        var membership = new RoomMembership(connection, room);
        connection.Rooms[room] = membership;
        _node.Rooms.Add(key, membership);
        var (joined, result) = await CallAsync(connection, frame.Id, () => grain.Join(JoinRequestFor(connection, room, frame.Since, frame.Epoch)));
        if (!joined)
        {
            connection.Rooms.Remove(room);
            _node.Rooms.Remove(key, membership);

            // The room may have taken the join after all; take it back, without waiting.
            _ = grain.Leave(connection.Id);
            return;
        }

        membership.Activate(result.Epoch, result.Version, () =>
        {
            foreach (var message in result.Missed)
            {
                connection.Send(FrameWriter.Message(room, result.Epoch, message));
            }

            connection.Send(FrameWriter.Joined(frame.Id, room, result.Seq, result.Epoch, result.Recovered));
        });
    }

    private JoinRequest JoinRequestFor(ClientConnection connection, string room, long? since, string? epoch) =>
        new(connection.Id, connection.User, _node.Id, _node.Reference, connection.Policy, since, epoch);

    private async Task LeaveAsync(ClientConnection connection, ClientFrame frame)
    {
        var room = frame.Room!;
        if (!connection.Rooms.Remove(room, out var membership))
        {
            connection.Send(FrameWriter.Error(frame.Id, ErrorCodes.NotFound, $"This connection is not in room \"{room}\"; there is nothing to leave."));
            return;
        }

        var key = GrainKeys.Of(connection.Namespace, room);
        _node.Rooms.Remove(key, membership);
        if (await TryCallAsync(connection, frame.Id, () => _grains.GetGrain<IRoomGrain>(key).Leave(connection.Id)))
        {
            connection.Send(FrameWriter.Left(frame.Id, room));
        }
    }

    private async Task PublishAsync(ClientConnection connection, ClientFrame frame)
    {
        var room = frame.Room!;
        if (!connection.Options.ClientPublish)
        {
            connection.Send(FrameWriter.Error(frame.Id, ErrorCodes.Forbidden, $"Clients may not publish in namespace \"{connection.Namespace}\"; only the server's HTTP API may."));
            return;
        }

        if (connection.Options.RequireMembership && !connection.Rooms.ContainsKey(room))
        {
            connection.Send(FrameWriter.Error(frame.Id, ErrorCodes.NotMember, $"Join room \"{room}\" before publishing to it."));
            return;
        }

        var grain = _grains.GetGrain<IRoomGrain>(GrainKeys.Of(connection.Namespace, room));
        var (ok, result) = await CallAsync(connection, frame.Id, () => grain.Publish(new PublishRequest(connection.User, frame.Data!, frame.MsgId, connection.Policy)));
        if (ok)
        {
            connection.Send(FrameWriter.PublishAck(frame.Id, room, result.Seq));
        }
    }

    private async Task SendAsync(ClientConnection connection, ClientFrame frame)
    {
        if (!connection.Options.ClientPublish)
        {
            connection.Send(FrameWriter.Error(frame.Id, ErrorCodes.Forbidden, $"Clients may not send messages in namespace \"{connection.Namespace}\"; only the server's HTTP API may."));
            return;
        }

        var grain = _grains.GetGrain<IUserGrain>(GrainKeys.Of(connection.Namespace, frame.To!));
        var message = new DirectMessage(connection.User, _time.GetUtcNow().ToUnixTimeMilliseconds(), frame.Data!);
        var (ok, delivered) = await CallAsync(connection, frame.Id, () => grain.Send(message));
        if (ok)
        {
            connection.Send(FrameWriter.SendAck(frame.Id, delivered));
        }
    }

    private async Task PresenceAsync(ClientConnection connection, ClientFrame frame)
    {
        var room = frame.Room!;
        if (!connection.Options.Presence)
        {
            connection.Send(FrameWriter.Error(frame.Id, ErrorCodes.Forbidden, $"Presence is turned off in namespace \"{connection.Namespace}\"."));
            return;
        }

        var grain = _grains.GetGrain<IRoomGrain>(GrainKeys.Of(connection.Namespace, room));
        var (ok, members) = await CallAsync(connection, frame.Id, () => grain.GetPresence());
        if (ok)
        {
            connection.Send(FrameWriter.Presence(frame.Id, room, members));
        }
    }

    private async Task HistoryAsync(ClientConnection connection, ClientFrame frame)
    {
        var room = frame.Room!;
        var window = connection.Options.History;
        var limit = Math.Min(frame.Limit ?? window, window);
        var grain = _grains.GetGrain<IRoomGrain>(GrainKeys.Of(connection.Namespace, room));
        var (ok, page) = await CallAsync(connection, frame.Id, () => grain.GetHistory(frame.Since, limit));
        if (ok)
        {
            connection.Send(FrameWriter.History(frame.Id, room, page.Epoch, page.Messages));
        }
    }

    private async Task CleanupAsync(ClientConnection connection, string userKey)
    {
        var calls = new List<Task>(connection.Rooms.Count + 1);
        foreach (var (room, membership) in connection.Rooms)
        {
            var key = GrainKeys.Of(connection.Namespace, room);
            _node.Rooms.Remove(key, membership);
            calls.Add(_grains.GetGrain<IRoomGrain>(key).Leave(connection.Id));
        }

        connection.Rooms.Clear();
        calls.Add(_grains.GetGrain<IUserGrain>(userKey).Disconnect(connection.Id));
        try
        {
            await Task.WhenAll(calls).WaitAsync(_options.ClusterCallTimeout);
        }
        catch (Exception ex)
        {
            LogCleanupFailed(_logger, connection.Id, ex);
        }
    }

    private async Task<bool> TryCallAsync(ClientConnection connection, byte[] id, Func<Task> call) =>
        (await CallAsync(connection, id, async () =>
        {
            await call();
            return true;
        })).Ok;

    /// <summary>
    /// Runs one cluster call for a frame. A timeout or an unreachable cluster becomes
    /// "unavailable", anything else "internal" (logged); either way the connection lives on.
    /// </summary>
    private async Task<(bool Ok, T Value)> CallAsync<T>(ClientConnection connection, byte[] id, Func<Task<T>> call)
    {
        try
        {
            return (true, await call().WaitAsync(_options.ClusterCallTimeout));
        }
        catch (Exception ex) when (ex is TimeoutException or OrleansException)
        {
            LogClusterUnavailable(_logger, connection.Id, ex);
            connection.Send(FrameWriter.Error(id, ErrorCodes.Unavailable, "The cluster could not answer in time; try again."));
            return (false, default!);
        }
        catch (Exception ex)
        {
            LogFrameFailed(_logger, connection.Id, ex);
            connection.Send(FrameWriter.Error(id, ErrorCodes.Internal, "The server failed to handle this frame; it has been logged."));
            return (false, default!);
        }
    }

    [LoggerMessage(Level = LogLevel.Debug, Message = "Connection {ConnectionId} opened in namespace {Namespace} as {User}")]
    private static partial void LogConnected(ILogger logger, string connectionId, string @namespace, string user);

    [LoggerMessage(Level = LogLevel.Debug, Message = "Connection {ConnectionId} closed (close status {CloseStatus})")]
    private static partial void LogDisconnected(ILogger logger, string connectionId, int closeStatus);

    [LoggerMessage(Level = LogLevel.Error, Message = "Connection {ConnectionId} failed")]
    private static partial void LogConnectionFailed(ILogger logger, string connectionId, Exception exception);

    [LoggerMessage(Level = LogLevel.Warning, Message = "Cleanup of connection {ConnectionId} did not finish; rooms drop it on their own")]
    private static partial void LogCleanupFailed(ILogger logger, string connectionId, Exception exception);

    [LoggerMessage(Level = LogLevel.Warning, Message = "Cluster unavailable for a frame of connection {ConnectionId}")]
    private static partial void LogClusterUnavailable(ILogger logger, string connectionId, Exception exception);

    [LoggerMessage(Level = LogLevel.Error, Message = "A frame of connection {ConnectionId} failed")]
    private static partial void LogFrameFailed(ILogger logger, string connectionId, Exception exception);
}
