using Broker.Frontend.Options;
using Microsoft.Extensions.Options;

namespace Broker.Frontend.Security;

/// <summary>
/// Warnings at start about identities that are weaker than they look (protocol.md v1.1
/// "Identity"): none verified, because no token key is configured (every identity is a name
/// the client chose); or verified with public keys but for any issuer or audience — public
/// keys are usually an identity provider's, which signs tokens for many services (and, when
/// multi-tenant, for other organisations' tenants), each of which would open a socket here with
/// its own "sub" and "rooms" claim.
/// </summary>
internal sealed partial class UnverifiedIdentityWarning(IOptions<BrokerOptions> options, ILogger<UnverifiedIdentityWarning> logger) : IHostedService
{
    public Task StartAsync(CancellationToken cancellationToken)
    {
        var jwt = options.Value.Jwt;
        if (!jwt.AnyKeyConfigured)
        {
            LogUnverified(logger);
        }
        else if ((jwt.PublicKeys.Count > 0 || !string.IsNullOrEmpty(jwt.JwksUrl)) && (string.IsNullOrEmpty(jwt.Issuer) || string.IsNullOrEmpty(jwt.Audience)))
        {
            var notChecked = string.IsNullOrEmpty(jwt.Issuer) && string.IsNullOrEmpty(jwt.Audience) ? "issuer (\"iss\") and audience (\"aud\")"
                : string.IsNullOrEmpty(jwt.Issuer) ? "issuer (\"iss\")"
                : "audience (\"aud\")";
            LogAnyIssuerOrAudience(logger, notChecked);
        }

        return Task.CompletedTask;
    }

    public Task StopAsync(CancellationToken cancellationToken) => Task.CompletedTask;

    [LoggerMessage(EventId = 1400, Level = LogLevel.Warning, Message = "No token key is configured, so identities are unverified: a client may connect as any ?user= name it likes. Set Broker:Jwt:SigningKey, Broker:Jwt:PublicKeys or Broker:Jwt:JwksUrl before exposing the broker")]
    private static partial void LogUnverified(ILogger logger);

    [LoggerMessage(EventId = 1403, Level = LogLevel.Warning, Message = "Tokens verified with Broker:Jwt:PublicKeys or Broker:Jwt:JwksUrl are accepted whatever their {NotChecked}: a token the key's owner issued for another service or tenant opens a socket here, with its own \"sub\" and \"rooms\" claim. Set Broker:Jwt:Issuer and Broker:Jwt:Audience")]
    private static partial void LogAnyIssuerOrAudience(ILogger logger, string notChecked);
}
