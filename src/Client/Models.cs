using System.Text.Json;

namespace Broker.Client;

/// <summary>The state of a <see cref="BrokerClient"/>'s connection.</summary>
public enum BrokerConnectionState
{
    /// <summary>Not connected: before the first connect, or between a lost connection and the next attempt.</summary>
    Disconnected,

    /// <summary>A connection attempt (handshake, welcome, re-joining the rooms) is under way.</summary>
    Connecting,

    /// <summary>Connected, every joined room re-joined: messages flow, requests are sent.</summary>
    Connected,

    /// <summary>Closed for good (disposed, or refused for a reason that a retry cannot fix); nothing more happens.</summary>
    Closed,
}

/// <summary>A change of <see cref="BrokerClient.State"/>.</summary>
/// <param name="State">The new state.</param>
/// <param name="Url">The front-end connected to (or being connected to); null when none.</param>
/// <param name="CloseStatus">For <see cref="BrokerConnectionState.Disconnected"/>: the close code the server sent, null when the socket broke.</param>
/// <param name="Error">Why the connection ended or the attempt failed, when known.</param>
public sealed record BrokerStateChangedEventArgs(BrokerConnectionState State, Uri? Url, int? CloseStatus, Exception? Error);

/// <summary>A message of a room, as the broker numbered it: delivered exactly once and in <see cref="Seq"/> order.</summary>
/// <param name="Room">The room.</param>
/// <param name="Seq">Its number in the room (1, 2, 3 … within <see cref="Epoch"/>).</param>
/// <param name="Epoch">The room's epoch (changes only when the room's history was lost).</param>
/// <param name="From">The publishing user (<c>server</c> for the HTTP API).</param>
/// <param name="Data">The published JSON value.</param>
/// <param name="Timestamp">When the room ordered it.</param>
public sealed record RoomMessage(string Room, long Seq, string Epoch, string From, JsonElement Data, DateTimeOffset Timestamp)
{
    /// <summary>Deserializes <see cref="Data"/>.</summary>
    public T? DataAs<T>(JsonSerializerOptions? options = null) => Data.Deserialize<T>(options);
}

/// <summary>A direct message sent to this client's user.</summary>
/// <param name="From">The sending user.</param>
/// <param name="Data">The JSON value sent.</param>
/// <param name="Timestamp">When it was sent.</param>
public sealed record DirectMessage(string From, JsonElement Data, DateTimeOffset Timestamp);

/// <summary>A room's position: the messages after <paramref name="Seq"/> in <paramref name="Epoch"/> are still to come.</summary>
/// <param name="Room">The room.</param>
/// <param name="Seq">The room's latest seq when it was joined (0 for a room that never had a message).</param>
/// <param name="Epoch">The room's epoch.</param>
/// <param name="Recovered">True when a re-join recovered every missed message.</param>
public sealed record JoinResult(string Room, long Seq, string Epoch, bool Recovered);

/// <summary>The broker's acknowledgement of a publish: the room ordered it as <paramref name="Seq"/>.</summary>
/// <param name="Room">The room.</param>
/// <param name="Seq">The message's seq.</param>
/// <param name="MsgId">The msgId the publish was sent (and retried) with.</param>
public sealed record PublishAck(string Room, long Seq, string MsgId);

/// <summary>A user present in a room.</summary>
/// <param name="User">The user.</param>
/// <param name="Connections">How many of the user's connections joined the room.</param>
public sealed record PresenceMember(string User, int Connections);

/// <summary>A page of a room's history.</summary>
/// <param name="Room">The room.</param>
/// <param name="Epoch">The room's epoch.</param>
/// <param name="Messages">The messages, oldest first.</param>
/// <param name="More">True when the reply was cut short: ask again with <c>since</c> = the last seq.</param>
public sealed record HistoryPage(string Room, string Epoch, IReadOnlyList<RoomMessage> Messages, bool More);

/// <summary>A user's first connection joined a room, or its last one left.</summary>
/// <param name="Room">The room.</param>
/// <param name="User">The user.</param>
public sealed record MemberEventArgs(string Room, string User);

/// <summary>
/// A gap in a room could not be recovered (the room's history was lost or no longer reaches back):
/// messages between <see cref="PreviousSeq"/> and <see cref="Seq"/> will never arrive. Delivery
/// goes on from <see cref="Seq"/> in <see cref="Epoch"/>; reload the room's state (e.g. with history).
/// </summary>
/// <param name="Room">The room.</param>
/// <param name="PreviousEpoch">The epoch known before.</param>
/// <param name="PreviousSeq">The last seq delivered before.</param>
/// <param name="Epoch">The room's epoch now.</param>
/// <param name="Seq">The room's seq now: the next message delivered follows it.</param>
public sealed record RoomResetEventArgs(string Room, string PreviousEpoch, long PreviousSeq, string Epoch, long Seq);

/// <summary>The room was left without <see cref="BrokerRoom.LeaveAsync"/>: the server took the connection out, or refused to re-join.</summary>
/// <param name="Room">The room.</param>
/// <param name="Reason">The server's reason.</param>
/// <param name="Code">The error code when a re-join was refused, else null.</param>
public sealed record RoomLeftEventArgs(string Room, string Reason, string? Code);

/// <summary>
/// An error from the broker (an <c>error</c> frame's <see cref="Code"/> and message), or from the
/// client: <c>timeout</c> (no reply in time), <c>disconnected</c> (the connection ended before a
/// reply that cannot be retried safely), <c>closed</c> (the client was closed), <c>unauthorized</c>,
/// <c>forbidden</c>, <c>not_found</c>, <c>bad_request</c> (the handshake was refused).
/// </summary>
public sealed class BrokerException : Exception
{
    /// <summary>Creates an exception with a code and a message.</summary>
    public BrokerException(string code, string message, Exception? inner = null)
        : base(message, inner)
    {
        Code = code;
    }

    /// <summary>The error code: one of the protocol's (<c>bad_request</c>, <c>forbidden</c>, <c>not_member</c>, <c>unavailable</c> …) or the client's.</summary>
    public string Code { get; }
}
