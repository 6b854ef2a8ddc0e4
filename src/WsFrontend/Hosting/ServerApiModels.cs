using System.Text.Json;

namespace Broker.Frontend.Hosting;

// The server API's JSON shapes (camelCase on the wire), written by the handlers and described
// by the OpenAPI document (/openapi/v1.json). protocol.md "Server HTTP API" is their contract.

/// <summary>Every refusal: a sentence a person can act on, and the error code (protocol.md "Errors and limits").</summary>
public sealed record ApiError(string Error, string Code);

/// <summary>A publish taken by the room: its seq and epoch; Duplicate when the msgId was seen before (the first seq, not delivered again).</summary>
public sealed record PublishReply(string Room, long Seq, string Epoch, bool Duplicate);

/// <summary>How many connections of the user, on any front-end, the direct message was queued to.</summary>
public sealed record SendReply(int Delivered);

public sealed record PresenceReply(string Room, IReadOnlyList<PresenceMember> Members);

public sealed record PresenceMember(string User, int Connections);

/// <summary>
/// The socket's history reply, without an id (the same bytes, written by FrameWriter.History):
/// complete message frames in seq order, and More when the page was cut short.
/// </summary>
public sealed record HistoryReply(string Type, string Room, string Epoch, IReadOnlyList<MessageFrame> Messages, bool More);

/// <summary>A message frame, as members receive it.</summary>
public sealed record MessageFrame(string Type, string Room, long Seq, string Epoch, string From, JsonElement Data, long Ts);

/// <summary>The optional body of a disconnect: the close frame's reason (at most 123 bytes of UTF-8).</summary>
public sealed record DisconnectRequest(string? Reason = null);

/// <summary>How many connections were closed, on every front-end.</summary>
public sealed record DisconnectReply(int Closed);

/// <summary>
/// This front-end (Node, Connections), every live front-end of the cluster and every active
/// silo. Mode is "embedded" (one process: front-end and silo) or "cluster".
/// </summary>
public sealed record InfoReply(string Node, string Mode, int Connections, IReadOnlyList<FrontendInfo> Frontends, IReadOnlyList<SiloInfo> Silos);

/// <summary>
/// A live front-end: its id and its connections at its last lease renewal (every LeaseInterval;
/// this front-end's own count is current). Null from a front-end older than v1.1.
/// </summary>
public sealed record FrontendInfo(string Id, int? Connections);

/// <summary>An active silo: its address ("IP:port@generation") and name, its membership status, and its room and user grain activations.</summary>
public sealed record SiloInfo(string Address, string Name, string Status, int Rooms, int Users);
