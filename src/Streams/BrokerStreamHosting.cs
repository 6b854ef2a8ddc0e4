using Broker.Grains.Streams;
using Microsoft.Extensions.DependencyInjection;
using Orleans.Hosting;
using Orleans.Streams;
using StackExchange.Redis;

namespace Broker.Streams;

/// <summary>
/// Adds the stream provider <see cref="BrokerStreams.ProviderName"/> to a silo or a client. Every
/// silo of the cluster calls it with the same options: the broker's silos, the embedded
/// front-end's silo, and application silos (samples/Bot).
/// </summary>
public static class BrokerStreamHosting
{
    /// <summary>
    /// The grain storage of explicit subscriptions ("PubSubStore", Orleans' fixed name). With a
    /// <paramref name="redis"/> they are kept there and survive silos; without one (a one-silo
    /// cluster) in memory.
    /// </summary>
    public static ISiloBuilder AddBrokerStreams(this ISiloBuilder silo, BrokerStreamOptions options, string? redis = null)
    {
        ArgumentNullException.ThrowIfNull(options);

        // Every silo of the broker's cluster, an application silo too, must use the directory the
        // broker's silos use (AddBrokerGrains): the strongly consistent one, under which a silo's
        // death resets no activation elsewhere (docs/design.md, "The grain directory"). An
        // application silo calls this method and nothing else of the broker's, so it is set here.
#pragma warning disable ORLEANSEXP003 // Experimental in Orleans 10; measured in docs/design.md.
        silo.AddDistributedGrainDirectory();
#pragma warning restore ORLEANSEXP003

        silo.AddMemoryStreams(BrokerStreams.ProviderName, streams =>
        {
            streams.ConfigurePartitioning(options.Queues);
            streams.ConfigureStreamPubSub(PubSubType(options));
        });

        // Pulling agents keep the implicit subscribers they found for a stream: ask again when an
        // application's grain type (re)joins the cluster (docs/streams.md, "When a silo fails").
        silo.Services.AddHostedService<ImplicitSubscriberRefresh>();

        if (string.IsNullOrEmpty(redis))
        {
            silo.AddMemoryGrainStorage(PubSubStore);
        }
        else
        {
            silo.AddRedisGrainStorage(PubSubStore, o =>
            {
                var configuration = ConfigurationOptions.Parse(redis);
                configuration.AbortOnConnectFail = false;
                o.ConfigurationOptions = configuration;
            });
        }

        return silo;
    }

    /// <summary>An Orleans client that subscribes or produces to room streams itself (grains calls need none of this).</summary>
    public static IClientBuilder AddBrokerStreams(this IClientBuilder client, BrokerStreamOptions options)
    {
        ArgumentNullException.ThrowIfNull(options);
        client.AddMemoryStreams(BrokerStreams.ProviderName, streams =>
        {
            streams.ConfigurePartitioning(options.Queues);
            streams.ConfigureStreamPubSub(PubSubType(options));
        });

        return client;
    }

    /// <summary>Orleans' name for the storage of stream subscriptions.</summary>
    public const string PubSubStore = "PubSubStore";

    /// <summary>
    /// Silo:Streams:Subscriptions. "any" (Orleans' default): the first item of every new stream
    /// registers its pulling agent with the stream's pub-sub grain, a write to PubSubStore.
    /// "implicit": only [ImplicitStreamSubscription] grains hear streams, and neither happens.
    /// </summary>
    private static StreamPubSubType PubSubType(BrokerStreamOptions options) =>
        options.Subscriptions == BrokerStreamOptions.ImplicitSubscriptions ? StreamPubSubType.ImplicitOnly : StreamPubSubType.ExplicitGrainBasedAndImplicit;
}
