namespace Broker.Grains;

/// <summary>
/// The store could not commit (unreachable, or the epoch was taken over): nothing of the batch
/// is durable. It crosses to clients, so it carries the cause as text, never as an inner
/// exception (Redis' exception types cannot be serialized).
/// </summary>
[GenerateSerializer, Alias("Broker.RoomStoreException")]
public sealed class RoomStoreException : Exception
{
    public RoomStoreException()
    {
    }

    public RoomStoreException(string message)
        : base(message)
    {
    }

    public RoomStoreException(string message, Exception innerException)
        : base(message, innerException)
    {
    }
}
