using System.Collections.Immutable;
using Broker.Frontend.Connections;
using Broker.Frontend.Options;
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
/// is the source of truth for its own sockets. The routine restatement is spread over half the
/// interval (one call per room or user; a burst of them all at once stalls the silo's deliveries
/// for tens of milliseconds); one that rebuilds after a loss goes out at once.
/// </summary>
public sealed partial class FrontendHeartbeat : BackgroundService
{
    private static readonly TimeSpan RestateTick = TimeSpan.FromMilliseconds(100);

    private readonly FrontendNode _node;
    private readonly IGrainFactory _grains;
    private readonly BrokerOptions _options;
    private readonly ILogger<FrontendHeartbeat> _logger;
    private readonly IClusterReadiness _cluster;
    private int _knownFrontends;
    private bool _restateRequested;
    private int _gatewayLosses;

    public FrontendHeartbeat(FrontendNode node, IGrainFactory grains, IOptions<BrokerOptions> options, IClusterReadiness cluster, ILogger<FrontendHeartbeat> logger)
    {
        _cluster = cluster;
        _node = node;
        _grains = grains;
        _options = options.Value;
        _logger = logger;
    }

    protected override async Task ExecuteAsync(CancellationToken stoppingToken)
    {
        try
        {
            // Cluster mode: the cluster client connects in the background; nothing to renew before.
            await _cluster.Connected.WaitAsync(stoppingToken);
        }
        catch (OperationCanceledException)
        {
            // Stopped before the cluster was reached.
            return;
        }

        await Task.WhenAll(RenewLoopAsync(stoppingToken), RestateLoopAsync(stoppingToken));
    }

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
            var lease = new FrontendLease(_node.Id, _node.Reference, _options.LeaseTtl, Volatile.Read(ref _knownFrontends), _node.ConnectionCount);
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
            if (_cluster.IsReady)
            {
                LogRenewFailed(_logger, ex);
            }
            else
            {
                // Every silo is gone: said once by ClusterConnector, not every LeaseInterval.
                LogRenewFailedNoCluster(_logger, ex.GetType().Name, ex.Message);
            }
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
        _gatewayLosses = _cluster.GatewayLosses;
        using var timer = new PeriodicTimer(_options.LeaseInterval);
        try
        {
            while (await timer.WaitForNextTickAsync(stoppingToken))
            {
                if (owed || RebuildWanted() || _node.OwedLeaves.Count > 0)
                {
                    // Urgent: everything at once.
                    _gatewayLosses = _cluster.GatewayLosses;
                    Volatile.Write(ref _restateRequested, false);
                    lastSync = DateTime.UtcNow;
                    owed = !await BeatAsync(TimeSpan.Zero, stoppingToken);
                }
                else if (DateTime.UtcNow - lastSync >= _options.HeartbeatInterval)
                {
                    // Routine: spread over half the interval.
                    lastSync = DateTime.UtcNow;
                    owed = !await BeatAsync(_options.HeartbeatInterval / 2, stoppingToken);
                }
            }
        }
        catch (OperationCanceledException)
        {
            // Stopping.
        }
    }

    /// <summary>The registry did not know this front-end, or a gateway connection was lost since the last rebuild.</summary>
    private bool RebuildWanted() => Volatile.Read(ref _restateRequested) || _cluster.GatewayLosses != _gatewayLosses;

    /// <summary>
    /// Restates every local member; false when some room or user did not take it. With a
    /// <paramref name="spread"/>, the calls go out in equal slices every 100 ms over that time,
    /// each with the members of its room or user as they are when it leaves (not as they were
    /// when the restatement began, which would re-add connections closed meanwhile); the rest
    /// go at once if a rebuild becomes wanted meanwhile.
    /// </summary>
    internal async Task<bool> BeatAsync(TimeSpan spread, CancellationToken cancellationToken = default)
    {
        var calls = new List<Task>();
        foreach (var leave in _node.OwedLeaves)
        {
            calls.Add(SettleAsync(leave));
        }

        var rooms = _node.Rooms.Snapshot().Select(r => r.Key).ToList();
        var users = _node.Users.Snapshot().Select(u => u.Key).ToList();
        var total = rooms.Count + users.Count;
        var ticks = Math.Max(1, (int)(spread / RestateTick));
        var perTick = Math.Max(1, (total + ticks - 1) / ticks);
        var wantedBefore = RebuildWanted();
        for (var sent = 0; sent < total;)
        {
            var end = !wantedBefore && RebuildWanted() ? total : Math.Min(total, sent + perTick);
            for (; sent < end; sent++)
            {
                var call = sent < rooms.Count ? RestateRoom(rooms[sent]) : RestateUser(users[sent - rooms.Count]);
                if (call is not null)
                {
                    calls.Add(call);
                }
            }

            if (sent < total)
            {
                await Task.Delay(RestateTick, cancellationToken);
            }
        }

        try
        {
            await Task.WhenAll(calls).WaitAsync(_options.ClusterCallTimeout, cancellationToken);
            return true;
        }
        catch (Exception ex) when (ex is not OperationCanceledException)
        {
            if (_cluster.IsReady)
            {
                LogHeartbeatFailed(_logger, calls.Count(c => !c.IsCompletedSuccessfully), ex);
            }
            else
            {
                LogHeartbeatFailedNoCluster(_logger, calls.Count(c => !c.IsCompletedSuccessfully), ex.GetType().Name, ex.Message);
            }

            return false;
        }
    }

    private Task? RestateRoom(string key)
    {
        var memberships = _node.Rooms.Get(key);
        if (memberships.Length == 0)
        {
            return null;
        }

        var members = memberships.Select(m => new RoomMemberRef(m.Connection.Id, m.Connection.User)).ToImmutableArray();
        var policy = memberships[0].Connection.Policy;
        return _grains.Ref<IRoomGrain>(key).SyncFrontend(new FrontendRoomSync(_node.Id, _node.Reference, policy, members));
    }

    private Task? RestateUser(string key)
    {
        // Only what the grain knows: a generated anonymous id's grain is left asleep.
        var ids = _node.Users.Get(key).Where(c => c.UserGrainKnows).Select(c => c.Id).ToImmutableArray();
        if (ids.IsEmpty)
        {
            return null;
        }

        return _grains.Ref<IUserGrain>(key).SyncFrontend(_node.Id, _node.Reference, ids);
    }

    private async Task SettleAsync(OwedLeave leave)
    {
        await leave.SendAsync(_grains);
        _node.Settle(leave);
    }

    [LoggerMessage(EventId = 1020, Level = LogLevel.Information, Message = "Front-end {NodeId} registered with the cluster; restating its members")]
    private static partial void LogRegistered(ILogger logger, string nodeId);

    [LoggerMessage(EventId = 1021, Level = LogLevel.Warning, Message = "Could not renew this front-end's lease; retrying")]
    private static partial void LogRenewFailed(ILogger logger, Exception exception);

    [LoggerMessage(EventId = 1508, Level = LogLevel.Debug, Message = "Could not renew this front-end's lease while no silo gateway is connected: {ExceptionType}: {Reason}")]
    private static partial void LogRenewFailedNoCluster(ILogger logger, string exceptionType, string reason);

    [LoggerMessage(EventId = 1509, Level = LogLevel.Debug, Message = "Restating members to {Count} rooms and users failed while no silo gateway is connected: {ExceptionType}: {Reason}")]
    private static partial void LogHeartbeatFailedNoCluster(ILogger logger, int count, string exceptionType, string reason);

    [LoggerMessage(EventId = 1022, Level = LogLevel.Warning, Message = "Restating members to {Count} rooms and users did not complete; retrying in a moment")]
    private static partial void LogHeartbeatFailed(ILogger logger, int count, Exception exception);
}
