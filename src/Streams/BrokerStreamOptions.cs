namespace Broker.Streams;

/// <summary>
/// The rooms' stream provider (docs/streams.md, "Providers"): the "Streams" section of a silo
/// (<c>--streams</c>, <c>--nats</c>), the same on every silo of a cluster, the application's
/// included, and on an Orleans client that subscribes or produces itself.
/// </summary>
public sealed class BrokerStreamOptions
{
    public const string SectionName = "Streams";

    public const string Memory = "memory";

    public const string NatsProvider = "nats";

    /// <summary>Subscriptions value: explicit (SubscribeAsync) and implicit ([ImplicitStreamSubscription]).</summary>
    public const string AnySubscriptions = "any";

    /// <summary>Subscriptions value: implicit subscriptions only (no pub-sub grain, no subscription storage).</summary>
    public const string ImplicitSubscriptions = "implicit";

    /// <summary>
    /// "memory" (the default): Orleans memory streams, lost with the silo that queues them.
    /// "nats": NATS JetStream at <see cref="Nats"/>.
    /// </summary>
    public string Provider { get; set; } = Memory;

    /// <summary>Queues (NATS: partitions of the JetStream stream): rooms are spread over them, each pulled by one silo.</summary>
    public int Queues { get; set; } = 8;

    /// <summary>
    /// "any" (the default): explicit and implicit subscriptions. "implicit": implicit ones only;
    /// a new room's stream then needs no pub-sub grain and no write to the subscription storage.
    /// </summary>
    public string Subscriptions { get; set; } = AnySubscriptions;

    /// <summary>The NATS server(s) when Provider is "nats": "nats://HOST:PORT", several separated by commas.</summary>
    public string? Nats { get; set; }

    /// <summary>The JetStream stream the provider creates and uses (one per cluster sharing the NATS server).</summary>
    public string NatsStream { get; set; } = "broker";

    public IEnumerable<string> Validate()
    {
        if (Provider is not (Memory or NatsProvider))
        {
            yield return $"Streams:Provider must be \"{Memory}\" or \"{NatsProvider}\".";
        }

        if (Queues is < 1 or > 256)
        {
            yield return "Streams:Queues must be between 1 and 256.";
        }

        if (Subscriptions is not (AnySubscriptions or ImplicitSubscriptions))
        {
            yield return $"Streams:Subscriptions must be \"{AnySubscriptions}\" or \"{ImplicitSubscriptions}\".";
        }

        if (Provider == NatsProvider)
        {
            if (string.IsNullOrWhiteSpace(Nats))
            {
                yield return "Streams:Provider=nats needs --nats (Streams:Nats), e.g. nats://127.0.0.1:4222.";
            }
            else if (!Nats.Split(',').All(IsNatsUrl))
            {
                yield return "Streams:Nats must be nats://HOST:PORT (or tls://), several separated by commas.";
            }

            if (string.IsNullOrWhiteSpace(NatsStream) || NatsStream.Any(c => c is '.' or '*' or '>' or '/' or '\\' || char.IsWhiteSpace(c) || char.IsControl(c)))
            {
                yield return "Streams:NatsStream must be a JetStream stream name (no spaces, '.', '*', '>', '/', '\\').";
            }
        }
    }

    private static bool IsNatsUrl(string url) =>
        Uri.TryCreate(url.Trim(), UriKind.Absolute, out var uri)
        && uri.Scheme is "nats" or "tls"
        && !string.IsNullOrEmpty(uri.Host);
}
