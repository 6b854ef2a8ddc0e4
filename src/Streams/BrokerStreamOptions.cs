namespace Broker.Streams;

/// <summary>
/// The rooms' stream provider (docs/streams.md, "Providers"): the "Streams" section of a silo
/// (<c>--streams</c>), the same on every silo of a cluster, the application's included.
/// </summary>
public sealed class BrokerStreamOptions
{
    public const string SectionName = "Streams";

    public const string Memory = "memory";

    /// <summary>"memory" (the default): Orleans memory streams, lost with the silo that queues them.</summary>
    public string Provider { get; set; } = Memory;

    /// <summary>Queues of the memory provider: rooms are spread over them, each pulled by one silo.</summary>
    public int Queues { get; set; } = 8;

    public IEnumerable<string> Validate()
    {
        if (Provider is not Memory)
        {
            yield return $"Streams:Provider must be \"{Memory}\".";
        }

        if (Queues is < 1 or > 256)
        {
            yield return "Streams:Queues must be between 1 and 256.";
        }
    }
}
