using System.Security.Claims;
using System.Security.Cryptography;
using System.Text;
using Microsoft.IdentityModel.JsonWebTokens;
using Microsoft.IdentityModel.Tokens;

namespace Broker.Frontend.Tests.Identity;

/// <summary>Tokens signed in the test, with Microsoft.IdentityModel, the way an issuer would.</summary>
internal static class TestTokens
{
    /// <summary>Exactly 32 bytes: the least the broker takes, and less than HS384/HS512's hash size.</summary>
    public const string HmacKey = "0123456789abcdef0123456789abcdef";

    public static SigningCredentials Hmac(string algorithm = SecurityAlgorithms.HmacSha256, string key = HmacKey) =>
        new(new SymmetricSecurityKey(Encoding.UTF8.GetBytes(key)), algorithm);

    public static SigningCredentials Rsa(RSA rsa, string? kid = null) =>
        new(new RsaSecurityKey(rsa) { KeyId = kid }, SecurityAlgorithms.RsaSha256);

    public static SigningCredentials Ecdsa(ECDsa ecdsa, string? kid = null) =>
        new(new ECDsaSecurityKey(ecdsa) { KeyId = kid }, SecurityAlgorithms.EcdsaSha256);

    /// <summary>A signed token for <paramref name="subject"/> (no "sub" when null); lifetime null: no "exp" at all.</summary>
    public static string Create(
        SigningCredentials credentials,
        string? subject,
        TimeSpan? lifetime,
        IDictionary<string, object>? claims = null,
        string? issuer = null)
    {
        var now = DateTime.UtcNow;
        var descriptor = new SecurityTokenDescriptor
        {
            Issuer = issuer,
            Subject = subject is null ? new ClaimsIdentity() : new ClaimsIdentity([new Claim("sub", subject)]),
            IssuedAt = now.AddMinutes(-1),
            NotBefore = now.AddMinutes(-1),
            Expires = lifetime is { } life ? now + life : null,
            Claims = claims,
            SigningCredentials = credentials,
        };

        // Without this the handler adds an "exp" of its own (an hour) to a token that has none.
        return new JsonWebTokenHandler { SetDefaultTimesOnTokenCreation = false }.CreateToken(descriptor);
    }

    public static string Create(SigningCredentials credentials, string subject) =>
        Create(credentials, subject, TimeSpan.FromHours(1));

    /// <summary>An unsigned token ("alg":"none"), as an attacker would write it.</summary>
    public static string Unsigned(string subject)
    {
        var header = Base64UrlEncoder.Encode("{\"alg\":\"none\",\"typ\":\"JWT\"}");
        var exp = DateTimeOffset.UtcNow.AddHours(1).ToUnixTimeSeconds();
        var payload = Base64UrlEncoder.Encode($"{{\"sub\":\"{subject}\",\"exp\":{exp}}}");
        return $"{header}.{payload}.";
    }

    /// <summary>
    /// An HMAC-signed token written by hand (RFC 7515 compact form): IdentityModel will not sign
    /// HS384/HS512 with a key shorter than the hash, and the classic algorithm-confusion forgery
    /// uses a public key's PEM text as the secret.
    /// </summary>
    public static string HmacSigned(string algorithm, string secret, string subject, TimeSpan? lifetime = null)
    {
        var header = Base64UrlEncoder.Encode($"{{\"alg\":\"{algorithm}\",\"typ\":\"JWT\"}}");
        var exp = DateTimeOffset.UtcNow.Add(lifetime ?? TimeSpan.FromHours(1)).ToUnixTimeSeconds();
        var payload = Base64UrlEncoder.Encode($"{{\"sub\":\"{subject}\",\"exp\":{exp}}}");
        var key = Encoding.UTF8.GetBytes(secret);
        var signed = Encoding.ASCII.GetBytes(header + "." + payload);
        var signature = algorithm switch
        {
            SecurityAlgorithms.HmacSha256 => HMACSHA256.HashData(key, signed),
            SecurityAlgorithms.HmacSha384 => HMACSHA384.HashData(key, signed),
            SecurityAlgorithms.HmacSha512 => HMACSHA512.HashData(key, signed),
            _ => throw new ArgumentOutOfRangeException(nameof(algorithm), algorithm, "Not an HMAC algorithm."),
        };
        return $"{header}.{payload}.{Base64UrlEncoder.Encode(signature)}";
    }

    /// <summary>The public half of an RSA key as a JWK object (JSON), with a kid.</summary>
    public static string RsaJwk(RSA rsa, string kid)
    {
        var p = rsa.ExportParameters(false);
        return $"{{\"kty\":\"RSA\",\"use\":\"sig\",\"alg\":\"RS256\",\"kid\":\"{kid}\",\"n\":\"{Base64UrlEncoder.Encode(p.Modulus)}\",\"e\":\"{Base64UrlEncoder.Encode(p.Exponent)}\"}}";
    }

    /// <summary>A JWK Set of the given JWK objects.</summary>
    public static string JwkSet(params string[] jwks) => $"{{\"keys\":[{string.Join(",", jwks)}]}}";
}
