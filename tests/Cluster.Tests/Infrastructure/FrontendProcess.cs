using System.Globalization;

namespace Broker.Cluster.Tests.Infrastructure;

/// <summary>
/// A Broker.WsFrontend process in cluster mode (a pure Orleans client finding gateways through
/// Redis), or in embedded mode (its own silo) when started with no Redis.
/// </summary>
public sealed class FrontendProcess : ChildProcess
{
    private FrontendProcess(string nodeId, string logDirectory)
        : base(nodeId, logDirectory) => NodeId = nodeId;

    public string NodeId { get; }

    public int Port { get; } = FreePorts.Next();

    public Uri Healthz => new($"http://127.0.0.1:{Port.ToString(CultureInfo.InvariantCulture)}/healthz");

    /// <summary>ws://127.0.0.1:PORT/</summary>
    public Uri WsBase => new($"ws://127.0.0.1:{Port.ToString(CultureInfo.InvariantCulture)}/");

    public TimeSpan StartupTime { get; private set; }

    /// <summary>
    /// Starts a front-end (with <paramref name="redis"/> null, in embedded mode on a free silo port);
    /// <paramref name="settings"/> are extra switches such as "--Broker:LeaseTtl=00:00:06".
    /// </summary>
    public static async Task<FrontendProcess> StartAsync(
        string nodeId, string logDirectory, string? redis, bool waitHealthy = true, IEnumerable<string>? settings = null)
    {
        var frontend = new FrontendProcess(nodeId, logDirectory);
        try
        {
            var dll = BuildOutput.FrontendDll;
            List<string> args =
            [
                dll,
                .. redis is null
                    ? ["--Broker:Embedded:SiloPort", FreePorts.Next().ToString(CultureInfo.InvariantCulture)]
                    : (string[])["--redis", redis],
                "--urls", $"http://127.0.0.1:{frontend.Port.ToString(CultureInfo.InvariantCulture)}",
                "--node-id", nodeId,

                // The warm-up before ready takes 10-25 s of traffic (docs/performance.md, "Cold
                // start"): off for the suite's many front-end starts, on in WarmupTests (a later
                // setting wins).
                "--Broker:Warmup:Enabled=false",
            ];
            args.AddRange(settings ?? []);
            frontend.Start("dotnet", args, Path.GetDirectoryName(dll));
            if (waitHealthy)
            {
                await frontend.WaitHealthyAsync();
            }

            return frontend;
        }
        catch
        {
            await frontend.DisposeAsync();
            throw;
        }
    }

    public async Task WaitHealthyAsync(TimeSpan? timeout = null) =>
        StartupTime = await Health.WaitHealthyAsync(this, Healthz, timeout);
}
