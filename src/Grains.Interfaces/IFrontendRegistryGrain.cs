using System.Collections.Immutable;
using Broker.Grains.Models;
using Orleans.Concurrency;

namespace Broker.Grains;

/// <summary>
/// Which front-ends are alive, by lease. Each front-end renews its lease every couple of
/// seconds; a lease that runs out means the front-end died (SIGKILL, network loss), and every
/// room and user that holds members there is told at once, so that the others see
/// member_left within seconds instead of waiting for a delivery to time out.
/// One activation (key <see cref="Key"/>) serves the cluster: its traffic is one renewal per
/// front-end per interval plus one watch per (room, front-end) pair.
/// </summary>
[Alias("Broker.IFrontendRegistryGrain")]
public interface IFrontendRegistryGrain : IGrainWithStringKey
{
    public const string Key = "frontends";

    /// <summary>
    /// Renews a front-end's lease. Fresh is true when the registry did not know it (a new
    /// front-end, a registry activation that was lost with its silo, or a front-end declared
    /// lost that came back): the front-end must then restate all its members.
    /// </summary>
    [Alias("Renew")]
    Task<RenewResult> Renew(FrontendLease lease);

    /// <summary>A front-end shutting down cleanly: forget it without telling its watchers.</summary>
    [Alias("Leave")]
    Task Leave(string frontendId);

    /// <summary>
    /// The live front-ends. A registry that was just rebuilt first waits (up to a few seconds)
    /// until as many front-ends have renewed as were known before, so that a room rebuilt from
    /// this list does not miss members.
    /// </summary>
    [AlwaysInterleave, Alias("GetLive")]
    Task<ImmutableArray<FrontendLease>> GetLive();

    /// <summary>Asks to be told (<see cref="IFrontendWatcher.FrontendLost"/>) when the front-end's lease runs out.</summary>
    [OneWay, Alias("Watch")]
    Task Watch(string frontendId, IFrontendWatcher watcher);

    /// <summary>
    /// The watcher has no members left on the front-end: it need not be told any more. Without it
    /// the registry would keep every user and room that ever had a member through a front-end
    /// until that front-end is lost, and then wake them all. Should this one-way call overtake a
    /// later <see cref="Watch"/>, the front-end's next restatement watches again; a front-end
    /// that dies before it is found by the grain's failing deliveries instead.
    /// </summary>
    [OneWay, Alias("Unwatch")]
    Task Unwatch(string frontendId, IFrontendWatcher watcher);
}

/// <summary>A grain holding members on front-ends: told when one of them is lost.</summary>
[Alias("Broker.IFrontendWatcher")]
public interface IFrontendWatcher : IGrainWithStringKey
{
    [OneWay, Alias("FrontendLost")]
    Task FrontendLost(string frontendId);
}
