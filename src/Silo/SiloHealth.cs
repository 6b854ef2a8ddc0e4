using Microsoft.AspNetCore.Diagnostics.HealthChecks;
using Microsoft.Extensions.Diagnostics.HealthChecks;
using Orleans.Runtime;

namespace Broker.Silo;

/// <summary>Ready while this silo is an active member of the cluster (joining, shutting down or declared dead: not).</summary>
public sealed class SiloReadyCheck(IClusterMembershipService membership, ILocalSiloDetails local) : IHealthCheck
{
    public const string Tag = "ready";

    public Task<HealthCheckResult> CheckHealthAsync(HealthCheckContext context, CancellationToken cancellationToken = default)
    {
        var status = membership.CurrentSnapshot.GetSiloStatus(local.SiloAddress);
        return Task.FromResult(status == SiloStatus.Active
            ? HealthCheckResult.Healthy("active cluster member")
            : HealthCheckResult.Unhealthy(status.ToString().ToLowerInvariant()));
    }
}

/// <summary>
/// <c>/health/live</c> (200 while the process serves HTTP) and <c>/health/ready</c> (200 while an
/// active member, else 503) on the silo's health port, beside <c>/healthz</c> (readiness, with a JSON body).
/// </summary>
public static class SiloHealth
{
    public static IServiceCollection AddSiloHealth(this IServiceCollection services)
    {
        services.AddHealthChecks().AddCheck<SiloReadyCheck>("membership", tags: [SiloReadyCheck.Tag]);

        // A probe that finds the silo not ready is an answer, not an error: without this, every
        // unready probe (joining, shutting down) logs an Error line.
        services.AddLogging(logging => logging.AddFilter("Microsoft.Extensions.Diagnostics.HealthChecks.DefaultHealthCheckService", LogLevel.Critical));
        return services;
    }

    public static WebApplication MapSiloHealth(this WebApplication app)
    {
        app.MapHealthChecks("/health/live", new HealthCheckOptions { Predicate = _ => false });
        app.MapHealthChecks("/health/ready", new HealthCheckOptions { Predicate = check => check.Tags.Contains(SiloReadyCheck.Tag) });
        return app;
    }
}
