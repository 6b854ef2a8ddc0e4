using System.Collections.Immutable;
using Broker.Grains.Models;
using Microsoft.Extensions.Logging;

namespace Broker.Grains;

/// <summary>
/// How room and user grains learn their members from the front-ends (the source of truth for
/// their own sockets) and hear about front-ends that die.
/// </summary>
internal static partial class FrontendMembership
{
    /// <summary>How long a new activation waits for the list of live front-ends (the registry may be warming up).</summary>
    public static readonly TimeSpan RegistryTimeout = FrontendRegistryGrain.WarmUp + TimeSpan.FromSeconds(1);

    /// <summary>How long a new activation waits for a front-end's answer before going on without it.</summary>
    public static readonly TimeSpan RebuildTimeout = TimeSpan.FromSeconds(1);

    /// <summary>
    /// Asks every live front-end for its members of this grain and adds them. A front-end that
    /// does not answer in time is skipped: its own heartbeat restates its members later.
    /// </summary>
    public static async Task RebuildAsync<T>(
        IGrainFactory grains,
        ILogger logger,
        Func<FrontendLease, CancellationToken, Task<ImmutableArray<T>>> ask,
        Action<FrontendLease, ImmutableArray<T>> add,
        CancellationToken cancellationToken)
    {
        ImmutableArray<FrontendLease> frontends;
        try
        {
            frontends = await grains.Ref<IFrontendRegistryGrain>(IFrontendRegistryGrain.Key).GetLive().WaitAsync(RegistryTimeout, cancellationToken);
        }
        catch (Exception ex) when (ex is not OperationCanceledException || !cancellationToken.IsCancellationRequested)
        {
            LogRebuildSkipped(logger, ex);
            return;
        }

        if (frontends.IsEmpty)
        {
            return;
        }

        using var timeout = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken);
        timeout.CancelAfter(RebuildTimeout);
        var answers = await Task.WhenAll(frontends.Select(async frontend =>
        {
            try
            {
                return (frontend, Members: await ask(frontend, timeout.Token));
            }
            catch (Exception ex) when (ex is not OperationCanceledException || !cancellationToken.IsCancellationRequested)
            {
                LogFrontendSkipped(logger, frontend.FrontendId, ex);
                return (frontend, Members: ImmutableArray<T>.Empty);
            }
        }));
        foreach (var (frontend, members) in answers)
        {
            if (!members.IsDefaultOrEmpty)
            {
                add(frontend, members);
            }
        }
    }

    /// <summary>Asks the registry to tell the watcher when the front-end is lost (one-way).</summary>
    public static void Watch(IGrainFactory grains, string frontendId, IFrontendWatcher watcher) =>
        _ = grains.Ref<IFrontendRegistryGrain>(IFrontendRegistryGrain.Key).Watch(frontendId, watcher);

    /// <summary>Tells the registry the watcher has no members left on the front-end (one-way).</summary>
    public static void Unwatch(IGrainFactory grains, string frontendId, IFrontendWatcher watcher) =>
        _ = grains.Ref<IFrontendRegistryGrain>(IFrontendRegistryGrain.Key).Unwatch(frontendId, watcher);

    [LoggerMessage(EventId = 2110, Level = LogLevel.Warning, Message = "Could not list live front-ends; membership will come from their heartbeats")]
    private static partial void LogRebuildSkipped(ILogger logger, Exception exception);

    [LoggerMessage(EventId = 2111, Level = LogLevel.Warning, Message = "Front-end {FrontendId} did not say who its members are; its heartbeat will")]
    private static partial void LogFrontendSkipped(ILogger logger, string frontendId, Exception exception);
}
