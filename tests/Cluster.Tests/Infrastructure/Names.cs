using System.Diagnostics;
using System.Globalization;

namespace Broker.Cluster.Tests.Infrastructure;

public static class Names
{
    /// <summary>A room or user name no other test uses: "{prefix}-{8 hex}".</summary>
    public static string Unique(string prefix) => prefix + "-" + Guid.NewGuid().ToString("N")[..8];
}

public static class Ms
{
    /// <summary>"1234 ms", for figures in test output and messages.</summary>
    public static string Format(TimeSpan span) => span.TotalMilliseconds.ToString("F0", CultureInfo.InvariantCulture) + " ms";

    public static TimeSpan Between(long from, long to) => Stopwatch.GetElapsedTime(from, to);
}
