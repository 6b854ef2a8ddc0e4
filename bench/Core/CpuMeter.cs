using System.Diagnostics;

namespace Broker.Bench.Core;

/// <summary>One reading of the CPU times of the server processes, of this tool and of the whole machine.</summary>
public sealed record CpuSample(long Timestamp, CpuTimes?[] Servers, CpuTimes Tool, double? MachineBusySeconds = null);

/// <summary>Reads the CPU times of the given server PIDs and of this process over an interval.</summary>
public sealed class CpuMeter
{
    /// <summary>Above this fraction of one core the tool itself is probably the bottleneck.</summary>
    public const double ToolBottleneckCores = 0.8;

    /// <summary>Above this many cores used by other processes the run did not have the machine to itself.</summary>
    public const double OtherLoadCores = 0.2;

    private readonly int[] _pids;
    private readonly string[] _names;

    public CpuMeter(IReadOnlyList<int> pids)
    {
        _pids = [.. pids];
        _names = [.. _pids.Select(ProcFs.ReadName)];
    }

    public IReadOnlyList<int> Pids => _pids;

    public CpuSample Sample() =>
        new(Stopwatch.GetTimestamp(), [.. _pids.Select(p => ProcFs.ReadCpu(p.ToString(System.Globalization.CultureInfo.InvariantCulture)))], ProcFs.ReadCpu("self") ?? default, ProcFs.ReadMachineBusySeconds());

    public long?[] ReadRss() => [.. _pids.Select(ProcFs.ReadRssKb)];

    /// <summary>Server and tool CPU between two samples, with the servers' RSS at both ends when given.</summary>
    public CpuReport Report(CpuSample from, CpuSample to, long?[]? rssBefore = null, long?[]? rssAfter = null)
    {
        var wall = Stopwatch.GetElapsedTime(from.Timestamp, to.Timestamp).TotalSeconds;
        var servers = new List<ServerProcess>();
        for (var i = 0; i < _pids.Length; i++)
        {
            var a = from.Servers[i];
            var b = to.Servers[i];
            var alive = a is not null && b is not null;
            var user = alive ? b!.Value.UserSeconds - a!.Value.UserSeconds : 0;
            var system = alive ? b!.Value.SystemSeconds - a!.Value.SystemSeconds : 0;
            servers.Add(new ServerProcess(_pids[i], alive ? _names[i] : _names[i] + " (gone)", Round(user + system), Round(user), Round(system),
                rssBefore?[i], rssAfter?[i]));
        }

        var serverCpu = servers.Sum(s => s.CpuSeconds);
        var serverUser = servers.Sum(s => s.UserSeconds);
        var toolCpu = to.Tool.Total - from.Tool.Total;
        var toolCores = wall > 0 ? toolCpu / wall : 0;

        // Whatever else ran meanwhile (other processes, the kernel's own threads) shared the cores.
        double? otherCores = from.MachineBusySeconds is { } m0 && to.MachineBusySeconds is { } m1 && wall > 0
            ? Round(Math.Max(0, (m1 - m0 - serverCpu - toolCpu) / wall))
            : null;
        return new CpuReport(
            Round(wall), Round(serverCpu), Round(serverUser), Round(wall > 0 ? serverCpu / wall : 0),
            Round(toolCpu), Round(to.Tool.UserSeconds - from.Tool.UserSeconds), Round(toolCores),
            toolCores > ToolBottleneckCores, servers)
        {
            OtherCores = otherCores,
        };
    }

    /// <summary>Cores used by the servers and by the tool between two samples (for the progress line).</summary>
    public static (double Servers, double Tool) Cores(CpuSample from, CpuSample to)
    {
        var wall = Stopwatch.GetElapsedTime(from.Timestamp, to.Timestamp).TotalSeconds;
        if (wall <= 0)
        {
            return (0, 0);
        }

        double servers = 0;
        for (var i = 0; i < from.Servers.Length; i++)
        {
            if (from.Servers[i] is { } a && to.Servers[i] is { } b)
            {
                servers += b.Total - a.Total;
            }
        }

        return (servers / wall, (to.Tool.Total - from.Tool.Total) / wall);
    }

    internal static double Round(double value) => Math.Round(value, 3);
}

public sealed record ServerProcess(int Pid, string Name, double CpuSeconds, double UserSeconds, double SystemSeconds, long? RssBeforeKb, long? RssAfterKb);

/// <summary>CPU over a measured interval: the servers' (utime+stime, and utime alone) and this tool's.</summary>
public sealed record CpuReport(
    double WallSeconds,
    double ServerCpuSeconds,
    double ServerUserSeconds,
    double ServerCores,
    double ToolCpuSeconds,
    double ToolUserSeconds,
    double ToolCores,
    bool ToolIsBottleneck,
    IReadOnlyList<ServerProcess> Servers)
{
    /// <summary>
    /// Cores used by everything but the servers and this tool during the interval (the machine's
    /// busy time from /proc/stat minus both); null where /proc/stat cannot be read.
    /// </summary>
    public double? OtherCores { get; init; }

    /// <summary>The warnings printed when the tool used more than ~80% of a core, or other processes more than 0.2 cores.</summary>
    public string? Warning
    {
        get
        {
            var tool = ToolIsBottleneck
                ? $"WARNING: the load tool itself used {ToolCores:0.00} cores (> {CpuMeter.ToolBottleneckCores:0.0}); it may be the bottleneck, so throughput and latency figures understate the server."
                : null;
            var other = OtherCores > CpuMeter.OtherLoadCores
                ? $"WARNING: other processes used {OtherCores:0.00} cores during the run (> {CpuMeter.OtherLoadCores:0.0}): the servers and the tool did not have the machine to themselves."
                : null;
            return tool is null ? other : other is null ? tool : tool + "\n" + other;
        }
    }

    /// <summary>events per server CPU-second; 0 when no server PID was given.</summary>
    public double PerServerCpuSecond(double events) => ServerCpuSeconds > 0 ? Math.Round(events / ServerCpuSeconds, 1) : 0;

    /// <summary>Server CPU microseconds per event (utime+stime, or utime alone).</summary>
    public double MicrosPerEvent(double events, bool userOnly = false) =>
        events > 0 ? Math.Round((userOnly ? ServerUserSeconds : ServerCpuSeconds) * 1e6 / events, 3) : 0;
}
