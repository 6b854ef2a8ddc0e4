using System.Collections.Immutable;

namespace Broker.Grains.Models;

/// <summary>
/// The namespace settings a room needs. Front-ends own namespace configuration and send it along.
/// Fields added after v1 carry defaults; a policy serialized without them (an older front-end)
/// arrives with 0 there, which the room reads as the default (see <see cref="EffectiveHistoryBytes"/>).
/// </summary>
/// <param name="HistoryLimit">Messages kept for history and recovery; 0 keeps none.</param>
/// <param name="Presence">Presence queries and member events.</param>
/// <param name="HistoryBytes">
/// Bytes of history kept, counted as each message's data plus a fixed overhead per message
/// (HistoryWindow.MessageOverheadBytes); the oldest go first. 0 or less: <see cref="DefaultHistoryBytes"/>.
/// </param>
/// <param name="EmptyRoomTimeout">
/// How long a room with no members that still holds history (or remembered msgIds) is kept after
/// its last call before it is deactivated; null: <see cref="DefaultEmptyRoomTimeout"/>.
/// </param>
/// <param name="Stream">
/// Every committed message, and every member join and leave, is also produced to the room's
/// Orleans stream (docs/streams.md, <see cref="Streams.BrokerStreams.RoomStream"/>). Off by
/// default; an older front-end's policy arrives without it (off).
/// </param>
[GenerateSerializer, Immutable, Alias("Broker.RoomPolicy")]
public sealed record RoomPolicy(
    [property: Id(0)] int HistoryLimit,
    [property: Id(1)] bool Presence,
    [property: Id(2)] long HistoryBytes = RoomPolicy.DefaultHistoryBytes,
    [property: Id(3)] TimeSpan? EmptyRoomTimeout = null,
    [property: Id(4)] bool Stream = false)
{
    /// <summary>
    /// 1 MiB: a hundred 10 KB messages, far above what chat-sized messages (under 1 KB) ever
    /// reach with the default History of 100, while a room filled with 64 KB messages holds 16 of
    /// them instead of 100 (6.4 MB).
    /// </summary>
    public const long DefaultHistoryBytes = 1024 * 1024;

    /// <summary>Five minutes: a client that reconnects within it still recovers (memory store).</summary>
    public static readonly TimeSpan DefaultEmptyRoomTimeout = TimeSpan.FromMinutes(5);

    /// <summary>The byte bound in force: <see cref="HistoryBytes"/>, or the default when unset (0).</summary>
    public long EffectiveHistoryBytes => HistoryBytes > 0 ? HistoryBytes : DefaultHistoryBytes;

    /// <summary>The empty-room timeout in force.</summary>
    public TimeSpan EffectiveEmptyRoomTimeout => EmptyRoomTimeout is { } timeout && timeout >= TimeSpan.Zero ? timeout : DefaultEmptyRoomTimeout;
}

/// <summary>A message as the room ordered it. Payload is the client's raw JSON "data", never parsed by grains.</summary>
[GenerateSerializer, Immutable, Alias("Broker.RoomMessage")]
public sealed record RoomMessage(
    [property: Id(0)] long Seq,
    [property: Id(1)] string From,
    [property: Id(2)] long Timestamp,
    [property: Id(3)] byte[] Payload);

[GenerateSerializer, Alias("Broker.RoomEventKind")]
public enum RoomEventKind : byte
{
    Message = 0,
    MemberJoined = 1,
    MemberLeft = 2,

    /// <summary>
    /// The room's latest seq, sent first to a front-end that starts receiving from this
    /// activation: a front-end that had seen less knows it missed messages and fills the gap.
    /// </summary>
    Position = 3,
}

/// <summary>
/// One entry of a room's outgoing stream. Version grows by one per event of the activation
/// (messages and member events alike), so a front-end can tell which events a joining
/// connection must see: exactly those with Version greater than the join's. TraceParent: the
/// W3C trace context of a message's <c>room.commit</c> span when that publish was traced (null
/// otherwise), for the front-ends' <c>deliver</c> spans.
/// </summary>
[GenerateSerializer, Immutable, Alias("Broker.RoomEvent")]
public sealed record RoomEvent(
    [property: Id(0)] long Version,
    [property: Id(1)] RoomEventKind Kind,
    [property: Id(2)] string User,
    [property: Id(3)] RoomMessage? Message,
    [property: Id(4)] long Seq = 0,
    [property: Id(5)] string? TraceParent = null);

/// <summary>
/// Events from one activation of a room. Activation identifies the activation: event versions
/// count from its start, so a front-end resets its version filter when it changes (the epoch
/// alone may stay the same when the room's history is durable).
/// </summary>
[GenerateSerializer, Immutable, Alias("Broker.RoomDelivery")]
public sealed record RoomDelivery(
    [property: Id(0)] string Namespace,
    [property: Id(1)] string Room,
    [property: Id(2)] string Epoch,
    [property: Id(3)] ImmutableArray<RoomEvent> Events,
    [property: Id(4)] string Activation = "");

[GenerateSerializer, Immutable, Alias("Broker.JoinRequest")]
public sealed record JoinRequest(
    [property: Id(0)] string ConnectionId,
    [property: Id(1)] string User,
    [property: Id(2)] string FrontendId,
    [property: Id(3)] IFrontendObserver Frontend,
    [property: Id(4)] RoomPolicy Policy,
    [property: Id(5)] long? Since,
    [property: Id(6)] string? Epoch);

/// <summary>
/// Seq is the room's latest seq; Version the room's stream position at the join. When the
/// join asked to recover and could, Missed holds every message after Since, in order.
/// Recovery is all or nothing and never larger than the history window (HistoryLimit messages,
/// HistoryBytes bytes): a partial catch-up followed by the live stream would leave a hole the
/// client cannot see, so a gap the window does not cover is Recovered=false, and the client
/// reloads with history pages.
/// </summary>
[GenerateSerializer, Immutable, Alias("Broker.JoinResult")]
public sealed record JoinResult(
    [property: Id(0)] long Seq,
    [property: Id(1)] string Epoch,
    [property: Id(2)] long Version,
    [property: Id(3)] bool Recovered,
    [property: Id(4)] ImmutableArray<RoomMessage> Missed,
    [property: Id(5)] string Activation = "");

/// <summary>
/// Policy: the namespace's options, from a front-end; null from server-side code
/// (<see cref="BrokerServerApi"/>), which does not know them: the room keeps the policy it has.
/// </summary>
[GenerateSerializer, Immutable, Alias("Broker.PublishRequest")]
public sealed record PublishRequest(
    [property: Id(0)] string User,
    [property: Id(1)] byte[] Payload,
    [property: Id(2)] string? MsgId,
    [property: Id(3)] RoomPolicy? Policy);

/// <summary>
/// Several publishes of one user to one room, in the order they are to be ordered
/// (<see cref="IRoomGrain.PublishBatch"/>). Policy as in <see cref="PublishRequest"/>.
/// </summary>
[GenerateSerializer, Immutable, Alias("Broker.PublishBatchRequest")]
public sealed record PublishBatchRequest(
    [property: Id(0)] string User,
    [property: Id(1)] ImmutableArray<BatchedPublish> Messages,
    [property: Id(2)] RoomPolicy? Policy);

/// <summary>
/// One message of a <see cref="PublishBatchRequest"/>. TraceParent: the W3C trace context of
/// the front-end's <c>publish</c> span when it is recorded (null otherwise); the room's
/// <c>room.commit</c> span for this message is its child. A batch call carries no trace of its
/// own, as its messages may belong to as many traces.
/// </summary>
[GenerateSerializer, Immutable, Alias("Broker.BatchedPublish")]
public sealed record BatchedPublish(
    [property: Id(0)] byte[] Payload,
    [property: Id(1)] string? MsgId,
    [property: Id(2)] string? TraceParent = null);

/// <summary>Duplicate is true when MsgId had been seen: Seq is then the first publish's.</summary>
[GenerateSerializer, Immutable, Alias("Broker.PublishResult")]
public sealed record PublishResult(
    [property: Id(0)] long Seq,
    [property: Id(1)] string Epoch,
    [property: Id(2)] bool Duplicate);

[GenerateSerializer, Immutable, Alias("Broker.PresenceEntry")]
public sealed record PresenceEntry(
    [property: Id(0)] string User,
    [property: Id(1)] int Connections);

/// <summary>
/// A page of a room's history, oldest first. More is true when the page was cut short (by the
/// limit or the byte bound) while messages after its last one exist: ask again with since set
/// to the last seq.
/// </summary>
[GenerateSerializer, Immutable, Alias("Broker.HistoryPage")]
public sealed record HistoryPage(
    [property: Id(0)] string Epoch,
    [property: Id(1)] ImmutableArray<RoomMessage> Messages,
    [property: Id(2)] bool More = false);

[GenerateSerializer, Immutable, Alias("Broker.RoomMemberRef")]
public sealed record RoomMemberRef(
    [property: Id(0)] string ConnectionId,
    [property: Id(1)] string User);

[GenerateSerializer, Immutable, Alias("Broker.FrontendRoomSync")]
public sealed record FrontendRoomSync(
    [property: Id(0)] string FrontendId,
    [property: Id(1)] IFrontendObserver Frontend,
    [property: Id(2)] RoomPolicy Policy,
    [property: Id(3)] ImmutableArray<RoomMemberRef> Members);
