using Broker.Frontend.Connections;
using Broker.Frontend.Options;
using Broker.Frontend.Protocol;
using Broker.Grains;
using Microsoft.Extensions.Options;

namespace Broker.Frontend.Hosting;

/// <summary>
/// On shutdown (Ctrl+C, SIGTERM), before the server or the cluster client stops: every socket
/// gets close 1012 after the frames already queued for it, and every connection leaves its
/// rooms, so that other members see member_left instead of ghosts.
/// </summary>
public sealed partial class ConnectionDrainService : IHostedLifecycleService
{
    private readonly FrontendNode _node;
    private readonly IGrainFactory _grains;
    private readonly BrokerOptions _options;
    private readonly ILogger<ConnectionDrainService> _logger;
    private readonly IClusterReadiness _cluster;

    public ConnectionDrainService(FrontendNode node, IGrainFactory grains, IOptions<BrokerOptions> options, IClusterReadiness cluster, ILogger<ConnectionDrainService> logger)
    {
        _cluster = cluster;
        _node = node;
        _grains = grains;
        _options = options.Value;
        _logger = logger;
    }

    public async Task StoppingAsync(CancellationToken cancellationToken)
    {
        var count = _node.ConnectionCount;
        LogDraining(_logger, _node.Id, count);
        try
        {
            var budget = _options.CloseTimeout + _options.CloseTimeout + _options.ClusterCallTimeout;
            await _node.CloseAllAsync(CloseCodes.ServiceRestart, "Server shutting down; reconnect to any node.").WaitAsync(budget, cancellationToken);
        }
        catch (Exception ex) when (ex is TimeoutException or OperationCanceledException)
        {
            LogDrainIncomplete(_logger, _node.ConnectionCount);
        }

        if (!_cluster.Connected.IsCompleted)
        {
            // Stopped while still waiting for the cluster: it never knew this front-end.
            return;
        }

        try
        {
            // Leaving cleanly: the registry forgets this front-end without declaring it lost.
            await _grains.GetGrain<IFrontendRegistryGrain>(IFrontendRegistryGrain.Key).Leave(_node.Id).WaitAsync(_options.ClusterCallTimeout, cancellationToken);
        }
        catch (Exception ex) when (ex is TimeoutException or OperationCanceledException or OrleansException)
        {
            LogLeaveFailed(_logger, ex);
        }
    }

    public Task StartingAsync(CancellationToken cancellationToken) => Task.CompletedTask;

    public Task StartAsync(CancellationToken cancellationToken) => Task.CompletedTask;

    public Task StartedAsync(CancellationToken cancellationToken) => Task.CompletedTask;

    public Task StopAsync(CancellationToken cancellationToken) => Task.CompletedTask;

    public Task StoppedAsync(CancellationToken cancellationToken) => Task.CompletedTask;

    [LoggerMessage(EventId = 1010, Level = LogLevel.Information, Message = "Front-end {NodeId} shutting down: closing {Count} connections with 1012")]
    private static partial void LogDraining(ILogger logger, string nodeId, int count);

    [LoggerMessage(EventId = 1011, Level = LogLevel.Warning, Message = "Could not tell the cluster this front-end is leaving; its lease will run out")]
    private static partial void LogLeaveFailed(ILogger logger, Exception exception);

    [LoggerMessage(EventId = 1012, Level = LogLevel.Warning, Message = "Shutdown went on with {Count} connections still closing")]
    private static partial void LogDrainIncomplete(ILogger logger, int count);
}
