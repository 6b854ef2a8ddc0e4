using System.Globalization;
using System.Text.RegularExpressions;

namespace Broker.Cluster.Tests.Infrastructure;

/// <summary>Reads a Prometheus text page (/metrics).</summary>
public static class MetricsPage
{
    /// <summary>The sum of every series of a metric (any labels).</summary>
    public static double Sum(string page, string name) =>
        Regex.Matches(page, "^" + Regex.Escape(name) + @"(\{[^}]*\})?\s+(\S+)", RegexOptions.Multiline)
            .Sum(m => double.Parse(m.Groups[2].Value, NumberStyles.Float, CultureInfo.InvariantCulture));
}
