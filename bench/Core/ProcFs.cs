using System.Globalization;

namespace Broker.Bench.Core;

/// <summary>CPU times and resident memory of processes, read from /proc (Linux only).</summary>
public static class ProcFs
{
    // USER_HZ, the unit of utime/stime in /proc/PID/stat, is 100 on every Linux ABI.
    private const double ClockTicksPerSecond = 100.0;

    /// <summary>utime and stime of a process ("self" or a PID), in seconds; null when it is gone.</summary>
    public static CpuTimes? ReadCpu(string pid)
    {
        string text;
        try
        {
            text = File.ReadAllText($"/proc/{pid}/stat");
        }
        catch (Exception ex) when (ex is IOException or UnauthorizedAccessException)
        {
            return null;
        }

        // The command name (field 2) is in parentheses and may hold spaces: fields are counted after it.
        var fields = text[(text.LastIndexOf(')') + 2)..].Split(' ');
        var utime = long.Parse(fields[14 - 3], CultureInfo.InvariantCulture);
        var stime = long.Parse(fields[15 - 3], CultureInfo.InvariantCulture);
        return new CpuTimes(utime / ClockTicksPerSecond, stime / ClockTicksPerSecond);
    }

    /// <summary>
    /// Busy CPU-seconds of the whole machine, every core (user, nice, system, irq, softirq, steal
    /// from the first line of /proc/stat; idle and iowait left out); null when unreadable.
    /// </summary>
    public static double? ReadMachineBusySeconds()
    {
        string line;
        try
        {
            using var reader = new StreamReader("/proc/stat");
            line = reader.ReadLine() ?? string.Empty;
        }
        catch (Exception ex) when (ex is IOException or UnauthorizedAccessException)
        {
            return null;
        }

        var fields = line.Split(' ', StringSplitOptions.RemoveEmptyEntries);
        if (fields.Length < 8 || fields[0] != "cpu")
        {
            return null;
        }

        long Field(int i) => i < fields.Length ? long.Parse(fields[i], CultureInfo.InvariantCulture) : 0;
        return (Field(1) + Field(2) + Field(3) + Field(6) + Field(7) + Field(8)) / ClockTicksPerSecond;
    }

    /// <summary>VmRSS from /proc/PID/status in KiB; null when the process is gone.</summary>
    public static long? ReadRssKb(int pid)
    {
        try
        {
            foreach (var line in File.ReadLines($"/proc/{pid}/status"))
            {
                if (line.StartsWith("VmRSS:", StringComparison.Ordinal))
                {
                    var value = line["VmRSS:".Length..].Trim();
                    return long.Parse(value[..value.IndexOf(' ')], CultureInfo.InvariantCulture);
                }
            }
        }
        catch (Exception ex) when (ex is IOException or UnauthorizedAccessException)
        {
            return null;
        }

        return null;
    }

    /// <summary>A short name for a process: its command line, shortened ("dotnet Broker.Silo.dll --redis …").</summary>
    public static string ReadName(int pid)
    {
        try
        {
            var args = File.ReadAllText($"/proc/{pid}/cmdline").Split('\0', StringSplitOptions.RemoveEmptyEntries);
            if (args.Length == 0)
            {
                return File.ReadAllText($"/proc/{pid}/comm").Trim();
            }

            var parts = args.Select((a, i) => i < 2 ? Path.GetFileName(a) : a).Take(4);
            var name = string.Join(' ', parts);
            return name.Length > 48 ? name[..47] + "…" : name;
        }
        catch (Exception ex) when (ex is IOException or UnauthorizedAccessException)
        {
            return "(gone)";
        }
    }
}

public readonly record struct CpuTimes(double UserSeconds, double SystemSeconds)
{
    public double Total => UserSeconds + SystemSeconds;
}
