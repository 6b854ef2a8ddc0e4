using System.Diagnostics;
using System.Globalization;
using System.Text.Json;

namespace Broker.Cluster.Tests.Infrastructure;

/// <summary>
/// Reads Orleans' membership table in the cluster's Redis (hashes "…/members/…", one JSON entry
/// per silo), to time when the cluster declares a killed silo dead (Status 6 = Dead).
/// </summary>
public static class MembershipTable
{
    private const int Dead = 6;

    /// <summary>Polls (bounded) until the silo with this silo port is marked Dead; returns the Stopwatch timestamp it was seen.</summary>
    public static async Task<long> WaitDeclaredDeadAsync(RedisServer redis, int siloPort, TimeSpan timeout)
    {
        var started = Stopwatch.StartNew();
        var marker = ":" + siloPort.ToString(CultureInfo.InvariantCulture) + ":";
        while (started.Elapsed < timeout)
        {
            if (await redis.CommandAsync(TimeSpan.FromSeconds(2), "KEYS", "*/members/*") is List<object?> keys)
            {
                foreach (var key in keys.OfType<string>())
                {
                    if (await redis.CommandAsync(TimeSpan.FromSeconds(2), "HGETALL", key) is not List<object?> pairs)
                    {
                        continue;
                    }

                    for (var i = 0; i + 1 < pairs.Count; i += 2)
                    {
                        if (pairs[i] is string field && field.Contains(marker, StringComparison.Ordinal) && pairs[i + 1] is string json)
                        {
                            using var entry = JsonDocument.Parse(json);
                            if (entry.RootElement.GetProperty("Status").GetInt32() == Dead)
                            {
                                return Stopwatch.GetTimestamp();
                            }
                        }
                    }
                }
            }

            await Task.Delay(100);
        }

        throw new TimeoutException($"The silo on port {siloPort} was not declared dead in Redis within {timeout}.");
    }
}
