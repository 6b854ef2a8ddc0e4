namespace Broker.Frontend.Hosting;

/// <summary>Whether this front-end can reach the cluster: /healthz answers 200 only then.</summary>
public interface IClusterReadiness
{
    /// <summary>Connected to the cluster (its client started) and at least one gateway is there now.</summary>
    bool IsReady { get; }

    /// <summary>Grows each time a gateway connection is lost (a silo died or left): members are then restated.</summary>
    int GatewayLosses { get; }

    /// <summary>
    /// Completes when the cluster client has first connected; never faults. What needs the
    /// cluster (the heartbeat, the drain's farewell) waits for it instead of failing.
    /// </summary>
    Task Connected { get; }
}

/// <summary>Embedded mode: the co-hosted silo starts before the server accepts anything.</summary>
internal sealed class EmbeddedReadiness : IClusterReadiness
{
    public bool IsReady => true;

    public int GatewayLosses => 0;

    public Task Connected => Task.CompletedTask;
}

/// <summary>
/// Cluster mode: ready once the cluster client has connected (<see cref="ClusterConnector"/>)
/// and while at least one gateway is connected.
/// </summary>
internal sealed class GatewayReadiness : IClusterReadiness, IClusterConnectionStatusObserver
{
    private readonly TaskCompletionSource _connected = new(TaskCreationOptions.RunContinuationsAsynchronously);
    private int _gateways;
    private int _losses;

    private Task _warmedUp = Task.CompletedTask;

    /// <summary>Connected, warmed up (<see cref="FrontendWarmup"/>, the first time only) and a gateway there now.</summary>
    public bool IsReady => _connected.Task.IsCompleted && _warmedUp.IsCompleted && Volatile.Read(ref _gateways) > 0;

    /// <summary>Not ready before <paramref name="warmedUp"/> completes (set once, before the server listens).</summary>
    public void WaitForWarmup(Task warmedUp) => _warmedUp = warmedUp;

    public int GatewayLosses => Volatile.Read(ref _losses);

    public Task Connected => _connected.Task;

    /// <summary>The cluster client's start completed: it has a gateway and the cluster's manifest.</summary>
    public void MarkConnected() => _connected.TrySetResult();

    public void NotifyGatewayCountChanged(int currentNumberOfGateways, int previousNumberOfGateways, bool connectionRecovered)
    {
        Volatile.Write(ref _gateways, currentNumberOfGateways);
        if (currentNumberOfGateways < previousNumberOfGateways)
        {
            Interlocked.Increment(ref _losses);
        }
    }

    public void NotifyClusterConnectionLost()
    {
        Volatile.Write(ref _gateways, 0);
        Interlocked.Increment(ref _losses);
    }
}
