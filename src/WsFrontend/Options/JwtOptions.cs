using System.Net;

namespace Broker.Frontend.Options;

/// <summary>
/// JWT settings ("Broker:Jwt"): which keys verify tokens (protocol.md v1.1 "Identity").
/// HS256/384/512 with <see cref="SigningKey"/>; RS256/384/512 and ES256/384/512 with
/// <see cref="PublicKeys"/> and/or the keys published at <see cref="JwksUrl"/>. Any of the three
/// set makes identities verified: every namespace's Anonymous then defaults to off, and
/// <c>?user=NAME</c>, where a namespace still allows it, becomes the user <c>guest:NAME</c>.
/// </summary>
public sealed class JwtOptions
{
    public const bool DefaultRequireExpiry = true;
    public static readonly TimeSpan DefaultClockSkew = TimeSpan.FromSeconds(30);
    public static readonly TimeSpan DefaultJwksRefreshInterval = TimeSpan.FromMinutes(10);
    public static readonly TimeSpan DefaultJwksMinRefetchInterval = TimeSpan.FromSeconds(2);
    public static readonly TimeSpan DefaultJwksFetchTimeout = TimeSpan.FromSeconds(5);

    /// <summary>The fewest bytes (UTF-8) a <see cref="SigningKey"/> may have, for HS256, HS384 and HS512 alike.</summary>
    public const int MinSigningKeyBytes = 32;

    /// <summary>The shared HMAC secret, at least 32 bytes of UTF-8. Unset (with no other key): tokens are refused (HTTP 401).</summary>
    public string? SigningKey { get; set; }

    /// <summary>
    /// Public keys for RS*/ES* tokens. Each entry is PEM text (<c>-----BEGIN PUBLIC KEY-----</c>,
    /// RSA or EC; or <c>-----BEGIN RSA PUBLIC KEY-----</c>), a JWK object (JSON; its <c>kid</c>,
    /// if any, is the key's id), a JWK Set (<c>{"keys":[…]}</c>), or the path of a file holding
    /// one of these. A key without a kid is tried for any token; a key with one only for tokens
    /// that name it (or name none).
    /// </summary>
    public List<string> PublicKeys { get; set; } = [];

    /// <summary>
    /// Where the issuer publishes its keys (a JWK Set): https, or plain http to a loopback
    /// address only. Fetched at the first token that needs it, kept for
    /// <see cref="JwksRefreshInterval"/>, fetched again at once for a token whose kid it lacks
    /// (at most once per <see cref="JwksMinRefetchInterval"/>).
    /// </summary>
    public string? JwksUrl { get; set; }

    /// <summary>How long fetched JWKS keys are used before they are fetched again (in the background: tokens keep being checked with the keys in hand).</summary>
    public TimeSpan JwksRefreshInterval { get; set; } = DefaultJwksRefreshInterval;

    /// <summary>The least time between two JWKS fetches caused by tokens whose kid is unknown (0: no limit); a token arriving within it gets 401.</summary>
    public TimeSpan JwksMinRefetchInterval { get; set; } = DefaultJwksMinRefetchInterval;

    /// <summary>How long one JWKS fetch may take; past it the fetch fails (logged), and the tokens that needed it get 401.</summary>
    public TimeSpan JwksFetchTimeout { get; set; } = DefaultJwksFetchTimeout;

    /// <summary>When set, a token's "iss" must equal it.</summary>
    public string? Issuer { get; set; }

    /// <summary>When set, a token's "aud" must contain it.</summary>
    public string? Audience { get; set; }

    /// <summary>A token without "exp" is refused (401). false accepts tokens that never expire.</summary>
    public bool RequireExpiry { get; set; } = DefaultRequireExpiry;

    /// <summary>Tolerance for clock differences when checking "exp" and "nbf".</summary>
    public TimeSpan ClockSkew { get; set; } = DefaultClockSkew;

    /// <summary>Any key is configured: tokens can be verified, and unverified names are kept apart (guest:).</summary>
    public bool AnyKeyConfigured =>
        !string.IsNullOrEmpty(SigningKey) || PublicKeys.Count > 0 || !string.IsNullOrEmpty(JwksUrl);

    internal IEnumerable<string> Validate(string section)
    {
        if (!string.IsNullOrEmpty(SigningKey) && System.Text.Encoding.UTF8.GetByteCount(SigningKey) < MinSigningKeyBytes)
        {
            yield return $"{section}:SigningKey must be at least {MinSigningKeyBytes} bytes long.";
        }

        for (var i = 0; i < PublicKeys.Count; i++)
        {
            if (string.IsNullOrWhiteSpace(PublicKeys[i]))
            {
                yield return $"{section}:PublicKeys:{i} is empty; give PEM text, a JWK, or the path of a file holding one.";
            }
        }

        if (!string.IsNullOrEmpty(JwksUrl) && JwksUrlProblem(JwksUrl) is { } problem)
        {
            yield return $"{section}:JwksUrl {problem}";
        }

        if (JwksRefreshInterval <= TimeSpan.Zero || JwksFetchTimeout <= TimeSpan.Zero)
        {
            yield return $"{section}:JwksRefreshInterval and {section}:JwksFetchTimeout must be positive.";
        }

        if (JwksMinRefetchInterval < TimeSpan.Zero)
        {
            yield return $"{section}:JwksMinRefetchInterval must be 0 (no limit) or positive.";
        }

        if (ClockSkew < TimeSpan.Zero)
        {
            yield return $"{section}:ClockSkew must be 0 or positive.";
        }
    }

    /// <summary>
    /// Why a JWKS URL may not be used, or null: keys fetched over plain http could be swapped by
    /// anyone on the way, which would let them sign any identity; only a loopback address is
    /// exempt (an issuer on the same host).
    /// </summary>
    private static string? JwksUrlProblem(string url)
    {
        if (!Uri.TryCreate(url, UriKind.Absolute, out var uri))
        {
            return $"\"{url}\" is not an absolute URL.";
        }

        if (uri.Scheme == Uri.UriSchemeHttps)
        {
            return null;
        }

        if (uri.Scheme != Uri.UriSchemeHttp)
        {
            return $"\"{url}\" must be an https URL.";
        }

        var loopback = uri.IsLoopback || (IPAddress.TryParse(uri.DnsSafeHost, out var address) && IPAddress.IsLoopback(address));
        return loopback
            ? null
            : $"\"{url}\" uses plain http to a host that is not a loopback address; use https (keys fetched over plain http could be replaced by anyone on the way, and with them every identity).";
    }
}
