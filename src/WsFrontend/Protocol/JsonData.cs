using System.Text.Json;
using System.Text.Unicode;

namespace Broker.Frontend.Protocol;

/// <summary>
/// Checks a JSON value that arrives without a frame around it — a server API request body —
/// by the rules a frame's "data" meets on the socket path (<see cref="FrameParser"/>): valid
/// UTF-8 throughout, one JSON value at most 64 levels deep, and no string (nor property name)
/// holding a lone surrogate escape such as "\ud800". Those bytes are then written into frames
/// as they are, so whatever passes here is valid JSON and valid UTF-8 in every client's frame.
/// </summary>
public static class JsonData
{
    private static readonly JsonReaderOptions ReaderOptions = new() { MaxDepth = 64 };

    /// <summary>Why the bytes are not one acceptable JSON value (a sentence), or null when they are.</summary>
    public static string? FindProblem(ReadOnlySpan<byte> utf8)
    {
        // JsonDocument and Utf8JsonReader do not check the UTF-8 inside strings (only decoding
        // one does): without this, invalid bytes would reach clients in text frames.
        if (!Utf8.IsValid(utf8))
        {
            return "The body must be valid UTF-8.";
        }

        if (Trim(utf8).IsEmpty)
        {
            return "The body is empty; it must be one JSON value.";
        }

        var reader = new Utf8JsonReader(utf8, ReaderOptions);
        try
        {
            while (reader.Read())
            {
                if (reader.TokenType is JsonTokenType.String or JsonTokenType.PropertyName && reader.ValueIsEscaped && !DecodesToUtf16(ref reader))
                {
                    return "A string in the body holds a lone surrogate escape (like \"\\ud800\"); a \\u escape of a surrogate must be a high one (\\ud800-\\udbff) followed by a low one (\\udc00-\\udfff).";
                }
            }
        }
        catch (JsonException ex)
        {
            return $"The body is not valid JSON ({FirstSentence(ex.Message)}); it must be one JSON value.";
        }

        return null;
    }

    /// <summary>The value without the JSON whitespace around it (a body often ends with a newline).</summary>
    public static ReadOnlySpan<byte> Trim(ReadOnlySpan<byte> utf8) => utf8.Trim(" \t\r\n"u8);

    /// <summary>
    /// Whether an escaped string decodes: the bytes are valid UTF-8 (checked first), so the only
    /// way left to fail is an escape of an unpaired surrogate, which the reader refuses to decode.
    /// </summary>
    private static bool DecodesToUtf16(ref Utf8JsonReader reader)
    {
        try
        {
            _ = reader.GetString();
            return true;
        }
        catch (InvalidOperationException)
        {
            return false;
        }
    }

    private static string FirstSentence(string message)
    {
        var end = message.IndexOf(". ", StringComparison.Ordinal);
        return (end < 0 ? message : message[..end]).TrimEnd('.');
    }
}
