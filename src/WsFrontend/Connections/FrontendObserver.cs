using System.Collections.Immutable;
using Broker.Frontend.Protocol;
using Broker.Grains;
using Broker.Grains.Models;

namespace Broker.Frontend.Connections;

/// <summary>
/// This process's single delivery observer. Each room event is encoded once and the same bytes
/// are queued to every local member; nothing here waits on a socket.
/// </summary>
public sealed class FrontendObserver : IFrontendObserver
{
    private readonly LocalIndex<RoomMembership> _rooms;
    private readonly LocalIndex<ClientConnection> _users;

    public FrontendObserver(LocalIndex<RoomMembership> rooms, LocalIndex<ClientConnection> users)
    {
        _rooms = rooms;
        _users = users;
    }

    public Task DeliverRoom(RoomDelivery delivery)
    {
        var members = _rooms.Get(GrainKeys.Of(delivery.Namespace, delivery.Room));
        if (members.Length == 0)
        {
            return Task.CompletedTask;
        }

        foreach (var roomEvent in delivery.Events)
        {
            if (roomEvent.Kind == RoomEventKind.Message && roomEvent.Message is { } message)
            {
                var frame = FrameWriter.Message(delivery.Room, delivery.Epoch, message);
                foreach (var member in members)
                {
                    member.Offer(delivery.Epoch, roomEvent.Version, frame);
                }
            }
            else
            {
                // Member events tell the others: a user is not told about its own arrival or departure.
                var frame = FrameWriter.MemberEvent(roomEvent.Kind == RoomEventKind.MemberJoined, delivery.Room, roomEvent.User);
                foreach (var member in members)
                {
                    if (member.Connection.User != roomEvent.User)
                    {
                        member.Offer(delivery.Epoch, roomEvent.Version, frame);
                    }
                }
            }
        }

        return Task.CompletedTask;
    }

    public Task<ImmutableArray<RoomMemberRef>> GetRoomMembers(string ns, string room) =>
        Task.FromResult(_rooms.Get(GrainKeys.Of(ns, room)).Select(m => new RoomMemberRef(m.Connection.Id, m.Connection.User)).ToImmutableArray());

    public Task<ImmutableArray<string>> GetUserConnections(string ns, string user) =>
        Task.FromResult(_users.Get(GrainKeys.Of(ns, user)).Select(c => c.Id).ToImmutableArray());

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

        return Task.CompletedTask;
    }
}
