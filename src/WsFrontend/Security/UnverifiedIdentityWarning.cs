using Broker.Frontend.Options;
using Microsoft.Extensions.Options;

namespace Broker.Frontend.Security;

/// <summary>
/// One warning at start when no token key is configured: then every identity is a name the
/// client chose (protocol.md v1.1 "Identity", development mode).
/// </summary>
internal sealed partial class UnverifiedIdentityWarning(IOptions<BrokerOptions> options, ILogger<UnverifiedIdentityWarning> logger) : IHostedService
{
    public Task StartAsync(CancellationToken cancellationToken)
    {
        if (!options.Value.Jwt.AnyKeyConfigured)
        {
            LogUnverified(logger);
        }

        return Task.CompletedTask;
    }

    public Task StopAsync(CancellationToken cancellationToken) => Task.CompletedTask;

    [LoggerMessage(EventId = 1400, Level = LogLevel.Warning, Message = "No token key is configured, so identities are unverified: a client may connect as any ?user= name it likes. Set Broker:Jwt:SigningKey, Broker:Jwt:PublicKeys or Broker:Jwt:JwksUrl before exposing the broker")]
    private static partial void LogUnverified(ILogger logger);
}
