using System.Collections.Immutable;
using Broker.Grains.Models;

namespace Broker.Grains;

/// <summary>
/// One observer per front-end process. Rooms and users push to it; the front-end fans out to
/// its local sockets. Calls are awaited on purpose (not [OneWay]): one-way calls were measured
/// to arrive reordered on Orleans 10, and each sender keeps at most one call in flight per
/// front-end, so awaited calls preserve per-room order without costing throughput.
/// </summary>
[Alias("Broker.IFrontendObserver")]
public interface IFrontendObserver : IGrainObserver
{
    /// <summary>Events of one room, in the room's order. Never called concurrently for one room.</summary>
    [Alias("DeliverRoom")]
    Task DeliverRoom(RoomDelivery delivery);

    /// <summary>
    /// Events of several rooms, each in its room's order: what the rooms of one silo had for
    /// this front-end while its previous call was in flight, in one call (docs/design.md,
    /// "One call per front-end"). At most one delivery of a room per call, and never two calls
    /// concurrently for one room. Added in issue 18: a silo sends it only to front-ends that
    /// have it (docs/operations.md, "Rolling upgrades").
    /// </summary>
    [Alias("DeliverRooms")]
    Task DeliverRooms(ImmutableArray<RoomDelivery> deliveries);

    /// <summary>Direct messages for one user's local connections, in the sender's order.</summary>
    [Alias("DeliverDirect")]
    Task DeliverDirect(DirectDelivery delivery);

    /// <summary>This front-end's members of a room: how a new room activation rebuilds its membership.</summary>
    [Alias("GetRoomMembers")]
    Task<ImmutableArray<RoomMemberRef>> GetRoomMembers(string ns, string room);

    /// <summary>This front-end's connections of a user: how a new user activation rebuilds itself.</summary>
    [Alias("GetUserConnections")]
    Task<ImmutableArray<string>> GetUserConnections(string ns, string user);

    /// <summary>
    /// Closes this front-end's connections of a user (policy violation, 1008, with the reason
    /// given: at most 123 bytes of UTF-8) and returns how many it closed. Added in v1.1 for the
    /// server API's disconnect: a front-end of an older version does not know this call, and
    /// the caller counts it as closing nothing (docs/operations.md, "Rolling upgrades").
    /// </summary>
    [Alias("CloseUserConnections")]
    Task<int> CloseUserConnections(string ns, string user, string reason);
}
