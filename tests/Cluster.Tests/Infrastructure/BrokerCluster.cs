using System.Globalization;
using System.Text;

namespace Broker.Cluster.Tests.Infrastructure;

/// <summary>
/// A whole cluster of real processes on 127.0.0.1: its own redis-server, silos, front-ends and
/// optionally nginx. Logs go to one folder per cluster; <see cref="GuardAsync"/> prints their
/// tails when a test fails. Disposing kills every process it started (by PID).
/// </summary>
public sealed class BrokerCluster : IAsyncDisposable
{
    private readonly List<SiloProcess> _silos = [];
    private readonly List<FrontendProcess> _frontends = [];
    private readonly List<BotProcess> _bots = [];
    private readonly IReadOnlyList<string> _frontendSettings;
    private bool _failed;
    private int _siloCount;
    private int _frontendCount;
    private int _botCount;

    private BrokerCluster(string logDirectory, IReadOnlyList<string> frontendSettings)
    {
        LogDirectory = logDirectory;
        _frontendSettings = frontendSettings;
    }

    public string LogDirectory { get; }

    public RedisServer Redis { get; private set; } = null!;

    /// <summary>In start order: silo1, silo2 …</summary>
    public IReadOnlyList<SiloProcess> Silos
    {
        get
        {
            lock (_silos)
            {
                return [.. _silos.OrderBy(s => s.Name.Length).ThenBy(s => s.Name, StringComparer.Ordinal)];
            }
        }
    }

    /// <summary>In start order: fe-1, fe-2 …</summary>
    public IReadOnlyList<FrontendProcess> Frontends
    {
        get
        {
            lock (_frontends)
            {
                return [.. _frontends.OrderBy(f => f.Name.Length).ThenBy(f => f.Name, StringComparer.Ordinal)];
            }
        }
    }

    public NginxProcess? Nginx { get; private set; }

    /// <summary>Application silos of the sample (samples/Bot), in start order.</summary>
    public IReadOnlyList<BotProcess> Bots
    {
        get
        {
            lock (_bots)
            {
                return [.. _bots];
            }
        }
    }

    public IEnumerable<ChildProcess> Processes =>
        new ChildProcess?[] { Redis, Nginx }.Concat(Silos).Concat(Bots).Concat(Frontends).OfType<ChildProcess>();

    /// <summary>Whether the silos keep rooms in Redis.</summary>
    public bool Durable { get; private init; }

    /// <summary>Starts redis, then the silos (together), then the front-ends (together), then nginx.</summary>
    /// <param name="durable">Silos keep rooms in Redis (--store redis): acked messages survive a silo.</param>
    public static async Task<BrokerCluster> StartAsync(int silos, int frontends, bool nginx = false, IEnumerable<string>? frontendSettings = null, bool durable = false)
    {
        var dir = Path.Combine(Path.GetTempPath(), "broker-cluster-tests",
            DateTime.UtcNow.ToString("yyyyMMdd-HHmmss", CultureInfo.InvariantCulture) + "-" + Guid.NewGuid().ToString("N")[..6]);
        var cluster = new BrokerCluster(dir, [.. frontendSettings ?? []]) { Durable = durable };
        try
        {
            cluster.Redis = await RedisServer.StartAsync(dir);
            await Task.WhenAll(Enumerable.Range(0, silos).Select(_ => cluster.AddSiloAsync()));
            await Task.WhenAll(Enumerable.Range(0, frontends).Select(_ => cluster.AddFrontendAsync()));
            if (nginx)
            {
                cluster.Nginx = await NginxProcess.StartAsync(dir, cluster.Frontends.Select(f => f.Port));
            }

            return cluster;
        }
        catch
        {
            cluster._failed = true;
            await cluster.DisposeAsync();
            throw;
        }
    }

    /// <summary>Starts one more silo and waits until it is an active member.</summary>
    public async Task<SiloProcess> AddSiloAsync(bool waitHealthy = true)
    {
        var name = "silo" + Interlocked.Increment(ref _siloCount).ToString(CultureInfo.InvariantCulture);
        var silo = await SiloProcess.StartAsync(name, LogDirectory, Redis.Endpoint, waitHealthy: false, durable: Durable);
        lock (_silos)
        {
            _silos.Add(silo);
        }

        if (waitHealthy)
        {
            await silo.WaitHealthyAsync();
        }

        return silo;
    }

    /// <summary>
    /// Starts one more front-end (fe-1, fe-2 …) and waits until it is connected to a gateway;
    /// <paramref name="settings"/> come after the cluster's front-end settings.
    /// </summary>
    public async Task<FrontendProcess> AddFrontendAsync(bool waitHealthy = true, IEnumerable<string>? settings = null)
    {
        var nodeId = "fe-" + Interlocked.Increment(ref _frontendCount).ToString(CultureInfo.InvariantCulture);
        var frontend = await FrontendProcess.StartAsync(nodeId, LogDirectory, Redis.Endpoint, waitHealthy: false, [.. _frontendSettings, .. settings ?? []]);
        lock (_frontends)
        {
            _frontends.Add(frontend);
        }

        if (waitHealthy)
        {
            await frontend.WaitHealthyAsync();
        }

        return frontend;
    }

    /// <summary>Starts the sample's application silo (bot1, bot2 …) and waits until it is an active member.</summary>
    public async Task<BotProcess> AddBotAsync(bool waitReady = true, IEnumerable<string>? settings = null)
    {
        var name = "bot" + Interlocked.Increment(ref _botCount).ToString(CultureInfo.InvariantCulture);
        var bot = await BotProcess.StartAsync(name, LogDirectory, Redis.Endpoint, waitReady: false, settings);
        lock (_bots)
        {
            _bots.Add(bot);
        }

        if (waitReady)
        {
            await bot.WaitReadyAsync();
        }

        return bot;
    }

    /// <summary>Runs a test body; when it fails, the tail of every process's log goes to the test output.</summary>
    public async Task GuardAsync(ITestOutputHelper output, Func<Task> body)
    {
        try
        {
            await body();
        }
        catch
        {
            _failed = true;
            output.WriteLine(LogTails());
            throw;
        }
    }

    public string LogTails(int lines = 40)
    {
        var text = new StringBuilder().AppendLine(CultureInfo.InvariantCulture, $"Process logs in {LogDirectory}:");
        foreach (var process in Processes)
        {
            text.AppendLine(process.Tail(lines));
        }

        return text.ToString();
    }

    public async ValueTask DisposeAsync()
    {
        // Front-ends and nginx first, then the silos, then redis: nobody waits on a dead dependency.
        if (Nginx is not null)
        {
            await Nginx.DisposeAsync();
        }

        await Task.WhenAll(Frontends.Select(f => f.DisposeAsync().AsTask()));
        await Task.WhenAll(Bots.Select(b => b.DisposeAsync().AsTask()));
        await Task.WhenAll(Silos.Select(s => s.DisposeAsync().AsTask()));
        if (Redis is not null)
        {
            await Redis.DisposeAsync();
        }

        if (!_failed)
        {
            try
            {
                Directory.Delete(LogDirectory, recursive: true);
            }
            catch (IOException)
            {
                // Kept; harmless.
            }
        }
    }
}
