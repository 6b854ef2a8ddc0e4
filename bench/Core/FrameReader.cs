using System.Text.Json;

namespace Broker.Bench.Core;

public enum FrameType
{
    Other,
    Welcome,
    Joined,
    Ack,
    Message,
    Echo,
    Pong,
    Error,

    /// <summary>The text frame "pong" (not JSON), the answer to the text frame "ping".</summary>
    TextPong,
}

/// <summary>The fields of a server frame the workloads look at; spans point into the received buffer.</summary>
public ref struct Frame
{
    public FrameType Type;
    public bool HasId;
    public long Id;
    public ReadOnlySpan<byte> Room;
    public long Seq;
    public ReadOnlySpan<byte> Code;

    /// <summary>A message whose data is a load-tool payload: {"p":publisher,"n":counter,"t":ticks,…}.</summary>
    public bool HasStamp;
    public int Publisher;
    public long Counter;
    public long SentTicks;
}

/// <summary>Reads protocol v1 server frames without allocating (Utf8JsonReader over the received bytes).</summary>
public static class FrameReader
{
    public static bool TryRead(ReadOnlySpan<byte> utf8, out Frame frame)
    {
        frame = default;
        if (utf8.SequenceEqual("pong"u8))
        {
            frame.Type = FrameType.TextPong;
            return true;
        }

        try
        {
            var reader = new Utf8JsonReader(utf8, isFinalBlock: true, state: default);
            if (!reader.Read() || reader.TokenType != JsonTokenType.StartObject)
            {
                return false;
            }

            while (reader.Read() && reader.TokenType == JsonTokenType.PropertyName)
            {
                if (reader.ValueTextEquals("type"u8))
                {
                    reader.Read();
                    frame.Type = TypeOf(ref reader);
                }
                else if (reader.ValueTextEquals("id"u8))
                {
                    reader.Read();
                    frame.HasId = reader.TokenType == JsonTokenType.Number && reader.TryGetInt64(out frame.Id);
                }
                else if (reader.ValueTextEquals("room"u8))
                {
                    reader.Read();
                    frame.Room = reader.ValueSpan;
                }
                else if (reader.ValueTextEquals("seq"u8))
                {
                    reader.Read();
                    if (reader.TokenType == JsonTokenType.Number)
                    {
                        reader.TryGetInt64(out frame.Seq);
                    }
                }
                else if (reader.ValueTextEquals("code"u8))
                {
                    reader.Read();
                    frame.Code = reader.ValueSpan;
                }
                else if (reader.ValueTextEquals("data"u8))
                {
                    reader.Read();
                    if (reader.TokenType == JsonTokenType.StartObject)
                    {
                        frame.HasStamp = ReadStamp(ref reader, out frame.SentTicks, out frame.Publisher, out frame.Counter);
                    }
                    else
                    {
                        reader.Skip();
                    }
                }
                else
                {
                    reader.Skip();
                }
            }

            return true;
        }
        catch (JsonException)
        {
            return false;
        }
    }

    private static bool ReadStamp(ref Utf8JsonReader reader, out long sentTicks, out int publisher, out long counter)
    {
        sentTicks = 0;
        publisher = 0;
        counter = 0;
        var fields = 0;
        while (reader.Read() && reader.TokenType == JsonTokenType.PropertyName)
        {
            if (reader.ValueTextEquals("t"u8))
            {
                reader.Read();
                fields += reader.TryGetInt64(out sentTicks) ? 1 : 0;
            }
            else if (reader.ValueTextEquals("p"u8))
            {
                reader.Read();
                fields += reader.TryGetInt32(out publisher) ? 1 : 0;
            }
            else if (reader.ValueTextEquals("n"u8))
            {
                reader.Read();
                fields += reader.TryGetInt64(out counter) ? 1 : 0;
            }
            else
            {
                reader.Skip();
            }
        }

        return fields == 3;
    }

    private static FrameType TypeOf(ref Utf8JsonReader reader) =>
        reader.ValueTextEquals("message"u8) ? FrameType.Message
        : reader.ValueTextEquals("ack"u8) ? FrameType.Ack
        : reader.ValueTextEquals("echo"u8) ? FrameType.Echo
        : reader.ValueTextEquals("pong"u8) ? FrameType.Pong
        : reader.ValueTextEquals("joined"u8) ? FrameType.Joined
        : reader.ValueTextEquals("welcome"u8) ? FrameType.Welcome
        : reader.ValueTextEquals("error"u8) ? FrameType.Error
        : FrameType.Other;
}
