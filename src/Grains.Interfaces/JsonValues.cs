using System.Text.Json;
using System.Text.Unicode;

namespace Broker.Grains;

/// <summary>What is wrong with bytes meant to be one JSON value written into clients' frames as they are.</summary>
public enum JsonValueProblem
{
    None,
    InvalidUtf8,
    Empty,
    LoneSurrogateEscape,
    NotJson,
}

/// <summary>
/// The rules a message's data meets wherever it enters without a frame around it (the HTTP API's
/// body, <see cref="BrokerServerApi"/>), the same as a frame's "data" on the socket path: valid
/// UTF-8 throughout (inside strings too, which Utf8JsonReader does not check), one JSON value at
/// most <c>maxDepth</c> levels deep, and no string or property name holding a lone surrogate
/// escape such as "\ud800". Whatever passes is valid JSON and valid UTF-8 in every client's frame.
/// Callers word the problem for their own users.
/// </summary>
public static class JsonValues
{
    /// <summary>The value without the JSON whitespace around it.</summary>
    public static ReadOnlySpan<byte> Trim(ReadOnlySpan<byte> utf8) => utf8.Trim(" \t\r\n"u8);

    /// <summary>The first problem found, or <see cref="JsonValueProblem.None"/>; <paramref name="error"/> is the reader's for NotJson.</summary>
    public static JsonValueProblem Check(ReadOnlySpan<byte> utf8, int maxDepth, out JsonException? error)
    {
        error = null;
        if (!Utf8.IsValid(utf8))
        {
            return JsonValueProblem.InvalidUtf8;
        }

        if (Trim(utf8).IsEmpty)
        {
            return JsonValueProblem.Empty;
        }

        var reader = new Utf8JsonReader(utf8, new JsonReaderOptions { MaxDepth = maxDepth });
        try
        {
            while (reader.Read())
            {
                if (reader.TokenType is JsonTokenType.String or JsonTokenType.PropertyName && reader.ValueIsEscaped && !Decodes(ref reader))
                {
                    return JsonValueProblem.LoneSurrogateEscape;
                }
            }
        }
        catch (JsonException ex)
        {
            error = ex;
            return JsonValueProblem.NotJson;
        }

        return JsonValueProblem.None;
    }

    /// <summary>Whether an escaped string decodes (the bytes are valid UTF-8: only a lone surrogate escape fails).</summary>
    private static bool Decodes(ref Utf8JsonReader reader)
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
}
