using System.Buffers;
using System.Buffers.Text;
using System.Collections.Concurrent;
using System.Diagnostics;
using System.Net;
using System.Net.WebSockets;
using System.Text;
using Broker.Bench.Core;

namespace Broker.Bench.Workloads;

public sealed record EchoOptions
{
    public required IReadOnlyList<Uri> Urls { get; init; }
    public int Connections { get; init; } = 100;

    /// <summary>"echo" ({"type":"echo","id","data"}) or "ping" ({"type":"ping","id"}).</summary>
    public string Kind { get; init; } = "echo";

    /// <summary>Length of the echoed data string.</summary>
    public int Payload { get; init; } = 16;

    public TimeSpan Warmup { get; init; } = TimeSpan.FromSeconds(2);
    public TimeSpan Duration { get; init; } = TimeSpan.FromSeconds(20);
    public string Namespace { get; init; } = "chat";
    public IReadOnlyList<int> Pids { get; init; } = [];
    public IReadOnlyList<IPAddress> SourceIps { get; init; } = [];
    public TextWriter? Progress { get; init; }
    public string Label { get; init; } = "echo";
}

public sealed record EchoResult(
    string Workload,
    string Label,
    IReadOnlyList<string> Urls,
    int Connections,
    string Kind,
    int Payload,
    double WarmupSeconds,
    double MeasuredSeconds,
    long RoundTrips,
    double RoundTripsPerSecond,
    LatencySummary Latency,
    IReadOnlyDictionary<string, long> Errors,
    IReadOnlyDictionary<string, long> Closes,
    CpuReport Cpu,
    double RoundTripsPerServerCpuSecond,
    double ServerCpuMicrosPerRoundTrip,
    double ServerUserMicrosPerRoundTrip);

/// <summary>N connections in a closed loop: each sends echo (or ping) and waits for its reply before the next.</summary>
public sealed class EchoRunner
{
    private readonly EchoOptions _o;
    private readonly LatencyRecorder _live = new();
    private readonly LatencyRecorder _measured = new();
    private readonly ConcurrentDictionary<string, long> _errors = new(StringComparer.Ordinal);
    private readonly ConcurrentDictionary<string, long> _closes = new(StringComparer.Ordinal);
    private long _roundTrips;
    private long _errorsAll;
    private long _epoch;
    private long _measureFrom;
    private long _measureTo;

    private EchoRunner(EchoOptions options) => _o = options;

    public static Task<EchoResult> RunAsync(EchoOptions options, CancellationToken ct = default)
    {
        if (options.Urls.Count == 0 || options.Connections < 1 || options.Duration <= TimeSpan.Zero)
        {
            throw new BenchException("echo needs --url, --connections ≥ 1 and a positive --duration.");
        }

        if (options.Kind is not ("echo" or "ping"))
        {
            throw new BenchException("--kind is echo or ping.");
        }

        return new EchoRunner(options).RunCoreAsync(ct);
    }

    private async Task<EchoResult> RunCoreAsync(CancellationToken ct)
    {
        var o = _o;
        var runId = Convert.ToHexStringLower(Guid.NewGuid().ToByteArray().AsSpan(0, 4));
        var connector = new WsConnector(o.SourceIps) { ReadBuffer = 4 * 1024 };
        var sockets = new WebSocket?[o.Connections];
        var meter = new CpuMeter(o.Pids);
        try
        {
            var failures = new ConcurrentDictionary<string, int>(StringComparer.Ordinal);
            using (var gate = new SemaphoreSlim(32))
            {
                await Task.WhenAll(Enumerable.Range(0, o.Connections).Select(async i =>
                {
                    await gate.WaitAsync(ct);
                    try
                    {
                        var uri = WsConnector.Endpoint(o.Urls[i % o.Urls.Count], o.Namespace, $"user=e{runId}-{i}");
                        var socket = await connector.ConnectAsync(uri, ct);
                        sockets[i] = socket;
                        await ReadWelcomeAsync(socket, ct);
                    }
                    catch (Exception ex) when (ex is not OperationCanceledException || !ct.IsCancellationRequested)
                    {
                        failures.AddOrUpdate(FrameLoop.Describe(ex), 1, (_, n) => n + 1);
                    }
                    finally
                    {
                        gate.Release();
                    }
                }));
            }

            if (!failures.IsEmpty)
            {
                throw new BenchException($"{failures.Values.Sum()} of {o.Connections} connections failed: " + string.Join("; ", failures.Select(f => $"{f.Key} ×{f.Value}")));
            }

            var freq = Stopwatch.Frequency;
            _epoch = Stopwatch.GetTimestamp();
            _measureFrom = _epoch + (long)(o.Warmup.TotalSeconds * freq);
            _measureTo = _measureFrom + (long)(o.Duration.TotalSeconds * freq);
            CpuSample? from = null, to = null;
            long countFrom = 0, countTo = 0, last = 0, lastErrors = 0;
            await using (new Ticker(o.Progress, meter, t =>
            {
                var count = Interlocked.Read(ref _roundTrips);
                var errors = Interlocked.Read(ref _errorsAll);
                var lat = _live.TakeInterval();
                var phase = Stopwatch.GetTimestamp() < _measureFrom ? "warmup" : "measure";
                var line = $"{o.Label} {t.Second,4}s  {phase,-7}  round trips {Fmt.N(count - last)}/s  p50 {Fmt.Ms(lat.P50Ms)}  p99 {Fmt.Ms(lat.P99Ms)}  max {Fmt.Ms(lat.MaxMs)}"
                    + $"  errors {errors - lastErrors}  closes {_closes.Values.Sum()}  server {t.ServerCores:0.00} cores  tool {t.ToolCores:0.00} cores";
                last = count;
                lastErrors = errors;
                return line;
            }))
            {
                var window = Task.Run(
                    async () =>
                    {
                        await Task.Delay(Stopwatch.GetElapsedTime(Stopwatch.GetTimestamp(), _measureFrom), ct);
                        from = meter.Sample();
                        countFrom = Interlocked.Read(ref _roundTrips);
                        await Task.Delay(Stopwatch.GetElapsedTime(Stopwatch.GetTimestamp(), _measureTo), ct);
                        to = meter.Sample();
                        countTo = Interlocked.Read(ref _roundTrips);
                    },
                    ct);
                await Task.WhenAll(sockets.Select((s, i) => LoopAsync(s!, i, ct)).Append(window));
            }

            var cpu = meter.Report(from!, to!);
            var trips = countTo - countFrom;
            return new EchoResult(
                "echo",
                o.Label,
                [.. o.Urls.Select(u => u.ToString())],
                o.Connections,
                o.Kind,
                o.Payload,
                o.Warmup.TotalSeconds,
                cpu.WallSeconds,
                trips,
                Math.Round(trips / cpu.WallSeconds, 1),
                _measured.Total(),
                new SortedDictionary<string, long>(_errors, StringComparer.Ordinal),
                new SortedDictionary<string, long>(_closes, StringComparer.Ordinal),
                cpu,
                cpu.PerServerCpuSecond(trips),
                cpu.MicrosPerEvent(trips),
                cpu.MicrosPerEvent(trips, userOnly: true));
        }
        finally
        {
            await Task.WhenAll(sockets.Where(s => s is not null).Select(s => FrameLoop.CloseAsync(s!, DrainAsync(s!), TimeSpan.FromSeconds(3))));
        }
    }

    private static async Task ReadWelcomeAsync(WebSocket socket, CancellationToken ct)
    {
        var buffer = ArrayPool<byte>.Shared.Rent(1024);
        try
        {
            ValueWebSocketReceiveResult r;
            do
            {
                r = await socket.ReceiveAsync(buffer.AsMemory(), ct).AsTask().WaitAsync(TimeSpan.FromSeconds(10), ct);
                if (r.MessageType == WebSocketMessageType.Close)
                {
                    throw new WebSocketException($"closed before welcome: {(int?)socket.CloseStatus}");
                }
            }
            while (!r.EndOfMessage);
        }
        finally
        {
            ArrayPool<byte>.Shared.Return(buffer);
        }
    }

    /// <summary>Reads what the server still sends after our close frame, until its close frame.</summary>
    private static async Task DrainAsync(WebSocket socket)
    {
        var buffer = new byte[4096];
        try
        {
            while (socket.State is WebSocketState.Open or WebSocketState.CloseSent)
            {
                var r = await socket.ReceiveAsync(buffer.AsMemory(), CancellationToken.None);
                if (r.MessageType == WebSocketMessageType.Close)
                {
                    return;
                }
            }
        }
        catch (Exception ex) when (ex is WebSocketException or IOException or ObjectDisposedException or OperationCanceledException)
        {
            // Gone.
        }
    }

    private enum Reply
    {
        None,
        Ok,
        Error,
    }

    private Reply Classify(ReadOnlySpan<byte> frame, long id)
    {
        if (!FrameReader.TryRead(frame, out var f) || !f.HasId || f.Id != id)
        {
            return Reply.None;
        }

        if (f.Type == FrameType.Error)
        {
            Interlocked.Increment(ref _errorsAll);
            _errors.AddOrUpdate(Encoding.UTF8.GetString(f.Code), 1, (_, n) => n + 1);
            return Reply.Error;
        }

        return Reply.Ok;
    }

    private async Task LoopAsync(WebSocket socket, int index, CancellationToken ct)
    {
        var o = _o;
        var send = new byte[o.Payload + 128];
        var prefix = (o.Kind == "ping" ? "{\"type\":\"ping\",\"id\":"u8 : "{\"type\":\"echo\",\"id\":"u8).ToArray();
        prefix.CopyTo(send);
        var receive = ArrayPool<byte>.Shared.Rent(o.Payload + 4096);
        long id = (long)index << 32;
        try
        {
            while (Stopwatch.GetTimestamp() < _measureTo && !ct.IsCancellationRequested)
            {
                id++;
                var length = prefix.Length;
                Utf8Formatter.TryFormat(id, send.AsSpan(length), out var w);
                length += w;
                if (o.Kind == "ping")
                {
                    send[length++] = (byte)'}';
                }
                else
                {
                    ",\"data\":\""u8.CopyTo(send.AsSpan(length));
                    length += 9;
                    send.AsSpan(length, o.Payload).Fill((byte)'e');
                    length += o.Payload;
                    "\"}"u8.CopyTo(send.AsSpan(length));
                    length += 2;
                }

                var started = Stopwatch.GetTimestamp();
                await socket.SendAsync(send.AsMemory(0, length), WebSocketMessageType.Text, true, ct);
                while (true)
                {
                    var count = 0;
                    ValueWebSocketReceiveResult r;
                    do
                    {
                        if (count == receive.Length)
                        {
                            var bigger = ArrayPool<byte>.Shared.Rent(receive.Length * 2);
                            receive.AsSpan(0, count).CopyTo(bigger);
                            ArrayPool<byte>.Shared.Return(receive);
                            receive = bigger;
                        }

                        r = await socket.ReceiveAsync(receive.AsMemory(count), ct);
                        if (r.MessageType == WebSocketMessageType.Close)
                        {
                            _closes.AddOrUpdate(((int?)socket.CloseStatus ?? 1005).ToString(System.Globalization.CultureInfo.InvariantCulture), 1, (_, n) => n + 1);
                            return;
                        }

                        count += r.Count;
                    }
                    while (!r.EndOfMessage);

                    var done = Stopwatch.GetTimestamp();
                    var reply = Classify(receive.AsSpan(0, count), id);
                    if (reply == Reply.None)
                    {
                        continue; // not the reply (e.g. an event); keep waiting
                    }

                    if (reply == Reply.Error)
                    {
                        break;
                    }

                    Interlocked.Increment(ref _roundTrips);
                    var latency = done - started;
                    _live.RecordTicks(latency);
                    if (done >= _measureFrom && done < _measureTo)
                    {
                        _measured.RecordTicks(latency);
                    }

                    break;
                }
            }
        }
        catch (Exception ex) when (ex is WebSocketException or IOException or ObjectDisposedException)
        {
            _closes.AddOrUpdate("error: " + FrameLoop.Describe(ex), 1, (_, n) => n + 1);
        }
        catch (OperationCanceledException) when (ct.IsCancellationRequested)
        {
            // Stopped.
        }
        finally
        {
            ArrayPool<byte>.Shared.Return(receive);
        }
    }
}
