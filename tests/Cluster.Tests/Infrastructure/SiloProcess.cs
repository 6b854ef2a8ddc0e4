using System.Globalization;

namespace Broker.Cluster.Tests.Infrastructure;

/// <summary>A Broker.Silo process joined to the cluster through Redis.</summary>
public sealed class SiloProcess : ChildProcess
{
    private SiloProcess(string name, string logDirectory)
        : base(name, logDirectory)
    {
    }

    public int SiloPort { get; } = FreePorts.Next();

    public int GatewayPort { get; } = FreePorts.Next();

    public int HealthPort { get; } = FreePorts.Next();

    public Uri Healthz => new($"http://127.0.0.1:{HealthPort.ToString(CultureInfo.InvariantCulture)}/healthz");

    /// <summary>How many rooms this silo hosts now (its /stats endpoint).</summary>
    public async Task<int> RoomActivationsAsync()
    {
        using var http = new HttpClient { Timeout = TimeSpan.FromSeconds(5) };
        using var stats = System.Text.Json.JsonDocument.Parse(await http.GetStringAsync(new Uri($"http://127.0.0.1:{HealthPort.ToString(CultureInfo.InvariantCulture)}/stats")));
        return stats.RootElement.GetProperty("activations").EnumerateObject()
            .Where(p => p.Name.StartsWith("Broker.Grains.RoomGrain", StringComparison.Ordinal))
            .Sum(p => p.Value.GetInt32());
    }

    /// <summary>Of the given silos, the one hosting the most rooms: the kill that tests the most.</summary>
    public static async Task<SiloProcess> HostingMostRoomsAsync(IEnumerable<SiloProcess> silos)
    {
        var counted = await Task.WhenAll(silos.Select(async s => (Silo: s, Rooms: await s.RoomActivationsAsync())));
        return counted.OrderByDescending(c => c.Rooms).First().Silo;
    }

    /// <summary>How long the silo took from start to a 200 on /healthz.</summary>
    public TimeSpan StartupTime { get; private set; }

    /// <summary>
    /// Starts a silo (with <paramref name="redis"/> null, a one-silo localhost cluster); with
    /// <paramref name="waitHealthy"/> returns once it is an active member. <paramref name="settings"/>
    /// are extra switches such as "--dashboard-port", "31000".
    /// </summary>
    public static async Task<SiloProcess> StartAsync(
        string name, string logDirectory, string? redis, bool waitHealthy = true, bool durable = false, IEnumerable<string>? settings = null)
    {
        var silo = new SiloProcess(name, logDirectory);
        try
        {
            var dll = BuildOutput.SiloDll;
            List<string> args = [dll];
            if (redis is not null)
            {
                args.AddRange(["--redis", redis]);
            }

            args.AddRange(
            [
                "--silo-port", silo.SiloPort.ToString(CultureInfo.InvariantCulture),
                "--gateway-port", silo.GatewayPort.ToString(CultureInfo.InvariantCulture),
                "--health-port", silo.HealthPort.ToString(CultureInfo.InvariantCulture),
                "--store", durable ? "redis" : "memory",
            ]);
            args.AddRange(settings ?? []);
            silo.Start("dotnet", args, Path.GetDirectoryName(dll));
            if (waitHealthy)
            {
                await silo.WaitHealthyAsync();
            }

            return silo;
        }
        catch
        {
            await silo.DisposeAsync();
            throw;
        }
    }

    public async Task WaitHealthyAsync(TimeSpan? timeout = null) =>
        StartupTime = await Health.WaitHealthyAsync(this, Healthz, timeout);
}
