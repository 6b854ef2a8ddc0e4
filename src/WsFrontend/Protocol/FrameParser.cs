using System.Text.Json;
using System.Text.Unicode;

namespace Broker.Frontend.Protocol;

/// <summary>
/// Reads one client text frame (UTF-8 JSON object) into a <see cref="ClientFrame"/> with one
/// forward pass of Utf8JsonReader: no DOM, and "data" is sliced out as raw bytes.
/// Every refusal is a <see cref="FrameError"/> carrying a sentence a person can act on.
/// </summary>
public sealed class FrameParser
{
    private static readonly JsonReaderOptions ReaderOptions = new() { MaxDepth = 64 };
    private readonly int _maxNameLength;

    public FrameParser(int maxNameLength) => _maxNameLength = maxNameLength;

    public bool TryParse(ReadOnlySpan<byte> utf8, out ClientFrame frame, out FrameError error)
    {
        frame = null!;
        if (!Utf8.IsValid(utf8))
        {
            error = new FrameError(ErrorCodes.BadRequest, "Text frames must be valid UTF-8.", []);
            return false;
        }

        var fields = new RawFields();
        try
        {
            if (!ReadObject(utf8, ref fields, out var shapeError))
            {
                error = new FrameError(ErrorCodes.BadRequest, shapeError, []);
                return false;
            }
        }
        catch (JsonException)
        {
            error = new FrameError(ErrorCodes.BadRequest, "The frame is not valid JSON; send one JSON object per text frame, like {\"type\":\"ping\"}.", []);
            return false;
        }

        return Validate(ref fields, out frame, out error);
    }

    private static bool ReadObject(ReadOnlySpan<byte> utf8, ref RawFields fields, out string shapeError)
    {
        var reader = new Utf8JsonReader(utf8, ReaderOptions);
        if (!reader.Read())
        {
            shapeError = "The frame is empty; send one JSON object per text frame, like {\"type\":\"ping\"}.";
            return false;
        }

        if (reader.TokenType != JsonTokenType.StartObject)
        {
            reader.Skip();
            while (reader.Read())
            {
                // Reads to the end so that invalid JSON is reported as such.
            }

            shapeError = "A frame must be a JSON object with a \"type\", like {\"type\":\"ping\"}.";
            return false;
        }

        while (reader.Read() && reader.TokenType == JsonTokenType.PropertyName)
        {
            var field = Field(ref reader);
            reader.Read();
            var start = (int)reader.TokenStartIndex;
            var kind = reader.TokenType;
            reader.Skip();
            var raw = utf8[start..(int)reader.BytesConsumed];
            switch (field)
            {
                case KnownField.Type: fields.Type = new RawValue(kind, raw.ToArray()); break;
                case KnownField.Id: fields.Id = new RawValue(kind, raw.ToArray()); break;
                case KnownField.Room: fields.Room = new RawValue(kind, raw.ToArray()); break;
                case KnownField.Data: fields.Data = new RawValue(kind, raw.ToArray()); break;
                case KnownField.MsgId: fields.MsgId = new RawValue(kind, raw.ToArray()); break;
                case KnownField.To: fields.To = new RawValue(kind, raw.ToArray()); break;
                case KnownField.Since: fields.Since = new RawValue(kind, raw.ToArray()); break;
                case KnownField.Epoch: fields.Epoch = new RawValue(kind, raw.ToArray()); break;
                case KnownField.Limit: fields.Limit = new RawValue(kind, raw.ToArray()); break;
                default: break;
            }
        }

        // Anything after the object (a second value, garbage) makes the frame invalid JSON.
        while (reader.Read())
        {
        }

        shapeError = string.Empty;
        return true;
    }

    private bool Validate(ref RawFields f, out ClientFrame frame, out FrameError error)
    {
        frame = null!;
        byte[] id = [];
        if (f.Id.Present)
        {
            if (f.Id.Kind is not (JsonTokenType.Number or JsonTokenType.String))
            {
                error = new FrameError(ErrorCodes.BadRequest, "\"id\" must be a number or a string.", []);
                return false;
            }

            id = f.Id.Bytes;
        }

        if (!f.Type.Present)
        {
            error = new FrameError(ErrorCodes.BadRequest, "Every frame needs a \"type\" field, like {\"type\":\"ping\"}.", id);
            return false;
        }

        if (f.Type.Kind != JsonTokenType.String)
        {
            error = new FrameError(ErrorCodes.BadRequest, "\"type\" must be a string, like \"join\" or \"publish\".", id);
            return false;
        }

        var typeName = f.Type.AsString();
        ClientFrameType type;
        switch (typeName)
        {
            case "join": type = ClientFrameType.Join; break;
            case "leave": type = ClientFrameType.Leave; break;
            case "publish": type = ClientFrameType.Publish; break;
            case "send": type = ClientFrameType.Send; break;
            case "presence": type = ClientFrameType.Presence; break;
            case "history": type = ClientFrameType.History; break;
            case "echo": type = ClientFrameType.Echo; break;
            case "ping": type = ClientFrameType.Ping; break;
            default:
                var shown = typeName.Length > 64 ? typeName[..64] + "…" : typeName;
                error = new FrameError(
                    ErrorCodes.UnknownType,
                    $"Unknown frame type \"{shown}\"; the types are join, leave, publish, send, presence, history, echo and ping.",
                    id);
                return false;
        }

        string? room = null, to = null, msgId = null, epoch = null;
        long? since = null;
        int? limit = null;
        var needsRoom = type is ClientFrameType.Join or ClientFrameType.Leave or ClientFrameType.Publish
            or ClientFrameType.Presence or ClientFrameType.History;
        if (needsRoom && !RequiredName(f.Room, "room", typeName, id, out room, out error))
        {
            return false;
        }

        if (type == ClientFrameType.Send && !RequiredName(f.To, "to", typeName, id, out to, out error))
        {
            return false;
        }

        var needsData = type is ClientFrameType.Publish or ClientFrameType.Send or ClientFrameType.Echo;
        if (needsData && !f.Data.Present)
        {
            error = new FrameError(ErrorCodes.BadRequest, $"\"{typeName}\" needs a \"data\" field (any JSON value).", id);
            return false;
        }

        if (type == ClientFrameType.Publish && f.MsgId.Present && !OptionalName(f.MsgId, "msgId", id, out msgId, out error))
        {
            return false;
        }

        if (type is ClientFrameType.Join or ClientFrameType.History && f.Since.Present)
        {
            if (f.Since.Kind != JsonTokenType.Number || !f.Since.TryInt64(out var value) || value < 0)
            {
                error = new FrameError(ErrorCodes.BadRequest, "\"since\" must be a whole number, 0 or more (the last seq you saw).", id);
                return false;
            }

            since = value;
        }

        if (type == ClientFrameType.Join && f.Epoch.Present)
        {
            if (f.Epoch.Kind != JsonTokenType.String)
            {
                error = new FrameError(ErrorCodes.BadRequest, "\"epoch\" must be a string (the epoch of the last message you saw).", id);
                return false;
            }

            epoch = f.Epoch.AsString();
        }

        if (type == ClientFrameType.History && f.Limit.Present)
        {
            if (f.Limit.Kind != JsonTokenType.Number || !f.Limit.TryInt64(out var value) || value < 1)
            {
                error = new FrameError(ErrorCodes.BadRequest, "\"limit\" must be a whole number, 1 or more.", id);
                return false;
            }

            limit = (int)Math.Min(value, int.MaxValue);
        }

        frame = new ClientFrame
        {
            Type = type,
            Id = id,
            Room = room,
            To = to,
            MsgId = msgId,
            Since = since,
            Epoch = epoch,
            Limit = limit,
            Data = needsData ? f.Data.Bytes : null,
        };
        error = default;
        return true;
    }

    private bool RequiredName(RawValue value, string field, string typeName, byte[] id, out string? name, out FrameError error)
    {
        name = null;
        if (!value.Present)
        {
            error = new FrameError(ErrorCodes.BadRequest, $"\"{typeName}\" needs a \"{field}\" field holding a non-empty string.", id);
            return false;
        }

        return OptionalName(value, field, id, out name, out error);
    }

    private bool OptionalName(RawValue value, string field, byte[] id, out string? name, out FrameError error)
    {
        name = null;
        if (value.Kind != JsonTokenType.String)
        {
            error = new FrameError(ErrorCodes.BadRequest, $"\"{field}\" must be a non-empty string.", id);
            return false;
        }

        name = value.AsString();
        if (name.Length == 0)
        {
            error = new FrameError(ErrorCodes.BadRequest, $"\"{field}\" must be a non-empty string.", id);
            return false;
        }

        if (name.Length > _maxNameLength)
        {
            error = new FrameError(ErrorCodes.TooLarge, $"\"{field}\" is {name.Length} characters long; the limit is {_maxNameLength}.", id);
            return false;
        }

        error = default;
        return true;
    }

    private static KnownField Field(ref Utf8JsonReader reader)
    {
        if (reader.ValueTextEquals("type"u8)) return KnownField.Type;
        if (reader.ValueTextEquals("id"u8)) return KnownField.Id;
        if (reader.ValueTextEquals("room"u8)) return KnownField.Room;
        if (reader.ValueTextEquals("data"u8)) return KnownField.Data;
        if (reader.ValueTextEquals("msgId"u8)) return KnownField.MsgId;
        if (reader.ValueTextEquals("to"u8)) return KnownField.To;
        if (reader.ValueTextEquals("since"u8)) return KnownField.Since;
        if (reader.ValueTextEquals("epoch"u8)) return KnownField.Epoch;
        if (reader.ValueTextEquals("limit"u8)) return KnownField.Limit;
        return KnownField.Other;
    }

    private enum KnownField
    {
        Other,
        Type,
        Id,
        Room,
        Data,
        MsgId,
        To,
        Since,
        Epoch,
        Limit,
    }

    private readonly record struct RawValue(JsonTokenType Kind, byte[] Bytes)
    {
        public bool Present => Bytes is not null;

        public string AsString()
        {
            var reader = new Utf8JsonReader(Bytes);
            reader.Read();
            return reader.GetString() ?? string.Empty;
        }

        public bool TryInt64(out long value)
        {
            var reader = new Utf8JsonReader(Bytes);
            reader.Read();
            return reader.TryGetInt64(out value);
        }
    }

    private struct RawFields
    {
        public RawValue Type;
        public RawValue Id;
        public RawValue Room;
        public RawValue Data;
        public RawValue MsgId;
        public RawValue To;
        public RawValue Since;
        public RawValue Epoch;
        public RawValue Limit;
    }
}
