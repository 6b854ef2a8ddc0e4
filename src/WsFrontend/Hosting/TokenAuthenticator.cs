using System.Text;
using Microsoft.Extensions.Options;
using Microsoft.IdentityModel.JsonWebTokens;
using Microsoft.IdentityModel.Tokens;

namespace Broker.Frontend.Hosting;

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

/// <summary>The outcome of reading a token: the user ("sub") and when the token expires, or why it was refused.</summary>
public readonly record struct TokenIdentity(bool Valid, string User, DateTimeOffset? Expires, string Error);

/// <summary>Validates bearer tokens presented at the handshake.</summary>
public sealed class TokenAuthenticator
{
    private readonly JsonWebTokenHandler _handler = new();
    private readonly TokenValidationParameters? _parameters;

    public TokenAuthenticator(IOptions<BrokerOptions> options)
    {
        var jwt = options.Value.Jwt;
        if (!string.IsNullOrEmpty(jwt.SigningKey))
        {
            _parameters = new TokenValidationParameters
            {
                IssuerSigningKey = new SymmetricSecurityKey(Encoding.UTF8.GetBytes(jwt.SigningKey)),
                ValidateIssuerSigningKey = true,
                ValidateIssuer = !string.IsNullOrEmpty(jwt.Issuer),
                ValidIssuer = jwt.Issuer,
                ValidateAudience = !string.IsNullOrEmpty(jwt.Audience),
                ValidAudience = jwt.Audience,
                ValidateLifetime = true,
                RequireExpirationTime = false,
                ClockSkew = jwt.ClockSkew,
            };
        }
    }

    public async Task<TokenIdentity> ValidateAsync(string token)
    {
        if (_parameters is null)
        {
            return new TokenIdentity(false, string.Empty, null, "This broker accepts no tokens (no Broker:Jwt:SigningKey is configured).");
        }

        var result = await _handler.ValidateTokenAsync(token, _parameters);
        if (!result.IsValid)
        {
            var reason = result.Exception is SecurityTokenExpiredException ? "The token has expired." : "The token is not valid.";
            return new TokenIdentity(false, string.Empty, null, reason);
        }

        var jwt = (JsonWebToken)result.SecurityToken;
        if (string.IsNullOrEmpty(jwt.Subject))
        {
            return new TokenIdentity(false, string.Empty, null, "The token has no \"sub\" claim naming the user.");
        }

        DateTimeOffset? expires = jwt.ValidTo == DateTime.MinValue ? null : new DateTimeOffset(jwt.ValidTo, TimeSpan.Zero);
        return new TokenIdentity(true, jwt.Subject, expires, string.Empty);
    }
}
