using System.Diagnostics;

namespace Broker.Cluster.Tests.Infrastructure;

/// <summary>Bounded polling of a process's /healthz.</summary>
public static class Health
{
    private static readonly HttpClient s_http = new(new SocketsHttpHandler { PooledConnectionLifetime = TimeSpan.Zero })
    {
        Timeout = TimeSpan.FromSeconds(2),
    };

    public static readonly TimeSpan StartTimeout = TimeSpan.FromSeconds(60);

    /// <summary>The HTTP status of a GET, or null when nothing answers (refused, reset, timed out).</summary>
    public static async Task<int?> StatusAsync(Uri uri)
    {
        try
        {
            using var response = await s_http.GetAsync(uri);
            return (int)response.StatusCode;
        }
        catch (HttpRequestException)
        {
            return null;
        }
        catch (TaskCanceledException)
        {
            return null;
        }
    }

    public static async Task<string> BodyAsync(Uri uri)
    {
        using var response = await s_http.GetAsync(uri);
        return await response.Content.ReadAsStringAsync();
    }

    /// <summary>Polls until /healthz answers 200; fails at once if the process exits. Returns how long it took.</summary>
    public static Task<TimeSpan> WaitHealthyAsync(ChildProcess process, Uri healthz, TimeSpan? timeout = null) =>
        WaitStatusAsync(process, healthz, 200, timeout);

    /// <summary>Polls until <paramref name="uri"/> answers <paramref name="status"/>; fails at once if the process exits. Returns how long it took.</summary>
    public static async Task<TimeSpan> WaitStatusAsync(ChildProcess process, Uri uri, int status, TimeSpan? timeout = null)
    {
        var limit = timeout ?? StartTimeout;
        var started = Stopwatch.StartNew();
        int? last = null;
        while (started.Elapsed < limit)
        {
            if (process.HasExited)
            {
                throw new InvalidOperationException($"{process.Name} exited before {uri} answered {status}.\n{process.Tail()}");
            }

            last = await StatusAsync(uri);
            if (last == status)
            {
                return started.Elapsed;
            }

            await Task.Delay(100);
        }

        throw new TimeoutException(
            $"{process.Name}: {uri} did not answer {status} within {limit} (it last answered {last?.ToString(System.Globalization.CultureInfo.InvariantCulture) ?? "nothing"}).\n{process.Tail()}");
    }
}
