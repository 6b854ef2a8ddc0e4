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
