using Broker.Frontend.Diagnostics;
using Broker.Frontend.Security;
using Broker.Frontend.Connections;
using Broker.Frontend.Hosting;
using Broker.Frontend.Options;
using Broker.Frontend.Protocol;
using Microsoft.Extensions.Options;

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
/// Decides whether a client may do an action in a room, by the namespace's <c>Authorize</c> mode
/// (protocol.md v1.1 "Authorization"), and what a connection's rights are after a token refresh.
/// Called by the dispatcher for every client command on a room, and for nothing else: <c>send</c>
/// names a user, not a room, and <c>leave</c> is always allowed. The server API is never asked
/// (it is trusted).
/// <list type="bullet">
/// <item><c>Open</c>: everything is allowed (v1).</item>
/// <item><c>Token</c>: the connection's <see cref="RoomGrants"/>, from its token's "rooms" claim.
/// A connection without a token has none.</item>
/// <item><c>Proxy</c>: the application's answer (<see cref="RoomProxy"/>), remembered per
/// connection, room and action (<see cref="ProxyAnswers"/>) until the connection leaves the room.</item>
/// </list>
/// In Token and Proxy namespaces a member of a room may ask for its presence and history without
/// the grant; a non-member needs it (and then, where the namespace requires membership for it,
/// still gets not_member from the dispatcher).
/// </summary>
public sealed partial class RoomAuthorizer
{
    private readonly TokenAuthenticator _tokens;
    private readonly RoomProxy _proxy;
    private readonly int _proxyAnswers;
    private readonly ILogger<RoomAuthorizer> _logger;

    public RoomAuthorizer(TokenAuthenticator tokens, RoomProxy proxy, IOptions<BrokerOptions> options, ILogger<RoomAuthorizer> logger)
    {
        _tokens = tokens;
        _proxy = proxy;
        _proxyAnswers = ProxyAnswers.For(options.Value.MaxRoomsPerConnection);
        _logger = logger;
    }

    /// <summary>The grants a connection of namespace <paramref name="ns"/> holds with this token; none where the namespace does not read tokens' grants.</summary>
    public static RoomGrants GrantsFor(NamespaceOptions options, string ns, TokenIdentity? token) =>
        options.Authorize == RoomAuthorization.Token && token is { } presented ? RoomGrants.Parse(presented.Rooms, ns) : RoomGrants.None;

    /// <summary>Null when allowed; else the refusal to answer with.</summary>
    public ValueTask<CommandError?> AuthorizeAsync(Caller caller, string room, RoomAction action)
    {
        if (caller.Connection is not { } connection || caller.Options.Authorize == RoomAuthorization.Open)
        {
            return ValueTask.FromResult<CommandError?>(null);
        }

        if (action is RoomAction.Presence or RoomAction.History && caller.IsMemberOf(room))
        {
            return ValueTask.FromResult<CommandError?>(null);
        }

        if (caller.Options.Authorize == RoomAuthorization.Token)
        {
            return ValueTask.FromResult(connection.Grants.Allows(room, action) ? null : TokenRefusal(caller, room, action));
        }

        return AskProxyAsync(caller, connection, room, action);
    }

    /// <summary>The connection left <paramref name="room"/>: what the proxy said about it is forgotten.</summary>
    public static void Forget(ClientConnection connection, string room) => connection.ProxyAnswers?.Forget(room);

    /// <summary>
    /// Takes a refresh token for a connection: it must be valid and name the connection's own
    /// user, and the connection must have come in with a token. On success the connection's
    /// grants become the new token's and the proxy's answers are forgotten; the rooms it is in
    /// that the new grants do not let it join are returned, for the dispatcher to leave.
    /// The expiry is the caller's to replace.
    /// </summary>
    public async Task<Outcome<TokenIdentity>> RefreshAsync(Caller caller, string token)
    {
        var connection = caller.Connection ?? throw new InvalidOperationException("Only a connection refreshes a token.");
        if (!connection.Verified)
        {
            return Forbidden($"This connection came in without a token (as \"{connection.User}\", an unverified name), so it cannot take on a token's identity; reconnect with the token instead.");
        }

        var identity = await _tokens.ValidateAsync(token);
        if (!identity.Valid)
        {
            return Forbidden($"The new token was refused: {identity.Error} The connection keeps its current token, rights and expiry.");
        }

        if (!string.Equals(identity.User, connection.User, StringComparison.Ordinal))
        {
            return Forbidden($"The new token is for user \"{identity.User}\", but this connection is \"{connection.User}\"; a refresh must keep the same \"sub\". The connection keeps its current token, rights and expiry.");
        }

        connection.Grants = GrantsFor(caller.Options, caller.Namespace, identity);
        connection.ProxyAnswers?.Clear();
        return identity;
    }

    /// <summary>The rooms the connection is in that its (new) grants no longer let it join; none outside Token namespaces.</summary>
    public static List<string> RoomsNoLongerGranted(Caller caller)
    {
        if (caller.Connection is not { } connection || caller.Options.Authorize != RoomAuthorization.Token)
        {
            return [];
        }

        return connection.Rooms.Keys.Where(room => !connection.Grants.Allows(room, RoomAction.Join)).ToList();
    }

    private async ValueTask<CommandError?> AskProxyAsync(Caller caller, ClientConnection connection, string room, RoomAction action)
    {
        var answers = connection.ProxyAnswers ??= new ProxyAnswers(_proxyAnswers);
        if (answers.TryGet(room, action, out var remembered))
        {
            return remembered ? null : ProxyRefusal(room, action);
        }

        var url = caller.Options.ProxyUri ?? throw new InvalidOperationException($"Namespace \"{caller.Namespace}\" has Authorize=Proxy without a valid ProxyUrl; validation should have refused it.");
        var verdict = await _proxy.AskAsync(url, caller.Options.ProxyTimeout, new ProxyQuestion(caller.Namespace, room, connection.User, action, connection.Id, connection.Verified));
        FrontendMetrics.ProxyAnswered(verdict switch { ProxyVerdict.Allowed => "allow", ProxyVerdict.Denied => "deny", ProxyVerdict.Failed => "error", _ => "timeout" });
        switch (verdict)
        {
            case ProxyVerdict.Allowed:
                answers.Remember(room, action, true, connection.Rooms.ContainsKey);
                return null;
            case ProxyVerdict.Denied:
                answers.Remember(room, action, false, connection.Rooms.ContainsKey);
                LogRefused(_logger, connection.Id, room, RoomGrants.NameOf(action), "the proxy denied it");
                return ProxyRefusal(room, action);
            case ProxyVerdict.Failed:
                LogRefused(_logger, connection.Id, room, RoomGrants.NameOf(action), "the proxy failed");
                return ProxyRefusal(room, action);
            default:
                return new CommandError(ErrorCodes.Unavailable, $"The application's authorization service did not answer in time whether this connection may {Doing(action, room)}; try again.");
        }
    }

    private CommandError TokenRefusal(Caller caller, string room, RoomAction action)
    {
        var capability = RoomGrants.NameOf(action);
        LogRefused(_logger, caller.Id, room, capability, "not granted by the token");
        var why = caller.Connection!.Verified
            ? $"this connection's token's \"rooms\" claim does not grant \"{capability}\" for that room in namespace \"{caller.Namespace}\""
            : $"this connection has no token, and namespace \"{caller.Namespace}\" grants \"{capability}\" only through a token's \"rooms\" claim";
        return Forbidden($"Not allowed to {Doing(action, room)}: {why}{MembersMay(action)}.");
    }

    private static CommandError ProxyRefusal(string room, RoomAction action) =>
        Forbidden($"Not allowed to {Doing(action, room)}: the application's authorization service did not allow \"{RoomGrants.NameOf(action)}\" there{MembersMay(action)}.");

    private static string Doing(RoomAction action, string room) => action switch
    {
        RoomAction.Join => $"join room \"{room}\"",
        RoomAction.Publish => $"publish to room \"{room}\"",
        RoomAction.Presence => $"see who is in room \"{room}\"",
        _ => $"read the history of room \"{room}\"",
    };

    private static string MembersMay(RoomAction action) =>
        action is RoomAction.Presence or RoomAction.History ? " (members of the room may ask without it)" : string.Empty;

    internal static CommandError Forbidden(string message) => new(ErrorCodes.Forbidden, message);

    [LoggerMessage(EventId = 1410, Level = LogLevel.Debug, Message = "Connection {ConnectionId} may not {Action} in room {Room}: {Reason}")]
    private static partial void LogRefused(ILogger logger, string connectionId, string room, string action, string reason);
}
