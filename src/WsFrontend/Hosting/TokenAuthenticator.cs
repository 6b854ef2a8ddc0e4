using System.Text;
using Broker.Frontend.Options;
using Microsoft.Extensions.Options;
using Microsoft.IdentityModel.JsonWebTokens;
using Microsoft.IdentityModel.Tokens;

namespace Broker.Frontend.Hosting;

/// <summary>The outcome of reading a token: the user ("sub") and when the token expires, or why it was refused.</summary>
public readonly record struct TokenIdentity(bool Valid, string User, DateTimeOffset? Expires, string Error)
{
    /// <summary>The token's "rooms" claim (per-namespace room grants), cloned; null when it has none.</summary>
    public System.Text.Json.JsonElement? Rooms { get; init; }
}

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
        return new TokenIdentity(true, jwt.Subject, expires, string.Empty)
        {
            Rooms = Commands.RoomGrants.ClaimOf(jwt),
        };
    }
}
