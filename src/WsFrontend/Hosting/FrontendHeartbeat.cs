using System.Collections.Immutable;
using Broker.Frontend.Connections;
using Broker.Grains;
using Broker.Grains.Models;
using Microsoft.Extensions.Options;

namespace Broker.Frontend.Hosting;

/// <summary>
/// Keeps this front-end known to the cluster. Every LeaseInterval it renews its lease with the
/// front-end registry (a front-end that stops renewing is declared lost after LeaseTtl, and its
/// members leave their rooms). Every HeartbeatInterval — and at once when the registry did not
/// know it — it restates its members to each room and user grain it has connections in: that
/// keeps those activations alive and rebuilds whatever a lost activation forgot. The front-end
/// is the source of truth for its own sockets.
/// </summary>
public sealed partial class FrontendHeartbeat : BackgroundService
{
    private readonly FrontendNode _node;
    private readonly IGrainFactory _grains;
    private readonly BrokerOptions _options;
    private readonly ILogger<FrontendHeartbeat> _logger;
    private readonly IClusterReadiness _cluster;
    private int _knownFrontends;
    private bool _restateRequested;

    public FrontendHeartbeat(FrontendNode node, IGrainFactory grains, IOptions<BrokerOptions> options, IClusterReadiness cluster, ILogger<FrontendHeartbeat> logger)
    {
        _cluster = cluster;
        _node = node;
        _grains = grains;
        _options = options.Value;
        _logger = logger;
    }

    protected override Task ExecuteAsync(CancellationToken stoppingToken) =>
        Task.WhenAll(RenewLoopAsync(stoppingToken), RestateLoopAsync(stoppingToken));

    /// <summary>
    /// Renews the lease every LeaseInterval, whatever else is slow: a renewal never waits for
    /// another, nor for a restatement, so a healthy front-end is never declared lost because
    /// calls to a dead silo hang elsewhere.
    /// </summary>
    private async Task RenewLoopAsync(CancellationToken stoppingToken)
    {
        var registry = _grains.GetGrain<IFrontendRegistryGrain>(IFrontendRegistryGrain.Key);
        using var timer = new PeriodicTimer(_options.LeaseInterval);
        try
        {
            do
            {
                _ = RenewOnceAsync(registry, stoppingToken);
            }
            while (await timer.WaitForNextTickAsync(stoppingToken));
        }
        catch (OperationCanceledException)
        {
            // Stopping.
        }
    }

    private async Task RenewOnceAsync(IFrontendRegistryGrain registry, CancellationToken stoppingToken)
    {
        try
        {
            var lease = new FrontendLease(_node.Id, _node.Reference, _options.LeaseTtl, Volatile.Read(ref _knownFrontends));
            var renewed = await registry.Renew(lease).WaitAsync(_options.LeaseTtl, stoppingToken);
            Volatile.Write(ref _knownFrontends, renewed.LiveFrontends);
            if (renewed.Fresh)
            {
                LogRegistered(_logger, _node.Id);
                Volatile.Write(ref _restateRequested, true);
            }
        }
        catch (Exception ex) when (ex is not OperationCanceledException)
        {
            LogRenewFailed(_logger, ex);
        }
        catch (OperationCanceledException)
        {
            // Stopping.
        }
    }

    /// <summary>
    /// Restates members every HeartbeatInterval, and at the next LeaseInterval tick when the
    /// registry did not know this front-end, when a gateway connection was lost (a silo died or
    /// left: its rooms come back elsewhere, empty), or when the last restatement did not land.
    /// </summary>
    private async Task RestateLoopAsync(CancellationToken stoppingToken)
    {
        var lastSync = DateTime.UtcNow;
        var owed = false;
        var losses = _cluster.GatewayLosses;
        using var timer = new PeriodicTimer(_options.LeaseInterval);
        try
        {
            while (await timer.WaitForNextTickAsync(stoppingToken))
            {
                var lossesNow = _cluster.GatewayLosses;
                var requested = Volatile.Read(ref _restateRequested);
                if (!(owed || requested || lossesNow != losses || _node.OwedLeaves.Count > 0 || DateTime.UtcNow - lastSync >= _options.HeartbeatInterval))
                {
                    continue;
                }

                losses = lossesNow;
                Volatile.Write(ref _restateRequested, false);
                lastSync = DateTime.UtcNow;
                owed = !await BeatAsync(stoppingToken);
            }
        }
        catch (OperationCanceledException)
        {
            // Stopping.
        }
    }

    /// <summary>Restates every local member; false when some room or user did not take it.</summary>
    internal async Task<bool> BeatAsync(CancellationToken cancellationToken = default)
    {
        var calls = new List<Task>();
        foreach (var leave in _node.OwedLeaves)
        {
            calls.Add(SettleAsync(leave));
        }

        foreach (var (key, memberships) in _node.Rooms.Snapshot())
        {
            var members = memberships.Select(m => new RoomMemberRef(m.Connection.Id, m.Connection.User)).ToImmutableArray();
            var policy = memberships[0].Connection.Policy;
            calls.Add(_grains.Ref<IRoomGrain>(key).SyncFrontend(new FrontendRoomSync(_node.Id, _node.Reference, policy, members)));
        }

        foreach (var (key, connections) in _node.Users.Snapshot())
        {
            var ids = connections.Select(c => c.Id).ToImmutableArray();
            calls.Add(_grains.Ref<IUserGrain>(key).SyncFrontend(_node.Id, _node.Reference, ids));
        }

        try
        {
            await Task.WhenAll(calls).WaitAsync(_options.ClusterCallTimeout, cancellationToken);
            return true;
        }
        catch (Exception ex) when (ex is not OperationCanceledException)
        {
            LogHeartbeatFailed(_logger, calls.Count(c => !c.IsCompletedSuccessfully), ex);
            return false;
        }
    }

    private async Task SettleAsync(OwedLeave leave)
    {
        await leave.SendAsync(_grains);
        _node.Settle(leave);
    }

    [LoggerMessage(Level = LogLevel.Information, Message = "Front-end {NodeId} registered with the cluster; restating its members")]
    private static partial void LogRegistered(ILogger logger, string nodeId);

    [LoggerMessage(Level = LogLevel.Warning, Message = "Could not renew this front-end's lease; retrying")]
    private static partial void LogRenewFailed(ILogger logger, Exception exception);

    [LoggerMessage(Level = LogLevel.Warning, Message = "Restating members to {Count} rooms and users did not complete; retrying in a moment")]
    private static partial void LogHeartbeatFailed(ILogger logger, int count, Exception exception);
}
