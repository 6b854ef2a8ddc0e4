using System.Globalization;
using System.Text;

namespace Broker.Cluster.Tests.Infrastructure;

/// <summary>
/// nginx in front of the front-ends, configured from scripts/nginx.conf.template (round-robin,
/// WebSocket upgrade headers, no sticky sessions), run in the foreground as a child process.
/// </summary>
public sealed class NginxProcess : ChildProcess
{
    private NginxProcess(string logDirectory)
        : base("nginx", logDirectory)
    {
    }

    public int Port { get; } = FreePorts.Next();

    public string Directory { get; private set; } = string.Empty;

    public Uri WsBase => new($"ws://127.0.0.1:{Port.ToString(CultureInfo.InvariantCulture)}/");

    public Uri Healthz => new($"http://127.0.0.1:{Port.ToString(CultureInfo.InvariantCulture)}/healthz");

    public static async Task<NginxProcess> StartAsync(string logDirectory, IEnumerable<int> upstreamPorts)
    {
        var nginx = new NginxProcess(logDirectory);
        try
        {
            var dir = Path.Combine(logDirectory, "nginx");
            System.IO.Directory.CreateDirectory(Path.Combine(dir, "nginx-tmp"));
            System.IO.Directory.CreateDirectory(Path.Combine(dir, "logs"));
            nginx.Directory = dir;
            var upstreams = new StringBuilder();
            foreach (var port in upstreamPorts)
            {
                upstreams.Append(CultureInfo.InvariantCulture, $"    server 127.0.0.1:{port};\n");
            }

            var template = await File.ReadAllTextAsync(BuildOutput.NginxTemplate);
            var config = template
                .Replace("@PORT@", nginx.Port.ToString(CultureInfo.InvariantCulture), StringComparison.Ordinal)
                .Replace("@DIR@", dir, StringComparison.Ordinal)
                .Replace("@UPSTREAMS@\n", upstreams.ToString(), StringComparison.Ordinal);
            var configPath = Path.Combine(dir, "nginx.conf");
            await File.WriteAllTextAsync(configPath, config);

            // -e: the start-up error log goes here too, not to /var/log/nginx (not writable without root).
            nginx.Start(BuildOutput.Program("nginx"),
                ["-p", dir + "/", "-c", configPath, "-e", Path.Combine(dir, "nginx-error.log"), "-g", "daemon off;"]);

            // Ready when a request through nginx reaches a healthy front-end.
            await Health.WaitHealthyAsync(nginx, nginx.Healthz, TimeSpan.FromSeconds(20));
            return nginx;
        }
        catch
        {
            await nginx.DisposeAsync();
            throw;
        }
    }

    public override async ValueTask DisposeAsync()
    {
        // SIGTERM: the master stops its worker too (a SIGKILLed master would orphan it).
        if (!HasExited)
        {
            await TerminateAsync(TimeSpan.FromSeconds(5));
        }

        await base.DisposeAsync();
    }
}
