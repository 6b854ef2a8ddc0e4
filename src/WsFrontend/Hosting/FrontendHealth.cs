using Microsoft.AspNetCore.Diagnostics.HealthChecks;
using Microsoft.Extensions.Diagnostics.HealthChecks;

namespace Broker.Frontend.Hosting;

/// <summary>
/// Liveness and readiness, with ASP.NET Core health checks: <c>/health/live</c> answers 200 while
/// the process serves HTTP at all (a restart would not help a front-end that waits for a silo);
/// <c>/health/ready</c> answers 200 only while it is connected to the cluster and not draining,
/// 503 otherwise — the check a load balancer routes by. <c>/healthz</c> stays, as readiness.
/// </summary>
public sealed class FrontendReadyCheck(IClusterReadiness cluster, IHostApplicationLifetime lifetime) : IHealthCheck
{
    public const string Tag = "ready";

    public Task<HealthCheckResult> CheckHealthAsync(HealthCheckContext context, CancellationToken cancellationToken = default) =>
        Task.FromResult(
            lifetime.ApplicationStopping.IsCancellationRequested ? HealthCheckResult.Unhealthy("shutting down")
            : cluster.IsReady ? HealthCheckResult.Healthy("connected to the cluster")
            : HealthCheckResult.Unhealthy("no cluster"));
}

public static class FrontendHealth
{
    public const string LivePath = "/health/live";
    public const string ReadyPath = "/health/ready";

    public static IServiceCollection AddFrontendHealth(this IServiceCollection services)
    {
        services.AddHealthChecks().AddCheck<FrontendReadyCheck>("cluster", tags: [FrontendReadyCheck.Tag]);

        // The health check service logs an error for every probe answered unhealthy (one a probe
        // period while waiting for the cluster); ClusterConnector logs the changes instead.
        services.AddLogging(logging => logging.AddFilter("Microsoft.Extensions.Diagnostics.HealthChecks.DefaultHealthCheckService", LogLevel.Critical));
        return services;
    }

    public static WebApplication MapFrontendHealth(this WebApplication app)
    {
        // Live runs no check: the process answering is the answer.
        app.MapHealthChecks(LivePath, new HealthCheckOptions { Predicate = _ => false });
        app.MapHealthChecks(ReadyPath, new HealthCheckOptions { Predicate = check => check.Tags.Contains(FrontendReadyCheck.Tag) });
        return app;
    }
}
