namespace Broker.Streams;

/// <summary>
/// The rooms' stream provider (docs/streams.md, "Providers"): the "Streams" section of a silo
/// (<c>--streams</c>), the same on every silo of a cluster, the application's included, and on
/// an Orleans client that subscribes or produces itself.
/// </summary>
public sealed class BrokerStreamOptions
{
    public const string SectionName = "Streams";

    public const string Memory = "memory";

    /// <summary>Subscriptions value: explicit (SubscribeAsync) and implicit ([ImplicitStreamSubscription]).</summary>
    public const string AnySubscriptions = "any";

    /// <summary>Subscriptions value: implicit subscriptions only (no pub-sub grain, no subscription storage).</summary>
    public const string ImplicitSubscriptions = "implicit";

    /// <summary>
    /// "memory" (the only one): Orleans memory streams, lost with the silo that queues them. No
    /// durable provider is offered: docs/streams.md "Providers" says what was measured and why.
    /// </summary>
    public string Provider { get; set; } = Memory;

    /// <summary>Queues of the memory provider: rooms are spread over them, each pulled by one silo.</summary>
    public int Queues { get; set; } = 8;

    /// <summary>
    /// "any" (the default): explicit and implicit subscriptions. "implicit": implicit ones only;
    /// a new room's stream then needs no pub-sub grain and no write to the subscription storage.
    /// </summary>
    public string Subscriptions { get; set; } = AnySubscriptions;

    public IEnumerable<string> Validate()
    {
        if (Provider is not Memory)
        {
            yield return $"Streams:Provider must be \"{Memory}\" (no durable provider is offered: docs/streams.md, \"Providers\").";
        }

        if (Queues is < 1 or > 256)
        {
            yield return "Streams:Queues must be between 1 and 256.";
        }

        if (Subscriptions is not (AnySubscriptions or ImplicitSubscriptions))
        {
            yield return $"Streams:Subscriptions must be \"{AnySubscriptions}\" or \"{ImplicitSubscriptions}\".";
        }
    }
}
