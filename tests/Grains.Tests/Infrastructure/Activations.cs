namespace Broker.Grains.Tests.Infrastructure;

/// <summary>Whether a grain has an activation anywhere in the cluster, asked of Orleans' management grain (which activates nothing).</summary>
public static class Activations
{
    public static async Task<bool> IsActiveAsync(IClusterClient client, IAddressable grain) =>
        await client.GetGrain<IManagementGrain>(0).GetGrainActivationCount((GrainReference)grain) > 0;

    /// <summary>Completes once the grain has no activation; throws TimeoutException if it still has one after the timeout.</summary>
    public static async Task WaitUntilGoneAsync(IClusterClient client, IAddressable grain, string what, TimeSpan? timeout = null)
    {
        var deadline = DateTime.UtcNow + (timeout ?? RecordingFrontend.DefaultTimeout);
        while (await IsActiveAsync(client, grain))
        {
            if (DateTime.UtcNow > deadline)
            {
                throw new TimeoutException($"{what} was still active after {(timeout ?? RecordingFrontend.DefaultTimeout).TotalSeconds} s.");
            }

            // Deactivation has no event a client can wait on: ask again shortly.
            await Task.Delay(50);
        }
    }
}
