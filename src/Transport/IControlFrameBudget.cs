namespace Broker.Transport;

/// <summary>
/// What a connection's control frames (pings, pongs) spend: the same budget as its data frames,
/// so that a client cannot make the node answer more than its rate limit by pinging instead.
/// Called by the connection's receiving side only, one frame at a time.
/// </summary>
public interface IControlFrameBudget
{
    /// <summary>Takes one unit for a frame; false when the budget is spent (the frame is dropped).</summary>
    bool TryTake();
}
