using Broker.Grains.Tests.Infrastructure;
using System.Diagnostics;
using System.Globalization;
using System.Net;
using System.Net.Sockets;
using System.Reflection;
using System.Text;

namespace Broker.Streams.Tests.Infrastructure;

/// <summary>
/// A process a test starts (redis-server, a broker silo): output kept for diagnostics, stopped
/// (SIGKILL) by its own PID only.
/// </summary>
public sealed class TestProcess : IAsyncDisposable
{
    private readonly Process _process;
    private readonly StringBuilder _output = new();

    private TestProcess(Process process) => _process = process;

    public int Pid => _process.Id;

    public bool HasExited => _process.HasExited;

    public static TestProcess Start(string fileName, IEnumerable<string> args)
    {
        var info = new ProcessStartInfo(fileName) { RedirectStandardOutput = true, RedirectStandardError = true, UseShellExecute = false };
        foreach (var arg in args)
        {
            info.ArgumentList.Add(arg);
        }

        var process = Process.Start(info) ?? throw new InvalidOperationException($"{fileName} did not start.");
        var started = new TestProcess(process);
        process.OutputDataReceived += (_, e) => started.Append(e.Data);
        process.ErrorDataReceived += (_, e) => started.Append(e.Data);
        process.BeginOutputReadLine();
        process.BeginErrorReadLine();
        return started;
    }

    public string Output()
    {
        lock (_output)
        {
            return _output.ToString();
        }
    }

    public string Tail()
    {
        var text = Output();
        return text.Length > 3000 ? text[^3000..] : text;
    }

    /// <summary>SIGKILL: no shutdown of any kind.</summary>
    public async Task KillAsync()
    {
        if (!_process.HasExited)
        {
            _process.Kill();
            await _process.WaitForExitAsync();
        }
    }

    public async ValueTask DisposeAsync()
    {
        try
        {
            await KillAsync();
        }
        catch (InvalidOperationException)
        {
            // Already gone.
        }

        _process.Dispose();
    }

    private void Append(string? line)
    {
        if (line is not null)
        {
            lock (_output)
            {
                _output.AppendLine(line);
            }
        }
    }
}

public static class Processes
{
    public static string Program(string name)
    {
        var dirs = (Environment.GetEnvironmentVariable("PATH") ?? string.Empty)
            .Split(Path.PathSeparator, StringSplitOptions.RemoveEmptyEntries)
            .Concat(["/usr/sbin", "/usr/bin", "/usr/local/bin"]);
        return dirs.Select(d => Path.Combine(d, name)).FirstOrDefault(File.Exists)
            ?? throw new FileNotFoundException($"{name} is not installed (scripts/test.sh installs it).", name);
    }

    /// <summary>src/Silo's DLL, built in this test assembly's configuration.</summary>
    public static string SiloDll()
    {
        var configuration = typeof(Processes).Assembly.GetCustomAttributes<AssemblyMetadataAttribute>()
            .FirstOrDefault(a => a.Key == "BuildConfiguration")?.Value ?? "Release";
        for (var dir = new DirectoryInfo(AppContext.BaseDirectory); dir is not null; dir = dir.Parent)
        {
            if (File.Exists(Path.Combine(dir.FullName, "Broker.sln")))
            {
                var path = Path.Combine(dir.FullName, "src", "Silo", "bin", configuration, "net10.0", "Broker.Silo.dll");
                return File.Exists(path) ? path : throw new FileNotFoundException($"{path} is missing: build the solution first.", path);
            }
        }

        throw new InvalidOperationException($"No Broker.sln above {AppContext.BaseDirectory}.");
    }

    private static readonly HashSet<int> s_handedOut = [];

    public static int FreePort()
    {
        lock (s_handedOut)
        {
            for (var attempt = 0; attempt < 500; attempt++)
            {
                var port = Random.Shared.Next(LowPortAllocator.MinPort, LowPortAllocator.MaxPort);
                if (s_handedOut.Contains(port))
                {
                    continue;
                }

                try
                {
                    var listener = new TcpListener(IPAddress.Loopback, port);
                    listener.Start();
                    listener.Stop();
                    s_handedOut.Add(port);
                    return port;
                }
                catch (SocketException)
                {
                    // Taken: try another.
                }
            }
        }

        throw new InvalidOperationException("No free port.");
    }

    /// <summary>A throw-away redis-server on 127.0.0.1 (no persistence), answering once it accepts connections.</summary>
    public static async Task<(TestProcess Process, string Endpoint)> StartRedisAsync()
    {
        var port = FreePort();
        var redis = TestProcess.Start(Program("redis-server"), ["--port", port.ToString(CultureInfo.InvariantCulture), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no"]);
        await WaitListeningAsync(redis, port, "redis-server");
        return (redis, $"127.0.0.1:{port.ToString(CultureInfo.InvariantCulture)}");
    }

    /// <summary>A broker silo process joined through Redis; returns once its /healthz answers 200.</summary>
    public static async Task<TestProcess> StartSiloAsync(string redis, string clusterId, IEnumerable<string>? settings = null)
    {
        var health = FreePort();
        var silo = TestProcess.Start("dotnet",
        [
            SiloDll(), "--redis", redis, "--cluster-id", clusterId, "--service-id", clusterId,
            "--silo-port", FreePort().ToString(CultureInfo.InvariantCulture),
            "--gateway-port", FreePort().ToString(CultureInfo.InvariantCulture),
            "--health-port", health.ToString(CultureInfo.InvariantCulture),
            .. settings ?? [],
        ]);
        using var http = new HttpClient { Timeout = TimeSpan.FromSeconds(2) };
        var deadline = DateTime.UtcNow + TimeSpan.FromSeconds(90);
        while (true)
        {
            if (silo.HasExited)
            {
                throw new InvalidOperationException($"The silo exited at start.\n{silo.Tail()}");
            }

            try
            {
                using var response = await http.GetAsync(new Uri($"http://127.0.0.1:{health.ToString(CultureInfo.InvariantCulture)}/healthz"));
                if (response.IsSuccessStatusCode)
                {
                    return silo;
                }
            }
            catch (Exception ex) when (ex is HttpRequestException or TaskCanceledException)
            {
                // Not listening yet.
            }

            if (DateTime.UtcNow > deadline)
            {
                await silo.DisposeAsync();
                throw new TimeoutException($"The silo was not healthy within 90 s.\n{silo.Tail()}");
            }

            // No event to wait on: ask again shortly.
            await Task.Delay(200);
        }
    }

    private static async Task WaitListeningAsync(TestProcess process, int port, string what)
    {
        var deadline = DateTime.UtcNow + TimeSpan.FromSeconds(20);
        while (true)
        {
            if (process.HasExited)
            {
                throw new InvalidOperationException($"{what} exited at start.\n{process.Tail()}");
            }

            try
            {
                using var tcp = new TcpClient();
                await tcp.ConnectAsync(IPAddress.Loopback, port);
                return;
            }
            catch (SocketException)
            {
                // Not listening yet.
            }

            if (DateTime.UtcNow > deadline)
            {
                throw new TimeoutException($"{what} did not listen.\n{process.Tail()}");
            }

            await Task.Delay(50);
        }
    }
}
