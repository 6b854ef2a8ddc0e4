using System.Text;

namespace Broker.Grains.Streams;

/// <summary>What a <see cref="RoomStreamItem"/> tells.</summary>
[GenerateSerializer, Alias("Broker.RoomStreamItemKind")]
public enum RoomStreamItemKind : byte
{
    /// <summary>A committed message: the one every member of the room received as <c>message</c>.</summary>
    Message = 0,

    /// <summary>A user's first connection joined the room (a second tab of the same user is not a join).</summary>
    MemberJoined = 1,

    /// <summary>A user's last connection left the room (or its front-end was lost).</summary>
    MemberLeft = 2,
}

/// <summary>
/// One item of a room's stream (docs/streams.md). The items of one room come in the room's own
/// order: messages by <see cref="Seq"/> (1, 2, 3 … within an <see cref="Epoch"/>, exactly as the
/// clients see them), member events where they happened between them. Fields added later get new
/// ids and defaults, as in every contract of this assembly.
/// </summary>
/// <param name="Kind">Message, MemberJoined or MemberLeft.</param>
/// <param name="Namespace">The broker namespace ("chat").</param>
/// <param name="Room">The room's name.</param>
/// <param name="Epoch">The room's epoch: seqs count from 1 within it (protocol.md, "Recovery").</param>
/// <param name="Seq">
/// A message's seq. For a member event, the room's latest committed seq when it happened (the
/// event came after that message and before the next).
/// </param>
/// <param name="User">A message's sender (the protocol's <c>from</c>); the member who joined or left.</param>
/// <param name="Timestamp">Unix milliseconds: a message's <c>ts</c>, as clients received it; when a member event happened.</param>
/// <param name="Data">A message's <c>data</c>: the raw JSON value as UTF-8 bytes, never re-encoded; null for member events.</param>
/// <param name="MsgId">The publisher's <c>msgId</c>, when it gave one.</param>
[GenerateSerializer, Immutable, Alias("Broker.RoomStreamItem")]
public sealed record RoomStreamItem(
    [property: Id(0)] RoomStreamItemKind Kind,
    [property: Id(1)] string Namespace,
    [property: Id(2)] string Room,
    [property: Id(3)] string Epoch,
    [property: Id(4)] long Seq,
    [property: Id(5)] string User,
    [property: Id(6)] long Timestamp,
    [property: Id(7)] byte[]? Data = null,
    [property: Id(8)] string? MsgId = null)
{
    /// <summary>A message's <c>data</c> as JSON text; null for member events.</summary>
    public string? DataJson => Data is null ? null : Encoding.UTF8.GetString(Data);
}
