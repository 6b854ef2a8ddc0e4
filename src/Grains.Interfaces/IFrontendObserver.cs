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

    /// <summary>Direct messages for one user's local connections, in the sender's order.</summary>
    [Alias("DeliverDirect")]
    Task DeliverDirect(DirectDelivery delivery);
}
