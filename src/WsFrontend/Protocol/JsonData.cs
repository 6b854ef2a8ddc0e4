using Broker.Grains;

namespace Broker.Frontend.Protocol;

/// <summary>
/// Checks a server API request body by the rules a frame's "data" meets on the socket path
/// (<see cref="JsonValues"/>, shared with the cluster's BrokerServerApi), in the HTTP API's words.
/// </summary>
public static class JsonData
{
    /// <summary>Why the bytes are not one acceptable JSON value (a sentence), or null when they are.</summary>
    public static string? FindProblem(ReadOnlySpan<byte> utf8) => JsonValues.Check(utf8, maxDepth: 64, out var error) switch
    {
        JsonValueProblem.None => null,
        JsonValueProblem.InvalidUtf8 => "The body must be valid UTF-8.",
        JsonValueProblem.Empty => "The body is empty; it must be one JSON value.",
        JsonValueProblem.LoneSurrogateEscape => "A string in the body holds a lone surrogate escape (like \"\\ud800\"); a \\u escape of a surrogate must be a high one (\\ud800-\\udbff) followed by a low one (\\udc00-\\udfff).",
        _ => $"The body is not valid JSON ({FirstSentence(error!.Message)}); it must be one JSON value.",
    };

    /// <summary>The value without the JSON whitespace around it (a body often ends with a newline).</summary>
    public static ReadOnlySpan<byte> Trim(ReadOnlySpan<byte> utf8) => JsonValues.Trim(utf8);

    private static string FirstSentence(string message)
    {
        var end = message.IndexOf(". ", StringComparison.Ordinal);
        return (end < 0 ? message : message[..end]).TrimEnd('.');
    }
}
