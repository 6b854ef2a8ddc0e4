using System.Diagnostics;

namespace Broker.Frontend.Hosting;

/// <summary>
/// Cluster mode: starts the Orleans cluster client in the background, so that the host — and
/// Kestrel with it — starts at once, whether or not a silo is there. The client's own hosted
/// service would connect inside the host's start, which then waits (retrying for ever) for a
/// gateway before anything listens: no <c>/health/live</c> during a cold start. Here that
/// hosted service is taken out of the host's list (<see cref="ReplaceClientStart"/>) and run
/// by this one, which also is the client's connection retry filter: every second, for ever,
/// until a gateway answers or the host stops. What needs the cluster waits for
/// <see cref="IClusterReadiness.Connected"/>; requests that need it are answered 503 meanwhile.
/// </summary>
internal sealed partial class ClusterConnector : IHostedService, IClientConnectionRetryFilter, IDisposable
{
    /// <summary>The wait between two connection attempts.</summary>
    public static readonly TimeSpan RetryDelay = TimeSpan.FromSeconds(1);

    /// <summary>While waiting, a warning every this many attempts (a minute at <see cref="RetryDelay"/>); each attempt at Debug.</summary>
    public const int WarnEvery = 60;

    private readonly IHostedService[] _client;
    private readonly GatewayReadiness _readiness;
    private readonly IHostApplicationLifetime _lifetime;
    private readonly ILogger<ClusterConnector> _logger;
    private readonly CancellationTokenSource _stopping = new();
    private readonly Stopwatch _waiting = new();
    private Task _connecting = Task.CompletedTask;
    private int _started;
    private int _attempts;

    private ClusterConnector(IHostedService[] client, GatewayReadiness readiness, IHostApplicationLifetime lifetime, ILogger<ClusterConnector> logger)
    {
        _client = client;
        _readiness = readiness;
        _lifetime = lifetime;
        _logger = logger;
    }

    /// <summary>
    /// Replaces the hosted services registered since <paramref name="before"/> (the cluster
    /// client's, added by UseOrleansClient) with one that starts them in the background, and
    /// makes it the client's connection retry filter. Throws when there is none: an Orleans
    /// version that registers its client otherwise must not silently block start-up again.
    /// </summary>
    public static void ReplaceClientStart(IServiceCollection services, IReadOnlyCollection<ServiceDescriptor> before, GatewayReadiness readiness)
    {
        var client = services.Where(d => d.ServiceType == typeof(IHostedService) && !before.Contains(d)).ToList();
        if (client.Count == 0)
        {
            throw new InvalidOperationException("UseOrleansClient registered no hosted service: the cluster client's start cannot be moved off the host's start-up.");
        }

        foreach (var descriptor in client)
        {
            services.Remove(descriptor);
        }

        services.AddSingleton(provider => new ClusterConnector(
            [.. client.Select(d => Resolve(provider, d))],
            readiness,
            provider.GetRequiredService<IHostApplicationLifetime>(),
            provider.GetRequiredService<ILogger<ClusterConnector>>()));
        services.AddHostedService(provider => provider.GetRequiredService<ClusterConnector>());
        services.AddSingleton<IClientConnectionRetryFilter>(provider => provider.GetRequiredService<ClusterConnector>());

        // Not the connector itself: the client resolves its observers while it is built, and the connector is built from the client.
        services.AddSingleton<IClusterConnectionStatusObserver>(provider => new ChangeLog(readiness, provider.GetRequiredService<ILogger<ClusterConnector>>()));
    }

    /// <summary>The hosted services registered before UseOrleansClient (to tell the client's apart).</summary>
    public static IReadOnlyCollection<ServiceDescriptor> HostedServices(IServiceCollection services) =>
        services.Where(d => d.ServiceType == typeof(IHostedService)).ToHashSet();

    public Task StartAsync(CancellationToken cancellationToken)
    {
        _waiting.Start();
        _connecting = Task.Run(() => ConnectAsync(_stopping.Token), CancellationToken.None);
        return Task.CompletedTask;
    }

    public async Task StopAsync(CancellationToken cancellationToken)
    {
        await _stopping.CancelAsync();
        await _connecting.WaitAsync(cancellationToken).ConfigureAwait(ConfigureAwaitOptions.SuppressThrowing);

        // Only a client that started is stopped: one still waiting has nothing to close.
        var started = Volatile.Read(ref _started);
        for (var i = started - 1; i >= 0; i--)
        {
            await _client[i].StopAsync(cancellationToken);
        }
    }

    public async Task<bool> ShouldRetryConnectionAttempt(Exception exception, CancellationToken cancellationToken)
    {
        var attempt = Interlocked.Increment(ref _attempts);
        if (attempt == 1)
        {
            LogWaiting(_logger, exception.Message);
        }
        else if (attempt % WarnEvery == 0)
        {
            LogStillWaiting(_logger, _waiting.Elapsed.TotalSeconds, attempt, exception.Message);
        }
        else
        {
            LogAttemptFailed(_logger, attempt, exception.Message);
        }

        await Task.Delay(RetryDelay, cancellationToken);
        return true;
    }

    public void Dispose() => _stopping.Dispose();

    private async Task ConnectAsync(CancellationToken cancellationToken)
    {
        try
        {
            foreach (var service in _client)
            {
                await service.StartAsync(cancellationToken);
                Interlocked.Increment(ref _started);
            }

            _readiness.MarkConnected();
            LogConnected(_logger, _waiting.Elapsed.TotalSeconds, Volatile.Read(ref _attempts));
        }
        catch (Exception) when (cancellationToken.IsCancellationRequested)
        {
            LogGaveUp(_logger);
        }
        catch (Exception ex)
        {
            // Not a connection failure (those are retried): what would have failed the host's start.
            LogStartFailed(_logger, ex);
            Environment.ExitCode = 1;
            _lifetime.StopApplication();
        }
    }

    /// <summary>Says when the last gateway is lost and when one is back (readiness changes).</summary>
    private sealed class ChangeLog(GatewayReadiness readiness, ILogger logger) : IClusterConnectionStatusObserver
    {
        public void NotifyGatewayCountChanged(int currentNumberOfGateways, int previousNumberOfGateways, bool connectionRecovered)
        {
            if (previousNumberOfGateways == 0 && currentNumberOfGateways > 0 && readiness.Connected.IsCompleted)
            {
                LogGatewayBack(logger, currentNumberOfGateways);
            }
        }

        public void NotifyClusterConnectionLost() => LogConnectionLost(logger);
    }

    private static IHostedService Resolve(IServiceProvider provider, ServiceDescriptor descriptor) =>
        (IHostedService)(descriptor.ImplementationInstance
            ?? descriptor.ImplementationFactory?.Invoke(provider)
            ?? ActivatorUtilities.GetServiceOrCreateInstance(provider, descriptor.ImplementationType!));

    [LoggerMessage(EventId = 1500, Level = LogLevel.Information, Message = "Waiting for the cluster (no silo gateway answers yet: {Reason}); retrying every second. /health/live answers, /health/ready and new connections get 503 until then")]
    private static partial void LogWaiting(ILogger logger, string reason);

    [LoggerMessage(EventId = 1501, Level = LogLevel.Warning, Message = "Still waiting for the cluster after {Seconds:0} s ({Attempts} attempts): {Reason}")]
    private static partial void LogStillWaiting(ILogger logger, double seconds, int attempts, string reason);

    [LoggerMessage(EventId = 1502, Level = LogLevel.Debug, Message = "Cluster connection attempt {Attempt} failed: {Reason}")]
    private static partial void LogAttemptFailed(ILogger logger, int attempt, string reason);

    [LoggerMessage(EventId = 1503, Level = LogLevel.Information, Message = "Connected to the cluster after {Seconds:0.0} s ({Retries} retries)")]
    private static partial void LogConnected(ILogger logger, double seconds, int retries);

    [LoggerMessage(EventId = 1504, Level = LogLevel.Information, Message = "Stopped before the cluster was reached")]
    private static partial void LogGaveUp(ILogger logger);

    [LoggerMessage(EventId = 1506, Level = LogLevel.Warning, Message = "Lost every silo gateway: /health/ready answers 503 and new connections are refused until one is back")]
    private static partial void LogConnectionLost(ILogger logger);

    [LoggerMessage(EventId = 1507, Level = LogLevel.Information, Message = "Connected to a silo gateway again ({Gateways} now): ready")]
    private static partial void LogGatewayBack(ILogger logger, int gateways);

    [LoggerMessage(EventId = 1505, Level = LogLevel.Critical, Message = "The cluster client failed to start; stopping")]
    private static partial void LogStartFailed(ILogger logger, Exception exception);
}
