using System.Collections.Immutable;
using Broker.Frontend.Connections;
using Broker.Grains;
using Broker.Grains.Models;
using Microsoft.Extensions.Options;

namespace Broker.Frontend.Hosting;

/// <summary>
/// Every HeartbeatInterval, restates this front-end's members to each room and user grain it
/// has connections in. That keeps those activations alive while they have members and rebuilds
/// their membership if an activation was lost — the front-end is the source of truth for its
/// own sockets.
/// </summary>
public sealed partial class FrontendHeartbeat : BackgroundService
{
    private readonly FrontendNode _node;
    private readonly IGrainFactory _grains;
    private readonly BrokerOptions _options;
    private readonly ILogger<FrontendHeartbeat> _logger;

    public FrontendHeartbeat(FrontendNode node, IGrainFactory grains, IOptions<BrokerOptions> options, ILogger<FrontendHeartbeat> logger)
    {
        _node = node;
        _grains = grains;
        _options = options.Value;
        _logger = logger;
    }

    protected override async Task ExecuteAsync(CancellationToken stoppingToken)
    {
        using var timer = new PeriodicTimer(_options.HeartbeatInterval);
        try
        {
            while (await timer.WaitForNextTickAsync(stoppingToken))
            {
                await BeatAsync(stoppingToken);
            }
        }
        catch (OperationCanceledException)
        {
            // Stopping.
        }
    }

    internal async Task BeatAsync(CancellationToken cancellationToken = default)
    {
        var calls = new List<Task>();
        foreach (var (key, memberships) in _node.Rooms.Snapshot())
        {
            var members = memberships.Select(m => new RoomMemberRef(m.Connection.Id, m.Connection.User)).ToImmutableArray();
            var policy = memberships[0].Connection.Policy;
            calls.Add(_grains.GetGrain<IRoomGrain>(key).SyncFrontend(new FrontendRoomSync(_node.Id, _node.Reference, policy, members)));
        }

        foreach (var (key, connections) in _node.Users.Snapshot())
        {
            var ids = connections.Select(c => c.Id).ToImmutableArray();
            calls.Add(_grains.GetGrain<IUserGrain>(key).SyncFrontend(_node.Id, _node.Reference, ids));
        }

        try
        {
            await Task.WhenAll(calls).WaitAsync(_options.ClusterCallTimeout, cancellationToken);
        }
        catch (Exception ex) when (ex is not OperationCanceledException)
        {
            LogHeartbeatFailed(_logger, calls.Count, ex);
        }
    }

    [LoggerMessage(Level = LogLevel.Warning, Message = "Heartbeat to {Count} rooms and users did not complete; retrying next interval")]
    private static partial void LogHeartbeatFailed(ILogger logger, int count, Exception exception);
}
