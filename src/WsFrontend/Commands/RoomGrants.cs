using System.Text.Json;
using Microsoft.IdentityModel.JsonWebTokens;

namespace Broker.Frontend.Commands;

/// <summary>The capabilities a grant names (protocol.md v1.1 "Authorization"), one bit per <see cref="RoomAction"/>.</summary>
[Flags]
public enum RoomCapabilities
{
    None = 0,
    Join = 1,
    Publish = 2,
    Presence = 4,
    History = 8,
}

/// <summary>
/// What a token's "rooms" claim grants in one namespace: room patterns and their capabilities.
/// A pattern is an exact room name, or a prefix ending in <c>*</c> (<c>"public-*"</c>); a lone
/// <c>*</c> is every room. A room's capabilities are those of every pattern that matches it,
/// added up. Parsed once per connection (and again on refresh), then only read: a lookup is one
/// dictionary probe plus a walk of the prefix patterns.
/// </summary>
/// <remarks>
/// The claim: <c>{"chat": {"team-42": ["join","publish"], "public-*": ["join","history"]}}</c>
/// — namespaces, then patterns, then capability names. It may also arrive as a JSON string
/// holding that object (some issuers can only put strings in claims). Anything of another shape
/// is ignored, part by part: a namespace that is not an object, a pattern whose value is not an
/// array, an empty pattern, a capability that is not a string or not one of join, publish,
/// presence and history. Parsing never throws: a bad claim grants nothing rather than failing
/// the connection. A <c>*</c> anywhere but at the end is part of an exact room name.
/// </remarks>
public sealed class RoomGrants
{
    /// <summary>Grants nothing: a connection without a token, or a token without a claim for the namespace.</summary>
    public static readonly RoomGrants None = new(new Dictionary<string, RoomCapabilities>(0, StringComparer.Ordinal), []);

    /// <summary>The deepest a claim is read; a string holding the object is unwrapped once.</summary>
    private const int MaxDepth = 8;

    private readonly Dictionary<string, RoomCapabilities> _exact;
    private readonly (string Prefix, RoomCapabilities Capabilities)[] _prefixes;

    private RoomGrants(Dictionary<string, RoomCapabilities> exact, (string, RoomCapabilities)[] prefixes)
    {
        _exact = exact;
        _prefixes = prefixes;
    }

    /// <summary>Whether the grants name any room at all.</summary>
    public bool IsEmpty => _exact.Count == 0 && _prefixes.Length == 0;

    /// <summary>Everything granted for <paramref name="room"/>: the exact pattern's and every matching prefix's capabilities.</summary>
    public RoomCapabilities For(string room)
    {
        var granted = _exact.GetValueOrDefault(room);
        foreach (var (prefix, capabilities) in _prefixes)
        {
            if (room.StartsWith(prefix, StringComparison.Ordinal))
            {
                granted |= capabilities;
            }
        }

        return granted;
    }

    public bool Allows(string room, RoomAction action) => (For(room) & CapabilityOf(action)) != 0;

    public static RoomCapabilities CapabilityOf(RoomAction action) => action switch
    {
        RoomAction.Join => RoomCapabilities.Join,
        RoomAction.Publish => RoomCapabilities.Publish,
        RoomAction.Presence => RoomCapabilities.Presence,
        RoomAction.History => RoomCapabilities.History,
        _ => RoomCapabilities.None,
    };

    /// <summary>The capability's name in claims, frames and proxy questions: join, publish, presence, history.</summary>
    public static string NameOf(RoomAction action) => action switch
    {
        RoomAction.Join => "join",
        RoomAction.Publish => "publish",
        RoomAction.Presence => "presence",
        RoomAction.History => "history",
        _ => action.ToString(),
    };

    /// <summary>The name of the claim that carries the grants.</summary>
    public const string ClaimName = "rooms";

    /// <summary>
    /// A token's "rooms" claim, cloned (it outlives the token): the JSON value as the token holds
    /// it, a JSON string holding the object included (read by <see cref="Parse"/>); null when the
    /// token has none.
    /// </summary>
    public static JsonElement? ClaimOf(JsonWebToken token)
    {
        if (token.TryGetPayloadValue<JsonElement>(ClaimName, out var rooms))
        {
            return rooms.Clone();
        }

        // The token library hands a string-valued claim out only as a string.
        return token.TryGetPayloadValue<string>(ClaimName, out var text) && text is not null
            ? JsonSerializer.SerializeToElement(text)
            : null;
    }

    /// <summary>
    /// The grants of <paramref name="claim"/> (a token's "rooms") for namespace <paramref name="ns"/>;
    /// <see cref="None"/> when there is no claim, no entry for the namespace, or nothing usable in it.
    /// </summary>
    public static RoomGrants Parse(JsonElement? claim, string ns)
    {
        try
        {
            if (claim is not { } rooms || Unwrap(rooms) is not { ValueKind: JsonValueKind.Object } byNamespace)
            {
                return None;
            }

            Dictionary<string, RoomCapabilities>? exact = null;
            Dictionary<string, RoomCapabilities>? prefixes = null;
            foreach (var entry in byNamespace.EnumerateObject())
            {
                // A namespace named twice (JSON allows it) adds up.
                if (entry.Name != ns || Unwrap(entry.Value) is not { ValueKind: JsonValueKind.Object } patterns)
                {
                    continue;
                }

                foreach (var pattern in patterns.EnumerateObject())
                {
                    if (pattern.Name.Length == 0 || pattern.Value.ValueKind != JsonValueKind.Array)
                    {
                        continue;
                    }

                    var capabilities = Capabilities(pattern.Value);
                    if (capabilities == RoomCapabilities.None)
                    {
                        continue;
                    }

                    var isPrefix = pattern.Name[^1] == '*';
                    var target = isPrefix
                        ? prefixes ??= new Dictionary<string, RoomCapabilities>(StringComparer.Ordinal)
                        : exact ??= new Dictionary<string, RoomCapabilities>(StringComparer.Ordinal);
                    var key = isPrefix ? pattern.Name[..^1] : pattern.Name;
                    target[key] = target.GetValueOrDefault(key) | capabilities;
                }
            }

            return exact is null && prefixes is null
                ? None
                : new RoomGrants(
                    exact ?? new Dictionary<string, RoomCapabilities>(0, StringComparer.Ordinal),
                    prefixes?.Select(p => (p.Key, p.Value)).ToArray() ?? []);
        }
        catch (Exception ex) when (ex is JsonException or InvalidOperationException or ArgumentException)
        {
            // A claim is the issuer's, not the client's, but a malformed one must still not fail
            // a connection or a refresh: it grants nothing.
            return None;
        }
    }

    private static RoomCapabilities Capabilities(JsonElement names)
    {
        var capabilities = RoomCapabilities.None;
        foreach (var name in names.EnumerateArray())
        {
            if (name.ValueKind != JsonValueKind.String)
            {
                continue;
            }

            capabilities |= name.GetString() switch
            {
                "join" => RoomCapabilities.Join,
                "publish" => RoomCapabilities.Publish,
                "presence" => RoomCapabilities.Presence,
                "history" => RoomCapabilities.History,
                _ => RoomCapabilities.None,
            };
        }

        return capabilities;
    }

    /// <summary>The object itself, or the object a JSON string holds; null for anything else.</summary>
    private static JsonElement? Unwrap(JsonElement value)
    {
        if (value.ValueKind == JsonValueKind.Object)
        {
            return value;
        }

        if (value.ValueKind != JsonValueKind.String || value.GetString() is not { Length: > 0 } text)
        {
            return null;
        }

        using var document = JsonDocument.Parse(text, new JsonDocumentOptions { MaxDepth = MaxDepth });
        return document.RootElement.ValueKind == JsonValueKind.Object ? document.RootElement.Clone() : null;
    }
}
