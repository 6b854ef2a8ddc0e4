using System.Text;
using System.Text.Json;
using Broker.Frontend.Options;
using Microsoft.Extensions.Options;
using Microsoft.IdentityModel.JsonWebTokens;
using Microsoft.IdentityModel.Tokens;

namespace Broker.Frontend.Security;

/// <summary>The outcome of reading a token: the user ("sub"), when the token expires and its "rooms" claim, or why it was refused.</summary>
/// <param name="Error">Why the token was refused: one sentence for the client (the body of the 401).</param>
/// <param name="Rooms">The token's "rooms" claim, cloned (it outlives the token's text); null when the token has none.</param>
public readonly record struct TokenIdentity(bool Valid, string User, DateTimeOffset? Expires, string Error, JsonElement? Rooms = null);

/// <summary>
/// Validates bearer tokens, at the handshake and on an open connection (a refresh). What is
/// accepted follows from the configured keys (protocol.md v1.1 "Identity"):
/// <list type="bullet">
/// <item>HS256/384/512 with <c>Broker:Jwt:SigningKey</c>; RS256/384/512 and ES256/384/512 with
/// <c>Broker:Jwt:PublicKeys</c> or the keys at <c>Broker:Jwt:JwksUrl</c>. Any other "alg" —
/// "none" above all — is refused before a key is looked at, and an HS* token is only ever
/// checked with the signing key, an RS*/ES* token only with public keys of its type: the bytes
/// of a public key never serve as an HMAC secret.</item>
/// <item>"exp" is required unless <c>RequireExpiry</c> is false; "iss"/"aud" are checked where
/// configured. "sub" is the user, and may not be a name the broker reserves (<see cref="UserNames"/>):
/// a token naming "server" is the issuer's mistake, refused rather than honoured.</item>
/// </list>
/// </summary>
public sealed class TokenAuthenticator : IDisposable
{
    public const string NoKeysMessage =
        "This broker accepts no tokens (none of Broker:Jwt:SigningKey, Broker:Jwt:PublicKeys, Broker:Jwt:JwksUrl is configured).";

    private static readonly string[] HmacAlgorithms = [SecurityAlgorithms.HmacSha256, SecurityAlgorithms.HmacSha384, SecurityAlgorithms.HmacSha512];
    private static readonly string[] RsaAlgorithms = [SecurityAlgorithms.RsaSha256, SecurityAlgorithms.RsaSha384, SecurityAlgorithms.RsaSha512];
    private static readonly string[] EcdsaAlgorithms = [SecurityAlgorithms.EcdsaSha256, SecurityAlgorithms.EcdsaSha384, SecurityAlgorithms.EcdsaSha512];

    private readonly JsonWebTokenHandler _handler = new();
    private readonly TokenValidationParameters? _parameters;
    private readonly SymmetricSecurityKey? _signingKey;
    private readonly List<SecurityKey> _publicKeys = [];
    private readonly JwksKeyCache? _jwks;
    private readonly HashSet<string> _algorithms = new(StringComparer.Ordinal);
    private readonly string _accepted = string.Empty;

    public TokenAuthenticator(IOptions<BrokerOptions> options, ILogger<TokenAuthenticator>? logger = null, TimeProvider? time = null)
    {
        var jwt = options.Value.Jwt;
        time ??= TimeProvider.System;
        if (!jwt.AnyKeyConfigured)
        {
            return;
        }

        var factory = new HmacCryptoProviderFactory();
        if (!string.IsNullOrEmpty(jwt.SigningKey))
        {
            _signingKey = new SymmetricSecurityKey(Encoding.UTF8.GetBytes(jwt.SigningKey)) { CryptoProviderFactory = factory };
            _algorithms.UnionWith(HmacAlgorithms);
        }

        foreach (var entry in jwt.PublicKeys)
        {
            // Each entry was read once already, by the start-up validation (TokenKeyValidation).
            _publicKeys.AddRange(PublicKeyLoader.Load(entry));
        }

        if (_publicKeys.Any(k => Family(k) == KeyFamily.Rsa))
        {
            _algorithms.UnionWith(RsaAlgorithms);
        }

        if (_publicKeys.Any(k => Family(k) == KeyFamily.Ecdsa))
        {
            _algorithms.UnionWith(EcdsaAlgorithms);
        }

        if (!string.IsNullOrEmpty(jwt.JwksUrl))
        {
            // What the issuer publishes is known only once fetched: both kinds.
            _jwks = new JwksKeyCache(jwt, time, (ILogger?)logger ?? Microsoft.Extensions.Logging.Abstractions.NullLogger.Instance);
            _algorithms.UnionWith(RsaAlgorithms);
            _algorithms.UnionWith(EcdsaAlgorithms);
        }

        _accepted = string.Join(", ", _algorithms.Order(StringComparer.Ordinal));
        _parameters = new TokenValidationParameters
        {
            ValidAlgorithms = _algorithms,
            IssuerSigningKeyResolver = ResolveKeys,
            TryAllIssuerSigningKeys = false,
            ValidateIssuerSigningKey = true,
            RequireSignedTokens = true,
            ValidateIssuer = !string.IsNullOrEmpty(jwt.Issuer),
            ValidIssuer = jwt.Issuer,
            ValidateAudience = !string.IsNullOrEmpty(jwt.Audience),
            ValidAudience = jwt.Audience,
            ValidateLifetime = true,
            RequireExpirationTime = jwt.RequireExpiry,
            ClockSkew = jwt.ClockSkew,
            CryptoProviderFactory = factory,
        };
    }

    private enum KeyFamily
    {
        Other,
        Hmac,
        Rsa,
        Ecdsa,
    }

    /// <summary>Validates a token; never throws for anything in the token.</summary>
    public async Task<TokenIdentity> ValidateAsync(string token, CancellationToken cancellationToken = default)
    {
        if (_parameters is null)
        {
            return Refused(NoKeysMessage);
        }

        JsonWebToken jwt;
        try
        {
            jwt = new JsonWebToken(token);
        }
        catch (Exception e) when (e is ArgumentException or SecurityTokenException)
        {
            return Refused("The token is not a well-formed JWT (header.payload.signature, base64url).");
        }

        var algorithm = jwt.Alg ?? string.Empty;
        if (!_algorithms.Contains(algorithm))
        {
            return Refused($"The token's algorithm (\"alg\") is not accepted here; accepted: {_accepted}.");
        }

        if (_jwks is not null && AlgorithmFamily(algorithm) != KeyFamily.Hmac && !HasConfiguredKey(jwt.Kid))
        {
            var status = await _jwks.EnsureAsync(jwt.Kid, cancellationToken);
            if (status != JwksKeyStatus.Found && !Candidates(_publicKeys, algorithm, jwt.Kid).Any())
            {
                return Refused(status == JwksKeyStatus.Unavailable
                    ? "The keys to check this token could not be fetched from the issuer (Broker:Jwt:JwksUrl); try again later."
                    : "No key of the issuer has the token's \"kid\".");
            }
        }

        var result = await _handler.ValidateTokenAsync(jwt, _parameters);
        if (!result.IsValid)
        {
            return Refused(Reason(result.Exception, jwt));
        }

        var user = jwt.Subject;
        if (string.IsNullOrEmpty(user))
        {
            return Refused("The token has no \"sub\" claim naming the user.");
        }

        if (UserNames.IsReserved(user))
        {
            return Refused("The token's \"sub\" is a name the broker reserves (\"server\", \"anon-…\", \"guest:…\"); the issuer must not use it.");
        }

        DateTimeOffset? expires = jwt.ValidTo == DateTime.MinValue ? null : new DateTimeOffset(jwt.ValidTo, TimeSpan.Zero);
        return new TokenIdentity(true, user, expires, string.Empty, Commands.RoomGrants.ClaimOf(jwt));
    }

    public void Dispose() => _jwks?.Dispose();

    private static TokenIdentity Refused(string error) => new(false, string.Empty, null, error);

    private static string Reason(Exception? exception, JsonWebToken jwt) => exception switch
    {
        SecurityTokenExpiredException => "The token has expired.",
        SecurityTokenNoExpirationException => "The token has no expiry (\"exp\" claim); this broker accepts only tokens that expire.",
        SecurityTokenNotYetValidException => "The token is not valid yet (\"nbf\").",
        SecurityTokenInvalidIssuerException => "The token's issuer (\"iss\") is not the one this broker trusts.",
        SecurityTokenInvalidAudienceException => "The token's audience (\"aud\") is not this broker.",
        SecurityTokenInvalidLifetimeException => "The token's lifetime (\"nbf\"/\"exp\") is not valid.",
        SecurityTokenSignatureKeyNotFoundException => string.IsNullOrEmpty(jwt.Kid)
            ? "No configured key verifies the token's signature."
            : "No configured key has the token's \"kid\".",
        SecurityTokenInvalidAlgorithmException => "The token's algorithm (\"alg\") does not fit the key that would check it.",
        SecurityTokenInvalidSignatureException => "The token's signature does not verify.",
        _ => "The token is not valid.",
    };

    /// <summary>The "rooms" claim, read from the payload and cloned, so that it outlives the token.</summary>

    /// <summary>A configured public key names this kid: the JWKS need not be asked.</summary>
    private bool HasConfiguredKey(string? kid) =>
        !string.IsNullOrEmpty(kid) && _publicKeys.Any(k => string.Equals(k.KeyId, kid, StringComparison.Ordinal));

    /// <summary>
    /// The keys that may check a token: the signing key for HS*; for RS*/ES*, the public keys of
    /// that type (configured, then fetched) whose kid is the token's, or that have none.
    /// </summary>
    private IEnumerable<SecurityKey> ResolveKeys(string token, SecurityToken securityToken, string kid, TokenValidationParameters parameters)
    {
        var algorithm = ((JsonWebToken)securityToken).Alg;
        if (AlgorithmFamily(algorithm) == KeyFamily.Hmac)
        {
            return _signingKey is null ? [] : [_signingKey];
        }

        var keys = Candidates(_publicKeys, algorithm, kid);
        return _jwks is null ? keys : keys.Concat(Candidates(_jwks.Keys, algorithm, kid));
    }

    private static IEnumerable<SecurityKey> Candidates(IEnumerable<SecurityKey> keys, string algorithm, string? kid)
    {
        var family = AlgorithmFamily(algorithm);
        return keys.Where(k => Family(k) == family
            && (string.IsNullOrEmpty(kid) || string.IsNullOrEmpty(k.KeyId) || string.Equals(k.KeyId, kid, StringComparison.Ordinal)));
    }

    private static KeyFamily AlgorithmFamily(string algorithm) =>
        HmacAlgorithms.Contains(algorithm) ? KeyFamily.Hmac
        : RsaAlgorithms.Contains(algorithm) ? KeyFamily.Rsa
        : EcdsaAlgorithms.Contains(algorithm) ? KeyFamily.Ecdsa
        : KeyFamily.Other;

    private static KeyFamily Family(SecurityKey key) => key switch
    {
        SymmetricSecurityKey => KeyFamily.Hmac,
        RsaSecurityKey => KeyFamily.Rsa,
        ECDsaSecurityKey => KeyFamily.Ecdsa,
        X509SecurityKey { PublicKey: System.Security.Cryptography.RSA } => KeyFamily.Rsa,
        X509SecurityKey { PublicKey: System.Security.Cryptography.ECDsa } => KeyFamily.Ecdsa,
        _ => KeyFamily.Other,
    };
}
