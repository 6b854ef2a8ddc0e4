namespace Broker.Frontend.Options;

/// <summary>JWT settings ("Broker:Jwt"). Tokens are HMAC-signed (HS256/384/512) with SigningKey.</summary>
public sealed class JwtOptions
{
    /// <summary>The shared HMAC secret, at least 32 bytes of UTF-8. Unset: tokens are refused (HTTP 401).</summary>
    public string? SigningKey { get; set; }

    /// <summary>When set, a token's "iss" must equal it.</summary>
    public string? Issuer { get; set; }

    /// <summary>When set, a token's "aud" must contain it.</summary>
    public string? Audience { get; set; }

    /// <summary>Tolerance for clock differences when checking "exp" and "nbf".</summary>
    public TimeSpan ClockSkew { get; set; } = TimeSpan.FromSeconds(30);
}
