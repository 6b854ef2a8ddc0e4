using System.Globalization;

namespace Broker.Cluster.Tests.Infrastructure;

/// <summary>
/// The sample application silo (samples/Bot, DiceGrain) joined to the cluster through Redis:
/// a silo like the broker's, hosting none of the broker's grains.
/// </summary>
public sealed class BotProcess : ChildProcess
{
    private BotProcess(string name, string logDirectory)
        : base(name, logDirectory)
    {
    }

    public int SiloPort { get; } = FreePorts.Next();

    public int HealthPort { get; } = FreePorts.Next();

    /// <summary>200 while the bot's silo is an active member of the cluster.</summary>
    public Uri Ready => new($"http://127.0.0.1:{HealthPort.ToString(CultureInfo.InvariantCulture)}/health/ready");

    public TimeSpan StartupTime { get; private set; }

    /// <summary>Starts the bot (no gateway: it takes no clients); <paramref name="settings"/> are extra switches.</summary>
    public static async Task<BotProcess> StartAsync(string name, string logDirectory, string redis, bool waitReady = true, IEnumerable<string>? settings = null)
    {
        var bot = new BotProcess(name, logDirectory);
        try
        {
            var dll = BuildOutput.BotDll;
            List<string> args =
            [
                dll,
                "--redis", redis,
                "--silo-port", bot.SiloPort.ToString(CultureInfo.InvariantCulture),
                "--health-port", bot.HealthPort.ToString(CultureInfo.InvariantCulture),
            ];
            args.AddRange(settings ?? []);
            bot.Start("dotnet", args, Path.GetDirectoryName(dll));
            if (waitReady)
            {
                await bot.WaitReadyAsync();
            }

            return bot;
        }
        catch
        {
            await bot.DisposeAsync();
            throw;
        }
    }

    public async Task WaitReadyAsync(TimeSpan? timeout = null) =>
        StartupTime = await Health.WaitHealthyAsync(this, Ready, timeout);
}
