namespace Broker.Frontend.Protocol;

/// <summary>The values of error.code, defined once. An error frame never closes the connection.</summary>
public static class ErrorCodes
{
    /// <summary>Not JSON, not an object, a missing field or a field of the wrong type.</summary>
    public const string BadRequest = "bad_request";

    /// <summary>The frame's type is not one the protocol knows.</summary>
    public const string UnknownType = "unknown_type";

    /// <summary>Publish, presence or history for a room the connection has not joined, where the namespace requires membership.</summary>
    public const string NotMember = "not_member";

    /// <summary>The namespace does not allow this (client publish, presence turned off …).</summary>
    public const string Forbidden = "forbidden";

    /// <summary>The thing named does not exist (e.g. leaving a room that was not joined).</summary>
    public const string NotFound = "not_found";

    /// <summary>A field or a count is over its limit (a name too long, too many rooms).</summary>
    public const string TooLarge = "too_large";

    /// <summary>The connection sent more frames than its rate allows; the frame was dropped.</summary>
    public const string RateLimited = "rate_limited";

    /// <summary>The cluster could not answer in time; the operation may be retried.</summary>
    public const string Unavailable = "unavailable";

    /// <summary>An unexpected failure on the server; it is logged.</summary>
    public const string Internal = "internal";

    /// <summary>Server HTTP API only: the API key is missing or wrong, or (without a key) the caller is not a direct loopback caller.</summary>
    public const string Unauthorized = "unauthorized";

    /// <summary>Server HTTP API only: a request body, or a POST, whose Content-Type is not JSON.</summary>
    public const string UnsupportedMediaType = "unsupported_media_type";
}
