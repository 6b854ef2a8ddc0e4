using System.Globalization;
using System.Net.Sockets;
using System.Text;

namespace Broker.Cluster.Tests.Infrastructure;

/// <summary>A throw-away redis-server on 127.0.0.1 (no persistence), ready once it answers PING.</summary>
public sealed class RedisServer : ChildProcess
{
    private RedisServer(string logDirectory, int port)
        : base("redis", logDirectory) => Port = port;

    public int Port { get; }

    /// <summary>What --redis takes.</summary>
    public string Endpoint => $"127.0.0.1:{Port.ToString(CultureInfo.InvariantCulture)}";

    public static async Task<RedisServer> StartAsync(string logDirectory)
    {
        var redis = new RedisServer(logDirectory, FreePorts.Next());
        try
        {
            redis.Start(BuildOutput.Program("redis-server"),
                ["--port", redis.Port.ToString(CultureInfo.InvariantCulture), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no"]);
            var deadline = DateTime.UtcNow + TimeSpan.FromSeconds(20);
            while (true)
            {
                if (redis.HasExited)
                {
                    throw new InvalidOperationException($"redis-server exited at start.\n{redis.Tail()}");
                }

                try
                {
                    if (await redis.CommandAsync(TimeSpan.FromSeconds(1), "PING") is "PONG")
                    {
                        return redis;
                    }
                }
                catch (Exception ex) when (ex is SocketException or IOException or TimeoutException)
                {
                    // Not listening yet.
                }

                if (DateTime.UtcNow > deadline)
                {
                    throw new TimeoutException($"redis-server did not answer PING.\n{redis.Tail()}");
                }

                await Task.Delay(50);
            }
        }
        catch
        {
            await redis.DisposeAsync();
            throw;
        }
    }

    /// <summary>One command over a fresh connection (RESP); returns a string, a long, a list or null.</summary>
    public async Task<object?> CommandAsync(TimeSpan timeout, params string[] args)
    {
        using var cts = new CancellationTokenSource(timeout);
        using var tcp = new TcpClient();
        try
        {
            await tcp.ConnectAsync("127.0.0.1", Port, cts.Token);
            var stream = tcp.GetStream();
            var request = new StringBuilder().Append('*').Append(args.Length).Append("\r\n");
            foreach (var arg in args)
            {
                request.Append('$').Append(Encoding.UTF8.GetByteCount(arg)).Append("\r\n").Append(arg).Append("\r\n");
            }

            await stream.WriteAsync(Encoding.UTF8.GetBytes(request.ToString()), cts.Token);
            var reader = new RespReader(stream);
            return await reader.ReadAsync(cts.Token);
        }
        catch (OperationCanceledException)
        {
            throw new TimeoutException($"Redis did not answer {args[0]} within {timeout}.");
        }
    }

    private sealed class RespReader(Stream stream)
    {
        private readonly byte[] _one = new byte[1];

        public async Task<object?> ReadAsync(CancellationToken ct)
        {
            var line = await ReadLineAsync(ct);
            var rest = line[1..];
            switch (line[0])
            {
                case '+':
                    return rest;
                case '-':
                    throw new InvalidOperationException("Redis error: " + rest);
                case ':':
                    return long.Parse(rest, CultureInfo.InvariantCulture);
                case '$':
                    var length = int.Parse(rest, CultureInfo.InvariantCulture);
                    if (length < 0)
                    {
                        return null;
                    }

                    var buffer = new byte[length + 2];
                    await stream.ReadExactlyAsync(buffer, ct);
                    return Encoding.UTF8.GetString(buffer, 0, length);
                case '*':
                    var count = int.Parse(rest, CultureInfo.InvariantCulture);
                    if (count < 0)
                    {
                        return null;
                    }

                    var items = new List<object?>(count);
                    for (var i = 0; i < count; i++)
                    {
                        items.Add(await ReadAsync(ct));
                    }

                    return items;
                default:
                    throw new InvalidOperationException("Unexpected RESP line: " + line);
            }
        }

        private async Task<string> ReadLineAsync(CancellationToken ct)
        {
            var bytes = new List<byte>();
            while (true)
            {
                if (await stream.ReadAsync(_one, ct) == 0)
                {
                    throw new IOException("Redis closed the connection.");
                }

                if (_one[0] == '\n' && bytes.Count > 0 && bytes[^1] == '\r')
                {
                    return Encoding.UTF8.GetString(bytes.ToArray(), 0, bytes.Count - 1);
                }

                bytes.Add(_one[0]);
            }
        }
    }
}
