using Broker.Grains.Storage;

namespace Broker.Grains;

/// <summary>How a caller of the cluster tells "try again later" from a bug: one definition for every caller.</summary>
public static class ClusterErrors
{
    /// <summary>
    /// True when a cluster call failed because the cluster could not answer now: a timeout, any
    /// Orleans runtime failure (an unreachable or dead silo, a gateway shedding load, a rejected
    /// message, a silo refusing new activations: <see cref="SiloOverloadedException"/>), a call
    /// the runtime cancelled (Orleans' distributed directory cancels a lookup whose owner silo
    /// just died, and the placement of the call's grain fails with it: seen in SiloKillTests), or
    /// a room store that could not commit. The client gets "unavailable" (or 1013); anything else
    /// is a defect and is answered "internal".
    /// </summary>
    public static bool IsClusterUnavailable(Exception exception) =>
        exception is TimeoutException or OrleansException or RoomStoreException or OperationCanceledException;
}
