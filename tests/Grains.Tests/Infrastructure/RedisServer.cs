using System.Diagnostics;
using System.Net;
using System.Net.Sockets;
using StackExchange.Redis;

namespace Broker.Grains.Tests.Infrastructure;

/// <summary>
/// A real redis-server on 127.0.0.1 (a free port in 20000-32000), started and stopped by the test.
/// Shared with tests/WsFrontend.Tests (linked), so it depends on nothing else of this project.
/// </summary>
public sealed class RedisServer : IAsyncDisposable
{
    private readonly Process _process;

    private RedisServer(Process process, int port, ConnectionMultiplexer connection)
    {
        _process = process;
        Port = port;
        Connection = connection;
    }

    public int Port { get; }

    public string Endpoint => $"127.0.0.1:{Port}";

    public ConnectionMultiplexer Connection { get; }

    public static async Task<RedisServer> StartAsync()
    {
        var port = FreePort();
        var process = Process.Start(new ProcessStartInfo("redis-server", $"--port {port} --bind 127.0.0.1 --save \"\" --appendonly no")
        {
            RedirectStandardOutput = true,
            RedirectStandardError = true,
            UseShellExecute = false,
        }) ?? throw new InvalidOperationException("redis-server did not start; is it installed (apt-get install redis-server)?");
        process.OutputDataReceived += (_, _) => { };
        process.BeginOutputReadLine();
        process.BeginErrorReadLine();
        var deadline = DateTime.UtcNow + TimeSpan.FromSeconds(15);
        while (true)
        {
            try
            {
                var options = ConfigurationOptions.Parse($"127.0.0.1:{port}");
                options.AbortOnConnectFail = true;
                options.ConnectTimeout = 1000;
                options.AllowAdmin = true;
                var connection = await ConnectionMultiplexer.ConnectAsync(options);
                return new RedisServer(process, port, connection);
            }
            catch (RedisConnectionException) when (DateTime.UtcNow < deadline && !process.HasExited)
            {
                await Task.Delay(100);
            }
        }
    }

    /// <summary>Freezes the server (SIGSTOP): it stops answering without closing connections.</summary>
    public void Pause() => Signal("STOP");

    /// <summary>Lets a paused server go on (SIGCONT).</summary>
    public void Resume() => Signal("CONT");

    /// <summary>How many batches the room store has committed: the scripts Redis ran (EVAL, EVALSHA) and any EXEC.</summary>
    public async Task<long> CommitCountAsync()
    {
        var info = await Connection.GetServer(Endpoint).InfoAsync("commandstats");
        var total = 0L;
        foreach (var (key, value) in info.SelectMany(g => g))
        {
            if (key is "cmdstat_exec" or "cmdstat_eval" or "cmdstat_evalsha")
            {
                total += long.Parse(value.Split(',')[0].Split('=')[1], System.Globalization.CultureInfo.InvariantCulture);
            }
        }

        return total;
    }

    public async ValueTask DisposeAsync()
    {
        await Connection.DisposeAsync();
        if (!_process.HasExited)
        {
            _process.Kill();
            await _process.WaitForExitAsync();
        }

        _process.Dispose();
    }

    private void Signal(string signal)
    {
        using var kill = Process.Start("kill", $"-{signal} {_process.Id}") ?? throw new InvalidOperationException("kill did not start");
        kill.WaitForExit();
    }

    private static int FreePort()
    {
        for (var attempt = 0; attempt < 1000; attempt++)
        {
            var port = Random.Shared.Next(20000, 32000);
            try
            {
                using var listener = new TcpListener(IPAddress.Loopback, port);
                listener.Start();
                return port;
            }
            catch (SocketException)
            {
                // Taken; try another.
            }
        }

        throw new InvalidOperationException("No free port for redis-server.");
    }
}
