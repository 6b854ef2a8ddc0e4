using Orleans.Runtime;

namespace Broker.Grains.Streams;

/// <summary>
/// Where the broker's rooms speak inside the cluster (docs/streams.md). A namespace with the
/// option <c>Stream</c> on produces every committed message of each of its rooms, in seq order,
/// and its member joins and leaves, as <see cref="RoomStreamItem"/>s to the Orleans stream
/// <c>StreamId.Create("broker.{namespace}", room)</c> of the stream provider <c>broker</c>.
/// An application grain hears a whole namespace with
/// <c>[ImplicitStreamSubscription("broker.chat")]</c> (one activation per room, keyed by the
/// room's name), or one room by subscribing explicitly to <see cref="RoomStream"/>.
/// </summary>
public static class BrokerStreams
{
    /// <summary>The name of the stream provider every silo of the cluster configures.</summary>
    public const string ProviderName = "broker";

    /// <summary>A room stream's namespace is this prefix and the broker namespace's name.</summary>
    public const string NamespacePrefix = "broker.";

    /// <summary>The stream namespace of a broker namespace: "broker.chat" for "chat".</summary>
    public static string StreamNamespace(string ns) => NamespacePrefix + ns;

    /// <summary>The stream of one room: namespace "broker.{ns}", key the room's name.</summary>
    public static StreamId RoomStream(string ns, string room) => StreamId.Create(StreamNamespace(ns), room);

    /// <summary>
    /// The broker namespace and room of a room stream's id, or false when the id is not one
    /// (another application's stream).
    /// </summary>
    public static bool TryParse(StreamId stream, out string ns, out string room)
    {
        var streamNamespace = stream.GetNamespace();
        if (streamNamespace is not null && streamNamespace.StartsWith(NamespacePrefix, StringComparison.Ordinal) && streamNamespace.Length > NamespacePrefix.Length)
        {
            ns = streamNamespace[NamespacePrefix.Length..];
            room = stream.GetKeyAsString();
            return true;
        }

        ns = room = string.Empty;
        return false;
    }
}
