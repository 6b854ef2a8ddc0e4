namespace Broker.Frontend.Protocol;

public enum ClientFrameType
{
    Join,
    Leave,
    Publish,
    Send,
    Presence,
    History,
    Echo,
    Ping,
    Refresh,
}

/// <summary>
/// One parsed client frame. Id and Data are the raw JSON bytes as the client sent them: an id
/// comes back byte for byte (0.5 stays 0.5, 2^53-1 keeps every digit) and data is passed on
/// without being parsed again.
/// </summary>
public sealed class ClientFrame
{
    public ClientFrameType Type { get; init; }

    /// <summary>Raw JSON of "id" (a number or a string), or empty when absent.</summary>
    public byte[] Id { get; init; } = [];

    public string? Room { get; init; }

    /// <summary>Raw JSON of "data", or null when absent ("data":null is present: the bytes "null").</summary>
    public byte[]? Data { get; init; }

    public string? MsgId { get; init; }

    public string? To { get; init; }

    public long? Since { get; init; }

    public string? Epoch { get; init; }

    public int? Limit { get; init; }

    /// <summary>The new token of a refresh frame.</summary>
    public string? Token { get; init; }
}

/// <summary>Why a frame was refused: an error code, a sentence, and the frame's id if it had a valid one.</summary>
public readonly record struct FrameError(string Code, string Message, byte[] Id);
