namespace Broker.Frontend.Hosting;

/// <summary>Whether this front-end can reach the cluster: /healthz answers 200 only then.</summary>
public interface IClusterReadiness
{
    bool IsReady { get; }

    /// <summary>Grows each time a gateway connection is lost (a silo died or left): members are then restated.</summary>
    int GatewayLosses { get; }
}

/// <summary>Embedded mode: the co-hosted silo starts before the server accepts anything.</summary>
internal sealed class EmbeddedReadiness : IClusterReadiness
{
    public bool IsReady => true;

    public int GatewayLosses => 0;
}

/// <summary>
/// Cluster mode: ready while at least one gateway is connected. Also the client's connection
/// retry filter: a front-end started before any silo keeps trying instead of exiting.
/// </summary>
internal sealed class GatewayReadiness : IClusterReadiness, IClusterConnectionStatusObserver
{
    private static readonly TimeSpan RetryDelay = TimeSpan.FromSeconds(1);
    private int _gateways;
    private int _losses;
    private int _attempts;

    public bool IsReady => Volatile.Read(ref _gateways) > 0;

    public int GatewayLosses => Volatile.Read(ref _losses);

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

    public async Task<bool> RetryConnectAsync(Exception exception, CancellationToken cancellationToken)
    {
        if (Interlocked.Increment(ref _attempts) % 10 == 1)
        {
            Console.Error.WriteLine($"Waiting for the cluster: {exception.Message}");
        }

        await Task.Delay(RetryDelay, cancellationToken);
        return true;
    }
}
