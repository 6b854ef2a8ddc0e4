using System.Diagnostics;
using Broker.Bench.Core;

namespace Broker.Bench.Tests;

/// <summary>What the load tool says about the CPU of the run: the servers', its own, and everybody else's.</summary>
public sealed class CpuMeterTests
{
    private static CpuSample At(double seconds, double server, double tool, double? machine) =>
        new((long)(seconds * Stopwatch.Frequency), [new CpuTimes(server, 0)], new CpuTimes(tool, 0), machine);

    [Fact]
    public void Report_MachineBusierThanServersAndTool_OtherProcessesCountedAndWarnedAbout()
    {
        var meter = new CpuMeter([Environment.ProcessId]);

        // 10 s: the servers 4 CPU-s, the tool 2, the machine 10 busy: 4 CPU-s were somebody else's.
        var report = meter.Report(At(0, 0, 0, 100), At(10, 4, 2, 110));

        Assert.Equal(0.4, report.OtherCores);
        Assert.Contains("other processes used 0.40 cores", report.Warning, StringComparison.Ordinal);
    }

    [Fact]
    public void Report_MachineBusyOnlyWithServersAndTool_NoOtherLoadNoWarning()
    {
        var meter = new CpuMeter([Environment.ProcessId]);

        var report = meter.Report(At(0, 0, 0, 100), At(10, 4, 2, 106.5));

        Assert.Equal(0.05, report.OtherCores);
        Assert.Null(report.Warning);
    }

    [Fact]
    public void Report_NoMachineFigures_OtherCoresUnknown()
    {
        var meter = new CpuMeter([Environment.ProcessId]);

        var report = meter.Report(At(0, 0, 0, null), At(10, 4, 2, null));

        Assert.Null(report.OtherCores);
        Assert.Null(report.Warning);
    }

    [Fact]
    public void ReadMachineBusySeconds_OnLinux_GrowsWithWork()
    {
        var before = ProcFs.ReadMachineBusySeconds();
        Assert.NotNull(before);

        // Busy for ~300 ms of this thread's CPU: the machine's busy time grows by at least part of it.
        var cpu = Stopwatch.StartNew();
        var spin = 0L;
        while (cpu.ElapsedMilliseconds < 300)
        {
            spin++;
        }

        var after = ProcFs.ReadMachineBusySeconds();
        Assert.True(after > before, $"busy {before} → {after} after {spin} spins");
    }
}
