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
    /// <summary>The longest token a refresh frame may carry, in characters (a JWT with a large claim set is a few KiB).</summary>
    public const int MaxTokenLength = 8 * 1024;

    private static readonly JsonReaderOptions ReaderOptions = new() { MaxDepth = 64 };
    private readonly int _maxNameLength;

    public FrameParser(int maxNameLength) => _maxNameLength = maxNameLength;

    /// <summary>
    /// Never throws: whatever the bytes, the answer is a frame or a <see cref="FrameError"/>
    /// (bad_request, unknown_type or too_large). A client controls every byte, so an exception
    /// here would be a way for anyone to close their connection with 1011 and write a stack
    /// trace to the server's log.
    /// </summary>
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

            return Validate(ref fields, out frame, out error);
        }
        catch (JsonException)
        {
            frame = null!;
            error = new FrameError(ErrorCodes.BadRequest, "The frame is not valid JSON; send one JSON object per text frame, like {\"type\":\"ping\"}.", []);
            return false;
        }
        catch (InvalidOperationException)
        {
            // The reader refusing to decode a value it had read. ReadObject checks every string
            // before anything decodes one, so this is the last line, not the rule.
            frame = null!;
            error = new FrameError(ErrorCodes.BadRequest, "A value in the frame could not be read; send one JSON object per text frame, like {\"type\":\"ping\"}.", []);
            return false;
        }
    }

    private static bool ReadObject(ReadOnlySpan<byte> utf8, ref RawFields fields, out string shapeError)
    {
        var reader = new Utf8JsonReader(utf8, ReaderOptions);

        // The reader throws on input with no token at all; an empty frame deserves its own sentence.
        if (utf8.Trim(" \t\r\n"u8).IsEmpty || !reader.Read())
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
            // A name with a lone surrogate is never decoded (ValueTextEquals would throw): it
            // cannot be a known field, and the frame is refused once read.
            var nameClean = StringIsWellFormed(ref reader);
            var field = nameClean ? Field(ref reader) : KnownField.Other;
            reader.Read();
            var start = (int)reader.TokenStartIndex;
            var kind = reader.TokenType;
            var valueClean = SkipValue(ref reader);
            if (!nameClean || !valueClean)
            {
                // The first such field is the one the error names; a malformed id is not echoed.
                if (fields.Malformed is null)
                {
                    fields.Malformed = field;
                }

                if (field == KnownField.Id)
                {
                    fields.IdMalformed = true;
                }

                continue;
            }

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
                case KnownField.Token: fields.Token = new RawValue(kind, raw.ToArray()); break;
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
        if (f.Id.Present && !f.IdMalformed)
        {
            if (f.Id.Kind is not (JsonTokenType.Number or JsonTokenType.String))
            {
                error = new FrameError(ErrorCodes.BadRequest, "\"id\" must be a number or a string.", []);
                return false;
            }

            id = f.Id.Bytes;
        }

        if (f.Malformed is { } malformed)
        {
            var where = malformed == KnownField.Other ? "A string in the frame" : $"\"{FieldName(malformed)}\"";
            error = new FrameError(
                ErrorCodes.BadRequest,
                $"{where} holds a lone surrogate escape (like \"\\ud800\"); a \\u escape of a surrogate must be a high one (\\ud800-\\udbff) followed by a low one (\\udc00-\\udfff).",
                id);
            return false;
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
            case "refresh": type = ClientFrameType.Refresh; break;
            default:
                var shown = typeName.Length > 64 ? typeName[..64] + "…" : typeName;
                error = new FrameError(
                    ErrorCodes.UnknownType,
                    $"Unknown frame type \"{shown}\"; the types are join, leave, publish, send, presence, history, echo, ping and refresh.",
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

        string? token = null;
        if (type == ClientFrameType.Refresh)
        {
            if (!f.Token.Present || f.Token.Kind != JsonTokenType.String || (token = f.Token.AsString()).Length == 0)
            {
                error = new FrameError(ErrorCodes.BadRequest, "\"refresh\" needs a \"token\" field holding the new token (a non-empty string).", id);
                return false;
            }

            if (token.Length > MaxTokenLength)
            {
                error = new FrameError(ErrorCodes.TooLarge, $"\"token\" is {token.Length} characters long; the limit is {MaxTokenLength}.", id);
                return false;
            }
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
            Token = token,
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

    /// <summary>
    /// Steps over the value the reader is on (a scalar, or a whole object or array), checking
    /// every string and property name in it; false when one holds a lone surrogate. Reads the
    /// same tokens Skip would, so the walk costs what the skip did.
    /// </summary>
    private static bool SkipValue(ref Utf8JsonReader reader)
    {
        var clean = StringIsWellFormed(ref reader);
        if (reader.TokenType is JsonTokenType.StartObject or JsonTokenType.StartArray)
        {
            var depth = reader.CurrentDepth;
            while (reader.Read() && reader.CurrentDepth > depth)
            {
                clean &= StringIsWellFormed(ref reader);
            }
        }

        return clean;
    }

    /// <summary>
    /// Whether the string or property name the reader is on decodes to valid UTF-16: the reader
    /// checks escape syntax but not that a \u escape of a surrogate comes in a high-low pair,
    /// and decoding a lone one throws. Unescaped bytes are already valid UTF-8 (checked first),
    /// and UTF-8 cannot hold a surrogate, so only escapes need a look. The reader reads one span,
    /// so a value is always in ValueSpan.
    /// </summary>
    private static bool StringIsWellFormed(ref Utf8JsonReader reader) =>
        reader.TokenType is not (JsonTokenType.String or JsonTokenType.PropertyName)
        || !reader.ValueIsEscaped
        || SurrogateEscapesPaired(reader.ValueSpan);

    /// <summary>Whether every \u escape of a surrogate in a JSON string's raw bytes is a high one followed by a low one.</summary>
    private static bool SurrogateEscapesPaired(ReadOnlySpan<byte> raw)
    {
        var i = 0;
        while (true)
        {
            var slash = raw[i..].IndexOf((byte)'\\');
            if (slash < 0)
            {
                return true;
            }

            i += slash + 1;
            if (i >= raw.Length)
            {
                return false;
            }

            if (raw[i] != (byte)'u')
            {
                // \" \\ \/ \b \f \n \r \t: one character, nothing to pair.
                i++;
                continue;
            }

            if (!TryHex4(raw, i + 1, out var unit))
            {
                return false;
            }

            i += 5;
            if (unit is >= 0xDC00 and <= 0xDFFF)
            {
                return false;
            }

            if (unit is >= 0xD800 and <= 0xDBFF)
            {
                if (i + 1 >= raw.Length || raw[i] != (byte)'\\' || raw[i + 1] != (byte)'u'
                    || !TryHex4(raw, i + 2, out var low) || low is < 0xDC00 or > 0xDFFF)
                {
                    return false;
                }

                i += 6;
            }
        }
    }

    private static bool TryHex4(ReadOnlySpan<byte> raw, int at, out int value)
    {
        value = 0;
        if (at + 4 > raw.Length)
        {
            return false;
        }

        for (var k = at; k < at + 4; k++)
        {
            var digit = raw[k] switch
            {
                >= (byte)'0' and <= (byte)'9' => raw[k] - '0',
                >= (byte)'a' and <= (byte)'f' => raw[k] - 'a' + 10,
                >= (byte)'A' and <= (byte)'F' => raw[k] - 'A' + 10,
                _ => -1,
            };
            if (digit < 0)
            {
                return false;
            }

            value = (value << 4) | digit;
        }

        return true;
    }

    private static string FieldName(KnownField field) => field switch
    {
        KnownField.Type => "type",
        KnownField.Id => "id",
        KnownField.Room => "room",
        KnownField.Data => "data",
        KnownField.MsgId => "msgId",
        KnownField.To => "to",
        KnownField.Since => "since",
        KnownField.Epoch => "epoch",
        KnownField.Limit => "limit",
        KnownField.Token => "token",
        _ => "a field",
    };

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
        if (reader.ValueTextEquals("token"u8)) return KnownField.Token;
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
        Token,
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
        public RawValue Token;

        /// <summary>The first field holding a lone surrogate (in its name or anywhere in its value), if any.</summary>
        public KnownField? Malformed;

        /// <summary>The id held a lone surrogate: the error goes back without an id.</summary>
        public bool IdMalformed;
    }
}
