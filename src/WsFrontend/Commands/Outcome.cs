using Broker.Frontend.Protocol;

namespace Broker.Frontend.Commands;

/// <summary>Why a command was refused: an error code (<see cref="ErrorCodes"/>) and a sentence a person can act on.</summary>
public sealed record CommandError(string Code, string Message)
{
    /// <summary>The HTTP status the server API answers this refusal with.</summary>
    public int HttpStatus => Code switch
    {
        ErrorCodes.BadRequest => StatusCodes.Status400BadRequest,
        ErrorCodes.Unauthorized => StatusCodes.Status401Unauthorized,
        ErrorCodes.UnsupportedMediaType => StatusCodes.Status415UnsupportedMediaType,
        ErrorCodes.Forbidden => StatusCodes.Status403Forbidden,
        ErrorCodes.NotFound => StatusCodes.Status404NotFound,
        ErrorCodes.NotMember => StatusCodes.Status409Conflict,
        ErrorCodes.TooLarge => StatusCodes.Status413PayloadTooLarge,
        ErrorCodes.RateLimited => StatusCodes.Status429TooManyRequests,
        ErrorCodes.Unavailable => StatusCodes.Status503ServiceUnavailable,
        _ => StatusCodes.Status500InternalServerError,
    };
}

/// <summary>A command's value, or why it was refused.</summary>
public readonly record struct Outcome<T>(T Value, CommandError? Refused)
{
    public static implicit operator Outcome<T>(CommandError refusal) => new(default!, refusal);

    public static implicit operator Outcome<T>(T value) => new(value, null);
}
