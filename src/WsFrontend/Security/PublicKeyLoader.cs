using System.Security.Cryptography;
using System.Text.Json;
using Microsoft.IdentityModel.Tokens;

namespace Broker.Frontend.Security;

/// <summary>
/// Reads the public keys that verify RS*/ES* tokens, from a <c>Broker:Jwt:PublicKeys</c> entry
/// or a fetched JWK Set. Only public RSA and EC keys are taken: a symmetric key ("oct") in a key
/// set would let its bytes verify HS* tokens, and a private key has no business in the broker's
/// configuration, so both are refused (an entry) or skipped (a fetched set).
/// </summary>
internal static class PublicKeyLoader
{
    /// <summary>
    /// The keys of one configuration entry: PEM text (one or more <c>PUBLIC KEY</c> or <c>RSA
    /// PUBLIC KEY</c> blocks), a JWK object, a JWK Set, or the path of a file holding one of
    /// these. A PEM key has no kid; a JWK's kid is its id.
    /// </summary>
    /// <exception cref="FormatException">The entry holds no usable public key; the message says why.</exception>
    public static IReadOnlyList<SecurityKey> Load(string entry)
    {
        var text = entry.Trim();
        if (!LooksLikeKey(text))
        {
            string path;
            try
            {
                path = Path.GetFullPath(text);
                text = File.ReadAllText(path).Trim();
            }
            catch (Exception e) when (e is IOException or UnauthorizedAccessException or ArgumentException or NotSupportedException)
            {
                throw new FormatException($"is neither PEM text (\"-----BEGIN PUBLIC KEY-----\"), a JWK (JSON), nor the path of a readable file ({e.Message}).", e);
            }

            if (!LooksLikeKey(text))
            {
                throw new FormatException($"names the file {path}, which holds neither PEM text (\"-----BEGIN PUBLIC KEY-----\") nor a JWK (JSON).");
            }
        }

        return text.StartsWith('{') ? FromJson(text) : FromPem(text);
    }

    /// <summary>The usable keys of a fetched JWK Set: public RSA and EC signing keys; the rest is skipped.</summary>
    public static List<SecurityKey> FromJwks(IEnumerable<JsonWebKey> jwks)
    {
        var keys = new List<SecurityKey>();
        foreach (var jwk in jwks)
        {
            if (TryConvert(jwk, out var key, out _))
            {
                keys.Add(key);
            }
        }

        return keys;
    }

    private static bool LooksLikeKey(string text) =>
        text.StartsWith("-----BEGIN", StringComparison.Ordinal) || text.StartsWith('{');

    private static List<SecurityKey> FromJson(string json)
    {
        List<JsonWebKey> jwks;
        try
        {
            using var document = JsonDocument.Parse(json);
            jwks = document.RootElement.TryGetProperty("keys", out _)
                ? [.. new JsonWebKeySet(json).Keys]
                : [new JsonWebKey(json)];
        }
        catch (Exception e) when (e is JsonException or ArgumentException)
        {
            throw new FormatException($"is not a valid JWK or JWK Set ({e.Message}).", e);
        }

        var keys = new List<SecurityKey>();
        foreach (var jwk in jwks)
        {
            if (!TryConvert(jwk, out var key, out var problem))
            {
                throw new FormatException(problem);
            }

            keys.Add(key);
        }

        return keys.Count > 0 ? keys : throw new FormatException("is a JWK Set without keys.");
    }

    private static bool TryConvert(JsonWebKey jwk, out SecurityKey key, out string problem)
    {
        key = null!;
        if (jwk.Kty != JsonWebAlgorithmsKeyTypes.RSA && jwk.Kty != JsonWebAlgorithmsKeyTypes.EllipticCurve)
        {
            problem = $"holds a key of type \"{jwk.Kty}\"; only public RSA and EC keys verify tokens here (an HMAC secret goes in Broker:Jwt:SigningKey).";
            return false;
        }

        if (jwk.HasPrivateKey)
        {
            problem = "holds a private key; give the issuer's public key only.";
            return false;
        }

        if (!string.IsNullOrEmpty(jwk.Use) && jwk.Use != JsonWebKeyUseNames.Sig)
        {
            problem = $"holds a key for \"use\": \"{jwk.Use}\", not for signatures (\"sig\").";
            return false;
        }

        if (!JsonWebKeyConverter.TryConvertToSecurityKey(jwk, out var converted) || converted is not AsymmetricSecurityKey)
        {
            problem = $"holds a {jwk.Kty} key that could not be read (missing or malformed parameters).";
            return false;
        }

        key = converted;
        problem = string.Empty;
        return true;
    }

    private static List<SecurityKey> FromPem(string pem)
    {
        var keys = new List<SecurityKey>();
        var rest = pem.AsSpan();
        while (PemEncoding.TryFind(rest, out var fields))
        {
            var label = rest[fields.Label].ToString();
            // TryFind has checked the base64 already.
            var der = Convert.FromBase64String(rest[fields.Base64Data].ToString());
            keys.Add(label switch
            {
                "PUBLIC KEY" => FromSubjectPublicKeyInfo(der),
                "RSA PUBLIC KEY" => FromRsaPublicKey(der),
                _ when label.Contains("PRIVATE", StringComparison.Ordinal) => throw new FormatException($"is a private key (\"{label}\"); give the issuer's public key only (openssl pkey -pubout)."),
                _ => throw new FormatException($"is PEM \"{label}\"; give a \"PUBLIC KEY\" (RSA or EC) or an \"RSA PUBLIC KEY\"."),
            });
            rest = rest[fields.Location.End..];
        }

        return keys.Count > 0 ? keys : throw new FormatException("starts like PEM but holds no complete PEM block.");
    }

    private static SecurityKey FromSubjectPublicKeyInfo(byte[] der)
    {
        try
        {
            return RsaKey(rsa => rsa.ImportSubjectPublicKeyInfo(der, out _));
        }
        catch (CryptographicException)
        {
            // Not RSA: the same bytes as an EC key, or neither.
        }

        var ecdsa = ECDsa.Create();
        try
        {
            ecdsa.ImportSubjectPublicKeyInfo(der, out _);
            return new ECDsaSecurityKey(ecdsa);
        }
        catch (CryptographicException e)
        {
            ecdsa.Dispose();
            throw new FormatException($"is a public key that is neither RSA nor EC ({e.Message}).", e);
        }
    }

    private static SecurityKey FromRsaPublicKey(byte[] der)
    {
        try
        {
            return RsaKey(rsa => rsa.ImportRSAPublicKey(der, out _));
        }
        catch (CryptographicException e)
        {
            throw new FormatException($"is an \"RSA PUBLIC KEY\" that could not be read ({e.Message}).", e);
        }
    }

    private static RsaSecurityKey RsaKey(Action<RSA> import)
    {
        var rsa = RSA.Create();
        try
        {
            import(rsa);
            return new RsaSecurityKey(rsa);
        }
        catch (CryptographicException)
        {
            rsa.Dispose();
            throw;
        }
    }
}
