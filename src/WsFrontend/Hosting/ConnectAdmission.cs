using Broker.Frontend.Options;
using Broker.Frontend.Security;

namespace Broker.Frontend.Hosting;

/// <summary>What a WebSocket connect request asks for, however it arrived (Kestrel's HTTP server or the pipe transport).</summary>
/// <param name="Path">The request path, e.g. "/chat" or "/chat/anything".</param>
/// <param name="Token">The <c>?token=</c> query value; null when the query has none.</param>
/// <param name="UserQuery">The <c>?user=</c> query value; empty when the query has none.</param>
public readonly record struct ConnectRequest(string Path, bool IsWebSocket, bool Stopping, string? Authorization, string? Origin, string? Token, string UserQuery)
{
    /// <summary>This node is not connected to the cluster (still waiting for it, or every silo is gone): nothing could be served.</summary>
    public bool NoCluster { get; init; }
}

/// <summary>A connect request let in: its namespace and identity.</summary>
/// <param name="User">The connection's user: a token's sub, a ?user= name (guest:NAME where tokens are verified), or a generated anon-… id.</param>
/// <param name="GeneratedUser">The user id was made up here (an anonymous connection without ?user=): no other connection has it.</param>
/// <param name="Token">The validated token (sub, expiry, rooms claim); null for a ?user= or anonymous connection.</param>
public sealed record Admitted(string Namespace, NamespaceOptions Options, string User, DateTimeOffset? Expires, bool GeneratedUser = false, TokenIdentity? Token = null)
{
    /// <summary>The connection's place under the caps (<see cref="ConnectionLimits"/>), given back when it ends.</summary>
    public ConnectionSlot Slot { get; init; }
}

/// <summary>A connect request refused, with the HTTP status and one-line body it is answered with.</summary>
public readonly record struct Refusal(int Status, string Message);

/// <summary>
/// The handshake's decisions, in protocol order (protocol.md "Connecting"): the namespace, a
/// WebSocket request, the node not stopping and connected to the cluster, the origin, then identity — a token; else
/// <c>?user=</c> where the namespace allows it; else an anonymous id — and the name's length.
/// Identity (v1.1): a <c>?user=</c> name may not be reserved (<see cref="UserNames"/>, 400), and
/// once a token key is configured it is unverified and lives apart, as <c>guest:NAME</c>.
/// </summary>
public static class ConnectAdmission
{
    public const string NoClusterMessage = "This node cannot reach the cluster yet; retry shortly or connect to another node.";

    public static async ValueTask<(Admitted? Admitted, Refusal Refusal)> AdmitAsync(ConnectRequest request, BrokerOptions options, TokenAuthenticator tokens, FrontendWarmup? warmup = null)
    {
        if (warmup is not null && request.IsWebSocket && !request.Stopping && warmup.IsWarmupPath(request.Path))
        {
            // This process's own warm-up connections, before it is ready (FrontendWarmup).
            return (new Admitted(FrontendWarmup.Namespace, FrontendWarmup.NamespaceOptions, request.UserQuery.Length > 0 ? request.UserQuery : UserNames.NewAnonymous(), Expires: null), default);
        }

        var segment = request.Path.TrimStart('/');
        var slash = segment.IndexOf('/', StringComparison.Ordinal);
        var ns = slash < 0 ? segment : segment[..slash];
        if (ns.Length == 0)
        {
            ns = "default";
        }

        var nsOptions = options.FindNamespace(ns);
        if (nsOptions is null)
        {
            return Refuse(StatusCodes.Status404NotFound, $"No namespace \"{ns}\" here. Namespaces: {string.Join(", ", options.Namespaces.Where(n => n.Value.Enabled).Select(n => n.Key == "default" ? "/" : "/" + n.Key))}.");
        }

        if (!request.IsWebSocket)
        {
            return Refuse(StatusCodes.Status426UpgradeRequired, $"This is the WebSocket endpoint of namespace \"{ns}\"; connect with a WebSocket client.");
        }

        if (request.Stopping)
        {
            return Refuse(StatusCodes.Status503ServiceUnavailable, "This node is shutting down; connect to another one.");
        }

        if (request.NoCluster)
        {
            return Refuse(StatusCodes.Status503ServiceUnavailable, NoClusterMessage);
        }

        if (!OriginAllowed(options, request.Origin))
        {
            return Refuse(StatusCodes.Status403Forbidden, "This origin may not connect.");
        }

        var token = BearerToken(request.Authorization) ?? request.Token;
        var user = request.UserQuery;
        var generated = false;
        TokenIdentity? identity = null;
        if (token is not null)
        {
            var validated = await tokens.ValidateAsync(token);
            if (!validated.Valid)
            {
                return Refuse(StatusCodes.Status401Unauthorized, validated.Error);
            }

            user = validated.User;
            identity = validated;
        }
        else if (user.Length > 0)
        {
            if (UserNames.IsReserved(user))
            {
                return Refuse(StatusCodes.Status400BadRequest, UserNames.ReservedMessage);
            }

            if (!nsOptions.AllowsAnonymous)
            {
                return Refuse(StatusCodes.Status401Unauthorized, $"Namespace \"{ns}\" does not accept ?user=; present a token.");
            }

            if (options.Jwt.AnyKeyConfigured)
            {
                // Unverified names never share a user with verified ones: ?user=alice cannot
                // receive what is sent to the token-holding alice.
                var limit = options.MaxNameLength - UserNames.GuestPrefix.Length;
                if (user.Length > limit)
                {
                    return Refuse(StatusCodes.Status400BadRequest, $"The user name is {user.Length} characters long; the limit is {Math.Max(limit, 0)} (it becomes \"{UserNames.GuestPrefix}NAME\").");
                }

                user = UserNames.Guest(user);
            }
        }
        else if (!nsOptions.AllowsAnonymous)
        {
            return Refuse(StatusCodes.Status401Unauthorized, $"Namespace \"{ns}\" needs a token (Authorization: Bearer or ?token=).");
        }
        else
        {
            user = UserNames.NewAnonymous();
            generated = true;
        }

        if (user.Length > options.MaxNameLength)
        {
            return Refuse(StatusCodes.Status400BadRequest, $"The user name is {user.Length} characters long; the limit is {options.MaxNameLength}.");
        }

        return (new Admitted(ns, nsOptions, user, identity?.Expires, generated, identity), default);
    }

    /// <summary>
    /// Whether a handshake's Origin may connect: any, unless AllowedOrigins lists some; a request
    /// without Origin (not a browser) is not a cross-site request and is let through.
    /// </summary>
    public static bool OriginAllowed(BrokerOptions options, string? origin) =>
        options.AllowedOrigins.Count == 0
        || string.IsNullOrEmpty(origin)
        || options.AllowedOrigins.Contains(origin, StringComparer.OrdinalIgnoreCase);

    private static (Admitted?, Refusal) Refuse(int status, string message) => (null, new Refusal(status, message));

    private static string? BearerToken(string? header) =>
        header is not null && header.StartsWith("Bearer ", StringComparison.OrdinalIgnoreCase) ? header[7..].Trim() : null;
}
