using System.Globalization;
using System.Text.Json;
using System.Text.RegularExpressions;
using Broker.Cluster.Tests.Infrastructure;

namespace Broker.Cluster.Tests;

/// <summary>
/// The console log format is a setting (Logging:Console:FormatterName), and a fresh start prints
/// no false watchdog alarm: real front-end and silo processes, their stdout read line by line.
/// </summary>
public sealed partial class LogTests(ITestOutputHelper output)
{
    private const string WatchdogFalseAlarm = "Participant check thread has not completed";
    private static readonly TimeSpan Grace = TimeSpan.FromSeconds(20);

    private static string LogDirectory() =>
        Path.Combine(Path.GetTempPath(), "broker-cluster-tests", "logs-" + DateTime.UtcNow.ToString("HHmmss-fff", CultureInfo.InvariantCulture));

    [Fact]
    public async Task ConsoleFormat_Json_FrontendPrintsJsonLinesWithEventIds()
    {
        await using var frontend = await FrontendProcess.StartAsync(
            "fe-json", LogDirectory(), redis: null, settings: ["--Logging:Console:FormatterName=json"]);
        await frontend.WaitForOutputAsync("\"EventId\":1000,", Grace);

        var line = frontend.ReadLog().Split('\n').First(l => l.Contains("\"EventId\":1000,", StringComparison.Ordinal));
        output.WriteLine(line);
        using var json = JsonDocument.Parse(line);
        Assert.Equal("Information", json.RootElement.GetProperty("LogLevel").GetString());
        Assert.Equal("fe-json", json.RootElement.GetProperty("State").GetProperty("NodeId").GetString());

        // Every JSON line says when, in UTC (ISO 8601), without a TimestampFormat configured.
        var when = json.RootElement.GetProperty("Timestamp").GetString()!;
        Assert.EndsWith("Z", when, StringComparison.Ordinal);
        var at = DateTimeOffset.Parse(when, CultureInfo.InvariantCulture);
        Assert.True((DateTimeOffset.UtcNow - at).Duration() < TimeSpan.FromMinutes(5), $"Timestamp {when} is not now");
    }

    /// <summary>
    /// A setting out of range stops either process at start with exit code 2 and the problem in
    /// a sentence on stderr: no unhandled exception, no stack trace, no abort.
    /// </summary>
    [Theory]
    [InlineData("frontend", "--Logging:Console:FormatterName=xml", "Logging:Console:FormatterName must be one of simple, json, systemd")]
    [InlineData("frontend", "--Broker:MaxNameLength=0", "Broker:MaxNameLength must be at least 1.")]
    [InlineData("frontend", "--Broker:Warmup:Rooms=0", "Broker:Warmup:Rooms must be between 1 and 100.")]
    [InlineData("silo", "--Logging:Console:FormatterName=xml", "Logging:Console:FormatterName must be one of simple, json, systemd")]
    public async Task InvalidSetting_ExitsWithCode2AndSaysWhy(string program, string setting, string problem)
    {
        var dll = program == "silo" ? BuildOutput.SiloDll : BuildOutput.FrontendDll;
        var start = new System.Diagnostics.ProcessStartInfo("dotnet")
        {
            RedirectStandardOutput = true,
            RedirectStandardError = true,
            UseShellExecute = false,
        };
        start.ArgumentList.Add(dll);
        if (program == "silo")
        {
            foreach (var (name, port) in new[] { ("--silo-port", FreePorts.Next()), ("--gateway-port", FreePorts.Next()), ("--health-port", FreePorts.Next()) })
            {
                start.ArgumentList.Add(name);
                start.ArgumentList.Add(port.ToString(CultureInfo.InvariantCulture));
            }
        }
        else
        {
            start.ArgumentList.Add("--urls");
            start.ArgumentList.Add("http://127.0.0.1:" + FreePorts.Next().ToString(CultureInfo.InvariantCulture));
        }

        start.ArgumentList.Add(setting);
        using var process = System.Diagnostics.Process.Start(start)!;
        var stdout = process.StandardOutput.ReadToEndAsync();
        var stderr = process.StandardError.ReadToEndAsync();
        using var timeout = new CancellationTokenSource(TimeSpan.FromSeconds(60));
        try
        {
            await process.WaitForExitAsync(timeout.Token);
        }
        catch (OperationCanceledException)
        {
            process.Kill(entireProcessTree: true);
            Assert.Fail($"{program} with {setting} was still running after 60 s");
        }

        var errors = await stderr;
        output.WriteLine($"exit {process.ExitCode}; stderr: {errors}; stdout: {await stdout}");
        Assert.Equal(2, process.ExitCode);
        Assert.Contains(problem, errors, StringComparison.Ordinal);
        Assert.DoesNotContain("Unhandled exception", errors, StringComparison.Ordinal);
    }

    [Fact]
    public async Task ConsoleFormat_Default_FrontendPrintsSimpleLinesWithTimestamp_AndNoWatchdogFalseAlarm()
    {
        await using var frontend = await FrontendProcess.StartAsync("fe-simple", LogDirectory(), redis: null);

        // Ready means its silo is active: the watchdog started (and made its first check, where
        // the false alarm came from) before that. Stopping flushes everything it logged.
        await frontend.TerminateAsync(Grace);
        var log = frontend.ReadLog();
        var line = log.Split('\n').First(l => l.Contains("Broker.Frontend.Hosting.BrokerHostingExtensions.StartupLog[1000]", StringComparison.Ordinal));
        output.WriteLine(line);
        Assert.Matches(SimpleLine(), line);
        Assert.DoesNotContain(WatchdogFalseAlarm, log, StringComparison.Ordinal);
    }

    [Fact]
    public async Task Silo_JsonFormatAndDashboardPort_PrintsJsonAndServesTheDashboardOnItsPortOnly()
    {
        var dashboardPort = FreePorts.Next();
        await using var silo = await SiloProcess.StartAsync(
            "silo-json", LogDirectory(), redis: null,
            settings: ["--Logging:Console:FormatterName=json", "--dashboard-port", dashboardPort.ToString(CultureInfo.InvariantCulture)]);

        var line = silo.ReadLog().Split('\n').First(l => l.Contains("\"EventId\":3000,", StringComparison.Ordinal));
        output.WriteLine(line);
        using var json = JsonDocument.Parse(line);
        Assert.Equal($"http://127.0.0.1:{dashboardPort.ToString(CultureInfo.InvariantCulture)}/", json.RootElement.GetProperty("State").GetProperty("Dashboard").GetString());

        var dashboard = new Uri($"http://127.0.0.1:{dashboardPort.ToString(CultureInfo.InvariantCulture)}/");
        Assert.Equal(200, await Health.StatusAsync(dashboard));
        Assert.Contains("<html", await Health.BodyAsync(dashboard), StringComparison.OrdinalIgnoreCase);
        Assert.Equal(200, await Health.StatusAsync(new Uri(dashboard, "/DashboardCounters")));

        // Not on the health port.
        Assert.Equal(404, await Health.StatusAsync(new Uri(silo.Healthz, "/")));
        Assert.Equal(404, await Health.StatusAsync(new Uri(silo.Healthz, "/DashboardCounters")));
        Assert.Equal(200, await Health.StatusAsync(silo.Healthz));
    }

    [Fact]
    public async Task Silo_Default_SimpleFormatNoDashboardAndNoWatchdogFalseAlarm()
    {
        await using var silo = await SiloProcess.StartAsync("silo-simple", LogDirectory(), redis: null);

        Assert.Equal(404, await Health.StatusAsync(new Uri(silo.Healthz, "/")));
        Assert.Equal(404, await Health.StatusAsync(new Uri(silo.Healthz, "/DashboardCounters")));
        await silo.TerminateAsync(Grace);
        var log = silo.ReadLog();
        var line = log.Split('\n').First(l => l.Contains("Broker.Silo[3000]", StringComparison.Ordinal));
        output.WriteLine(line);
        Assert.Matches(SimpleLine(), line);
        Assert.Contains("dashboard off", log, StringComparison.Ordinal);
        Assert.DoesNotContain(WatchdogFalseAlarm, log, StringComparison.Ordinal);
    }

    /// <summary>"06:07:33.878 info: Category[1000]": the simple format with its default timestamp.</summary>
    [GeneratedRegex(@"^\d\d:\d\d:\d\d\.\d{3} info: [\w.]+\[\d+\]$")]
    private static partial Regex SimpleLine();
}
