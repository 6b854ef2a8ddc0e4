using System.Buffers;
using System.Collections.Immutable;
using System.Text.Encodings.Web;
using System.Text.Json;
using Broker.Grains.Models;

namespace Broker.Frontend.Protocol;

/// <summary>
/// Encodes every server frame. Each call returns a fresh byte[] that is never changed again, so
/// one encoded broadcast frame is shared by every local socket that receives it.
/// Field order follows protocol.md: type first, then id.
/// </summary>
public static class FrameWriter
{
    private static readonly JsonWriterOptions WriterOptions = new()
    {
        Encoder = JavaScriptEncoder.UnsafeRelaxedJsonEscaping,
        SkipValidation = true,
    };

    [ThreadStatic]
    private static ArrayBufferWriter<byte>? t_buffer;

    [ThreadStatic]
    private static Utf8JsonWriter? t_writer;

    public static byte[] Pong { get; } = "pong"u8.ToArray();

    public static byte[] Welcome(string connectionId, string user, string ns, string node) => Write(w =>
    {
        Start(w, "welcome", []);
        w.WriteString("connection"u8, connectionId);
        w.WriteString("user"u8, user);
        w.WriteString("namespace"u8, ns);
        w.WriteString("node"u8, node);
    });

    public static byte[] Joined(byte[] id, string room, long seq, string epoch, bool recovered) => Write(w =>
    {
        Start(w, "joined", id);
        w.WriteString("room"u8, room);
        w.WriteNumber("seq"u8, seq);
        w.WriteString("epoch"u8, epoch);
        w.WriteBoolean("recovered"u8, recovered);
    });

    public static byte[] Left(byte[] id, string room) => Write(w =>
    {
        Start(w, "left", id);
        w.WriteString("room"u8, room);
    });

    /// <summary>
    /// A room the server took the connection out of (its refreshed token no longer grants
    /// joining it): a <c>left</c> frame without an id, with a sentence saying why.
    /// </summary>
    public static byte[] LeftByServer(string room, string reason) => Write(w =>
    {
        Start(w, "left", []);
        w.WriteString("room"u8, room);
        w.WriteString("reason"u8, reason);
    });

    /// <summary>The answer to a refresh: the new token's expiry in unix seconds, or null when it has none.</summary>
    public static byte[] Refreshed(byte[] id, long? expires) => Write(w =>
    {
        Start(w, "refreshed", id);
        if (expires is { } seconds)
        {
            w.WriteNumber("expires"u8, seconds);
        }
        else
        {
            w.WriteNull("expires"u8);
        }
    });

    public static byte[] PublishAck(byte[] id, string room, long seq) => Write(w =>
    {
        Start(w, "ack", id);
        w.WriteString("room"u8, room);
        w.WriteNumber("seq"u8, seq);
    });

    public static byte[] SendAck(byte[] id, int delivered) => Write(w =>
    {
        Start(w, "ack", id);
        w.WriteNumber("delivered"u8, delivered);
    });

    public static byte[] Presence(byte[] id, string room, ImmutableArray<PresenceEntry> members) => Write(w =>
    {
        Start(w, "presence", id);
        w.WriteString("room"u8, room);
        w.WriteStartArray("members"u8);
        foreach (var member in members)
        {
            w.WriteStartObject();
            w.WriteString("user"u8, member.User);
            w.WriteNumber("connections"u8, member.Connections);
            w.WriteEndObject();
        }

        w.WriteEndArray();
    });

    /// <summary>
    /// A history reply of at most <paramref name="maxBytes"/> bytes: the messages that fit, in
    /// order (at least one, so that paging always moves), then "more" — true when the room cut
    /// the page short (<paramref name="more"/>) or when messages did not fit here. "more" comes
    /// last so that the frame can end after any message.
    /// </summary>
    public static byte[] History(byte[] id, string room, string epoch, ImmutableArray<RoomMessage> messages, bool more = false, int maxBytes = int.MaxValue)
    {
        var buffer = t_buffer ??= new ArrayBufferWriter<byte>(512);
        var w = t_writer ??= new Utf8JsonWriter(buffer, WriterOptions);
        buffer.ResetWrittenCount();
        w.Reset(buffer);
        w.WriteStartObject();
        Start(w, "history", id);
        w.WriteString("room"u8, room);
        w.WriteString("epoch"u8, epoch);
        w.WriteStartArray("messages"u8);
        var fitted = 0;
        for (var i = 0; i < messages.Length; i++)
        {
            w.WriteStartObject();
            MessageFields(w, room, epoch, messages[i]);
            w.WriteEndObject();
            w.Flush();
            if (i > 0 && buffer.WrittenCount + HistoryEndMore.Length + 1 > maxBytes)
            {
                // This message does not fit: the frame ends after the previous one.
                var cut = new byte[fitted + HistoryEndMore.Length];
                buffer.WrittenSpan[..fitted].CopyTo(cut);
                HistoryEndMore.CopyTo(cut.AsSpan(fitted));
                return cut;
            }

            fitted = buffer.WrittenCount;
        }

        w.WriteEndArray();
        w.WriteBoolean("more"u8, more);
        w.WriteEndObject();
        w.Flush();
        return buffer.WrittenSpan.ToArray();
    }

    /// <summary>How a history frame cut after a message ends (one byte shorter than with false).</summary>
    private static ReadOnlySpan<byte> HistoryEndMore => "],\"more\":true}"u8;

    public static byte[] Echo(byte[] id, byte[] data) => Write(w =>
    {
        Start(w, "echo", id);
        w.WritePropertyName("data"u8);
        w.WriteRawValue(data, skipInputValidation: true);
    });

    public static byte[] JsonPong(byte[] id) => Write(w => Start(w, "pong", id));

    public static byte[] Message(string room, string epoch, RoomMessage message) => Write(w =>
        MessageFields(w, room, epoch, message));

    public static byte[] Direct(DirectMessage message) => Write(w =>
    {
        Start(w, "direct", []);
        w.WriteString("from"u8, message.From);
        w.WritePropertyName("data"u8);
        w.WriteRawValue(message.Payload, skipInputValidation: true);
        w.WriteNumber("ts"u8, message.Timestamp);
    });

    public static byte[] MemberEvent(bool joined, string room, string user) => Write(w =>
    {
        Start(w, joined ? "member_joined" : "member_left", []);
        w.WriteString("room"u8, room);
        w.WriteString("user"u8, user);
    });

    public static byte[] Error(byte[] id, string code, string message) => Write(w =>
    {
        Start(w, "error", id);
        w.WriteString("code"u8, code);
        w.WriteString("message"u8, message);
    });

    private static void MessageFields(Utf8JsonWriter w, string room, string epoch, RoomMessage message)
    {
        w.WriteString("type"u8, "message"u8);
        w.WriteString("room"u8, room);
        w.WriteNumber("seq"u8, message.Seq);
        w.WriteString("epoch"u8, epoch);
        w.WriteString("from"u8, message.From);
        w.WritePropertyName("data"u8);
        w.WriteRawValue(message.Payload, skipInputValidation: true);
        w.WriteNumber("ts"u8, message.Timestamp);
    }

    private static void Start(Utf8JsonWriter w, string type, byte[] id)
    {
        w.WriteString("type"u8, type);
        if (id.Length > 0)
        {
            w.WritePropertyName("id"u8);
            w.WriteRawValue(id, skipInputValidation: true);
        }
    }

    private static byte[] Write(Action<Utf8JsonWriter> body)
    {
        var buffer = t_buffer ??= new ArrayBufferWriter<byte>(512);
        var writer = t_writer ??= new Utf8JsonWriter(buffer, WriterOptions);
        buffer.ResetWrittenCount();
        writer.Reset(buffer);
        writer.WriteStartObject();
        body(writer);
        writer.WriteEndObject();
        writer.Flush();
        return buffer.WrittenSpan.ToArray();
    }
}
