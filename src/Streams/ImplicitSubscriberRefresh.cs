using Broker.Grains.Streams;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Logging;
using Orleans.Metadata;
using Orleans.Providers;
using Orleans.Providers.Streams.Common;
using Orleans.Runtime;
using Orleans.Streams;

namespace Broker.Streams;

/// <summary>
/// Restarts this silo's pulling agents of the provider <see cref="BrokerStreams.ProviderName"/>
/// when a grain type with an implicit stream subscription appears in the cluster (an
/// application's silo joined, or came back). Orleans' pulling agent asks who subscribes to a
/// stream once, when the stream's first item reaches it, and keeps the answer until the stream
/// has been quiet for <c>StreamInactivityPeriod</c> (30 minutes): a room whose stream was
/// registered while no silo hosted the application's grain type would otherwise stay silent for
/// that grain (docs/streams.md, "When a silo fails"). New agents ask again. Items an agent had
/// taken and not yet delivered are lost, as when a queue moves to another silo.
/// </summary>
internal sealed partial class ImplicitSubscriberRefresh(
    IClusterManifestProvider manifests,
    IServiceProvider services,
    ILogger<ImplicitSubscriberRefresh> logger) : BackgroundService
{
    protected override async Task ExecuteAsync(CancellationToken stoppingToken)
    {
        HashSet<string>? known = null;
        try
        {
            await foreach (var manifest in manifests.Updates.WithCancellation(stoppingToken))
            {
                var current = StreamSubscriberTypes(manifest);
                var added = known is null ? [] : current.Except(known, StringComparer.Ordinal).ToList();
                known = current;
                if (added.Count > 0)
                {
                    await RestartAgentsAsync(added);
                }
            }
        }
        catch (OperationCanceledException) when (stoppingToken.IsCancellationRequested)
        {
            // Silo stopping.
        }
    }

    private async Task RestartAgentsAsync(List<string> added)
    {
        if (services.GetKeyedService<IStreamProvider>(BrokerStreams.ProviderName) is not IControllable provider)
        {
            return;
        }

        LogRestarting(logger, string.Join(", ", added));
        try
        {
            await provider.ExecuteCommand((int)PersistentStreamProviderCommand.StopAgents, null);
            await provider.ExecuteCommand((int)PersistentStreamProviderCommand.StartAgents, null);
        }
        catch (Exception ex) when (ex is ArgumentException or OrleansException or InvalidOperationException)
        {
            // The agents are not running yet (the silo is starting) or no more (stopping): agents
            // started later ask afresh anyway.
            LogRestartFailed(logger, ex);
        }
    }

    /// <summary>The grain types of the cluster that have a stream binding (an implicit subscription).</summary>
    internal static HashSet<string> StreamSubscriberTypes(ClusterManifest manifest)
    {
        var types = new HashSet<string>(StringComparer.Ordinal);
        foreach (var silo in manifest.AllGrainManifests)
        {
            foreach (var (grainType, properties) in silo.Grains)
            {
                foreach (var (key, value) in properties.Properties)
                {
                    if (key.StartsWith(WellKnownGrainTypeProperties.BindingPrefix + ".", StringComparison.Ordinal)
                        && key.EndsWith("." + WellKnownGrainTypeProperties.BindingTypeKey, StringComparison.Ordinal)
                        && value == WellKnownGrainTypeProperties.StreamBindingTypeValue)
                    {
                        types.Add(grainType.ToString());
                        break;
                    }
                }
            }
        }

        return types;
    }

    [LoggerMessage(EventId = 3101, Level = LogLevel.Information, Message = "Grain types with an implicit stream subscription joined the cluster ({GrainTypes}): restarting this silo's pulling agents of the rooms' streams, so that they ask again who subscribes")]
    private static partial void LogRestarting(ILogger logger, string grainTypes);

    [LoggerMessage(EventId = 3102, Level = LogLevel.Warning, Message = "Restarting this silo's pulling agents of the rooms' streams failed; streams registered while the new subscriber's silo was missing stay without it until quiet for 30 minutes")]
    private static partial void LogRestartFailed(ILogger logger, Exception exception);
}
