using System.Net;
using Broker.Grains.Hosting;
using Broker.Grains.Tests.Infrastructure;
using Broker.Streams;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Hosting;
using Orleans.Configuration;
using Orleans.TestingHost;

namespace Broker.Grains.Tests.Streams;

/// <summary>
/// A two-silo test cluster whose silos have the rooms' stream provider (AddBrokerStreams, memory
/// streams), as the broker's silos do. Besides the TestingHost's own client, tests may open more
/// Orleans clients: one per "front-end".
/// </summary>
public sealed class StreamClusterFixture() : TestClusterFixture<StreamClusterFixture.StreamSiloConfigurator>(silos: 2)
{
    /// <summary>Another Orleans client of the cluster, as a second front-end process has; dispose it at the end.</summary>
    public async Task<IHost> NewClientAsync()
    {
        var gateways = Cluster.GetActiveSilos()
            .Where(s => s.GatewayAddress is not null)
            .Select(s => new IPEndPoint(s.GatewayAddress.Endpoint.Address, s.GatewayAddress.Endpoint.Port))
            .ToArray();
        var host = new HostBuilder()
            .UseOrleansClient(client =>
            {
                client.UseStaticClustering(gateways);
                client.Configure<ClusterOptions>(o =>
                {
                    o.ClusterId = Cluster.Options.ClusterId;
                    o.ServiceId = Cluster.Options.ServiceId;
                });
            })
            .Build();
        await host.StartAsync();
        return host;
    }

    public sealed class StreamSiloConfigurator : ISiloConfigurator
    {
        public void Configure(ISiloBuilder siloBuilder) =>
            siloBuilder.AddBrokerGrains().AddBrokerStreams(new BrokerStreamOptions());
    }
}

[CollectionDefinition(Name)]
public sealed class StreamClusterCollection : ICollectionFixture<StreamClusterFixture>
{
    public const string Name = "stream-cluster";
}

/// <summary>The sum of a counter of the Broker meter by one tag's value, for the silos of this process.</summary>
public sealed class BrokerCounter : IDisposable
{
    private readonly System.Diagnostics.Metrics.MeterListener _listener = new();
    private readonly object _gate = new();
    private readonly Dictionary<string, long> _byTag = new(StringComparer.Ordinal);
    private readonly List<(Func<BrokerCounter, bool> Condition, TaskCompletionSource Done)> _waiters = [];

    public BrokerCounter(string instrument, string tag)
    {
        _listener.InstrumentPublished = (i, listener) =>
        {
            if (i.Meter.Name == Diagnostics.SiloMetrics.MeterName && i.Name == instrument)
            {
                listener.EnableMeasurementEvents(i);
            }
        };
        _listener.SetMeasurementEventCallback<long>((_, value, tags, _) =>
        {
            var key = string.Empty;
            foreach (var t in tags)
            {
                if (t.Key == tag)
                {
                    key = t.Value?.ToString() ?? string.Empty;
                }
            }

            List<TaskCompletionSource> ready = [];
            lock (_gate)
            {
                _byTag[key] = _byTag.GetValueOrDefault(key) + value;
                for (var i = _waiters.Count - 1; i >= 0; i--)
                {
                    if (_waiters[i].Condition(this))
                    {
                        ready.Add(_waiters[i].Done);
                        _waiters.RemoveAt(i);
                    }
                }
            }

            foreach (var done in ready)
            {
                done.TrySetResult();
            }
        });
        _listener.Start();
    }

    public long this[string tagValue]
    {
        get
        {
            lock (_gate)
            {
                return _byTag.GetValueOrDefault(tagValue);
            }
        }
    }

    /// <summary>Completes once the count for <paramref name="tagValue"/> reaches <paramref name="atLeast"/>.</summary>
    public async Task WaitForAsync(string tagValue, long atLeast, TimeSpan? timeout = null)
    {
        var entry = ((Func<BrokerCounter, bool>)(c => c._byTag.GetValueOrDefault(tagValue) >= atLeast), new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously));
        lock (_gate)
        {
            if (entry.Item1(this))
            {
                return;
            }

            _waiters.Add(entry);
        }

        try
        {
            await entry.Item2.Task.WaitAsync(timeout ?? StreamRecording.DefaultTimeout);
        }
        catch (TimeoutException)
        {
            throw new TimeoutException($"The counter reached {this[tagValue]} for {tagValue}, not {atLeast}.");
        }
    }

    public void Dispose() => _listener.Dispose();
}
