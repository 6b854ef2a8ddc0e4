namespace Broker.Grains;

/// <summary>
/// A silo refused to activate a room or user because its memory is nearly full (see
/// ActivationGate): the caller should try again later. An <see cref="OrleansException"/>, so
/// front-ends answer it as they answer an unreachable cluster (unavailable, or 1013).
/// </summary>
[GenerateSerializer, Alias("Broker.SiloOverloadedException")]
public sealed class SiloOverloadedException : OrleansException
{
    public SiloOverloadedException()
        : base("The silo is short of memory and takes no new rooms or users; try again later.")
    {
    }

    public SiloOverloadedException(string message)
        : base(message)
    {
    }

    public SiloOverloadedException(string message, Exception innerException)
        : base(message, innerException)
    {
    }
}
