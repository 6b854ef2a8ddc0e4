using Broker.Grains.Tests.Infrastructure;
using System.Diagnostics;
using System.Globalization;
using System.Net;
using System.Net.Sockets;
using System.Text;

namespace Broker.Streams.Tests.Infrastructure;

/// <summary>
/// A throw-away nats-server with JetStream (Debian's package) on 127.0.0.1, its store in a temp
/// directory, ready once it sends its INFO line. Stopped by its own PID.
/// </summary>
public sealed class NatsServer : IAsyncDisposable
{
    private readonly Process _process;
    private readonly StringBuilder _output = new();

    private NatsServer(Process process, int port, int monitorPort, string storeDirectory)
    {
        _process = process;
        Port = port;
        MonitorPort = monitorPort;
        StoreDirectory = storeDirectory;
    }

    public int Port { get; }

    /// <summary>The server's HTTP monitoring port (/jsz: JetStream streams and consumers).</summary>
    public int MonitorPort { get; }

    public string StoreDirectory { get; }

    /// <summary>What --nats takes.</summary>
    public string Url => $"nats://127.0.0.1:{Port.ToString(CultureInfo.InvariantCulture)}";

    /// <param name="configuration">Extra lines of a configuration file (e.g. subject mappings), or none.</param>
    public static async Task<NatsServer> StartAsync(string? configuration = null)
    {
        var program = FindProgram("nats-server");
        var store = Directory.CreateTempSubdirectory("broker-nats-").FullName;
        var port = FreePort();
        var monitorPort = FreePort();
        var start = new ProcessStartInfo(program)
        {
            RedirectStandardOutput = true,
            RedirectStandardError = true,
            UseShellExecute = false,
        };
        var args = new List<string> { "-a", "127.0.0.1", "-p", port.ToString(CultureInfo.InvariantCulture), "-m", monitorPort.ToString(CultureInfo.InvariantCulture), "-js", "-sd", Path.Combine(store, "js") };
        if (configuration is not null)
        {
            var file = Path.Combine(store, "nats.conf");
            await File.WriteAllTextAsync(file, configuration);
            args.AddRange(["-c", file]);
        }

        foreach (var arg in args)
        {
            start.ArgumentList.Add(arg);
        }

        var process = Process.Start(start) ?? throw new InvalidOperationException("nats-server did not start.");
        var server = new NatsServer(process, port, monitorPort, store);
        process.OutputDataReceived += (_, e) => server.Append(e.Data);
        process.ErrorDataReceived += (_, e) => server.Append(e.Data);
        process.BeginOutputReadLine();
        process.BeginErrorReadLine();
        try
        {
            await server.WaitReadyAsync(TimeSpan.FromSeconds(20));
            return server;
        }
        catch
        {
            await server.DisposeAsync();
            throw;
        }
    }

    /// <summary>JetStream's state: streams with their message counts and subjects, consumers with pending and unacked counts.</summary>
    public async Task<string> JetStreamStateAsync()
    {
        using var http = new HttpClient { Timeout = TimeSpan.FromSeconds(5) };
        return await http.GetStringAsync(new Uri($"http://127.0.0.1:{MonitorPort.ToString(CultureInfo.InvariantCulture)}/jsz?streams=true&consumers=true&config=true"));
    }

    public string Tail()
    {
        lock (_output)
        {
            var text = _output.ToString();
            return text.Length > 4000 ? text[^4000..] : text;
        }
    }

    public async ValueTask DisposeAsync()
    {
        try
        {
            if (!_process.HasExited)
            {
                _process.Kill();
                await _process.WaitForExitAsync();
            }
        }
        catch (InvalidOperationException)
        {
            // Already gone.
        }
        finally
        {
            _process.Dispose();
            try
            {
                Directory.Delete(StoreDirectory, recursive: true);
            }
            catch (IOException)
            {
                // Left for the OS's temp cleaning.
            }
        }
    }

    private void Append(string? line)
    {
        if (line is null)
        {
            return;
        }

        lock (_output)
        {
            _output.AppendLine(line);
        }
    }

    private async Task WaitReadyAsync(TimeSpan timeout)
    {
        var deadline = DateTime.UtcNow + timeout;
        while (true)
        {
            if (_process.HasExited)
            {
                throw new InvalidOperationException($"nats-server exited at start.\n{Tail()}");
            }

            try
            {
                using var cts = new CancellationTokenSource(TimeSpan.FromSeconds(1));
                using var tcp = new TcpClient();
                await tcp.ConnectAsync(IPAddress.Loopback, Port, cts.Token);
                var buffer = new byte[4];
                await tcp.GetStream().ReadExactlyAsync(buffer, cts.Token);
                if (Encoding.ASCII.GetString(buffer) == "INFO")
                {
                    return;
                }
            }
            catch (Exception ex) when (ex is SocketException or IOException or OperationCanceledException)
            {
                // Not listening yet.
            }

            if (DateTime.UtcNow > deadline)
            {
                throw new TimeoutException($"nats-server did not answer.\n{Tail()}");
            }

            await Task.Delay(50);
        }
    }

    private static int FreePort()
    {
        for (var attempt = 0; attempt < 200; attempt++)
        {
            var port = Random.Shared.Next(LowPortAllocator.MinPort, LowPortAllocator.MaxPort);
            try
            {
                var listener = new TcpListener(IPAddress.Loopback, port);
                listener.Start();
                listener.Stop();
                return port;
            }
            catch (SocketException)
            {
                // Taken: try another.
            }
        }

        throw new InvalidOperationException("No free port for nats-server.");
    }

    private static string FindProgram(string name)
    {
        var dirs = (Environment.GetEnvironmentVariable("PATH") ?? string.Empty)
            .Split(Path.PathSeparator, StringSplitOptions.RemoveEmptyEntries)
            .Concat(["/usr/sbin", "/usr/bin", "/usr/local/bin"]);
        foreach (var dir in dirs)
        {
            var path = Path.Combine(dir, name);
            if (File.Exists(path))
            {
                return path;
            }
        }

        throw new FileNotFoundException($"{name} is not installed (apt-get install -y nats-server; scripts/test.sh does it).", name);
    }
}
