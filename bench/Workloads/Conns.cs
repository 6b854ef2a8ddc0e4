using System.Collections.Concurrent;
using System.Diagnostics;
using System.Net;
using System.Net.WebSockets;
using Broker.Bench.Core;

namespace Broker.Bench.Workloads;

public sealed record ConnsOptions
{
    public required IReadOnlyList<Uri> Urls { get; init; }
    public int Count { get; init; } = 1000;

    /// <summary>New connections per second (open loop).</summary>
    public double Rate { get; init; } = 1000;

    /// <summary>How long all connections are held open after the last one opened.</summary>
    public TimeSpan Hold { get; init; } = TimeSpan.FromSeconds(10);

    public string Namespace { get; init; } = "chat";

    /// <summary>Connect without ?user=, so that the server makes up an id (ours: no user grain per connection).</summary>
    public bool Anonymous { get; init; }

    public IReadOnlyList<IPAddress> SourceIps { get; init; } = [];
    public IReadOnlyList<int> Pids { get; init; } = [];
    public TextWriter? Progress { get; init; }
    public string Label { get; init; } = "conns";
}

public sealed record ProcessRss(int Pid, string Name, long? BeforeKb, long? OpenKb, long? HeldKb, double PerConnectionKb);

/// <param name="RssPerConnectionKb">Server RSS growth per opened connection, all processes (see <see cref="ConnsRunner.RssPerConnection"/>).</param>
public sealed record ConnsResult(
    string Workload,
    string Label,
    IReadOnlyList<string> Urls,
    IReadOnlyList<string> SourceIps,
    int Requested,
    double Rate,
    int Opened,
    int Failed,
    IReadOnlyDictionary<string, long> Failures,
    double OpenSeconds,
    double HoldSeconds,
    LatencySummary ConnectLatency,
    LatencySummary WelcomeLatency,
    int OpenAfterHold,
    IReadOnlyDictionary<string, long> Closes,
    IReadOnlyList<ProcessRss> Rss,
    double RssPerConnectionKb,
    CpuReport Cpu,
    double ServerCpuMicrosPerConnection);

/// <summary>
/// Opens N idle connections at a fixed rate (optionally from several 127.0.0.x source addresses),
/// holds them, and reports connect latency and the servers' resident memory per connection.
/// </summary>
public sealed class ConnsRunner
{
    private readonly ConnsOptions _o;
    private readonly LatencyRecorder _connect = new();
    private readonly LatencyRecorder _welcome = new();
    private readonly ConcurrentDictionary<string, long> _failures = new(StringComparer.Ordinal);
    private readonly ConcurrentDictionary<string, long> _closes = new(StringComparer.Ordinal);
    private readonly ConcurrentBag<(WebSocket Socket, Task Loop)> _open = [];
    private int _opened;
    private int _failed;
    private int _live;
    private volatile bool _closing;

    private ConnsRunner(ConnsOptions options) => _o = options;

    public static Task<ConnsResult> RunAsync(ConnsOptions options, CancellationToken ct = default)
    {
        if (options.Urls.Count == 0 || options.Count < 1 || options.Rate <= 0)
        {
            throw new BenchException("conns needs --url, --count ≥ 1 and a positive --rate.");
        }

        return new ConnsRunner(options).RunCoreAsync(ct);
    }

    private async Task<ConnsResult> RunCoreAsync(CancellationToken ct)
    {
        var o = _o;
        var runId = Convert.ToHexStringLower(Guid.NewGuid().ToByteArray().AsSpan(0, 4));
        var connector = new WsConnector(o.SourceIps);
        var meter = new CpuMeter(o.Pids);
        var rssBefore = meter.ReadRss();
        var cpuFrom = meter.Sample();
        var start = Stopwatch.GetTimestamp();
        var phase = "opening";
        double openSeconds;
        long?[] rssOpen;
        try
        {
            await using (new Ticker(o.Progress, meter, t =>
                $"{o.Label} {t.Second,4}s  {phase,-7}  open {Volatile.Read(ref _live)}/{o.Count}  failed {Volatile.Read(ref _failed)}"
                + $"  server RSS {Fmt.N(meter.ReadRss().Sum(r => r ?? 0) / 1024.0)} MiB  server {t.ServerCores:0.00} cores  tool {t.ToolCores:0.00} cores"))
            {
                var tasks = new List<Task>(o.Count);
                var freq = Stopwatch.Frequency;
                for (var i = 0; i < o.Count; i++)
                {
                    var due = start + (long)(i * freq / o.Rate);
                    var wait = Stopwatch.GetElapsedTime(Stopwatch.GetTimestamp(), due);
                    if (wait > TimeSpan.FromMilliseconds(1))
                    {
                        await Task.Delay(wait, ct);
                    }

                    var uri = WsConnector.Endpoint(o.Urls[i % o.Urls.Count], o.Namespace, o.Anonymous ? null : $"user=c{runId}-{i}");
                    tasks.Add(OpenAsync(connector, uri, ct));
                }

                await Task.WhenAll(tasks);
                openSeconds = Stopwatch.GetElapsedTime(start).TotalSeconds;

                // Let the servers finish their part of the handshakes before reading their memory.
                await Task.Delay(TimeSpan.FromSeconds(1), ct);
                rssOpen = meter.ReadRss();
                phase = "holding";
                await Task.Delay(o.Hold, ct);
            }
        }
        finally
        {
            _closing = true;
        }

        var cpuTo = meter.Sample();
        var rssHeld = meter.ReadRss();
        var openAfterHold = Volatile.Read(ref _live);
        await CloseAllAsync();

        var opened = Math.Max(1, _opened);
        var rss = new List<ProcessRss>();
        for (var i = 0; i < meter.Pids.Count; i++)
        {
            var delta = (rssHeld[i] ?? 0) - (rssBefore[i] ?? 0);
            rss.Add(new ProcessRss(meter.Pids[i], ProcFs.ReadName(meter.Pids[i]), rssBefore[i], rssOpen[i], rssHeld[i], Math.Round(delta / (double)opened, 2)));
        }

        var cpu = meter.Report(cpuFrom, cpuTo, rssBefore, rssHeld);
        return new ConnsResult(
            "conns",
            o.Label,
            [.. o.Urls.Select(u => u.ToString())],
            [.. o.SourceIps.Select(a => a.ToString())],
            o.Count,
            o.Rate,
            _opened,
            _failed,
            new SortedDictionary<string, long>(_failures, StringComparer.Ordinal),
            CpuMeter.Round(openSeconds),
            o.Hold.TotalSeconds,
            _connect.Total(),
            _welcome.Total(),
            openAfterHold,
            new SortedDictionary<string, long>(_closes, StringComparer.Ordinal),
            rss,
            RssPerConnection(rss, opened),
            cpu,
            cpu.MicrosPerEvent(_opened));
    }

    /// <summary>
    /// Growth of every server process over the connections opened; a process that shrank meanwhile
    /// (returned memory unrelated to the connections) counts as 0, not as a negative.
    /// </summary>
    public static double RssPerConnection(IEnumerable<ProcessRss> rss, int opened) =>
        Math.Round(rss.Sum(r => Math.Max(0, (r.HeldKb ?? 0) - (r.BeforeKb ?? 0))) / (double)Math.Max(1, opened), 2);

    private async Task OpenAsync(WsConnector connector, Uri uri, CancellationToken ct)
    {
        var started = Stopwatch.GetTimestamp();
        WebSocket socket;
        try
        {
            socket = await connector.ConnectAsync(uri, ct);
        }
        catch (Exception ex) when (ex is not OperationCanceledException || !ct.IsCancellationRequested)
        {
            Interlocked.Increment(ref _failed);
            _failures.AddOrUpdate(FrameLoop.Describe(ex), 1, (_, n) => n + 1);
            return;
        }

        _connect.RecordTicks(Stopwatch.GetTimestamp() - started);
        var sink = new IdleSink(this, started);
        var loop = RunLoopAsync(socket, sink);
        _open.Add((socket, loop));
        Interlocked.Increment(ref _opened);
        Interlocked.Increment(ref _live);
        if (await Task.WhenAny(sink.FirstFrame.Task, Task.Delay(TimeSpan.FromSeconds(10), ct)) != sink.FirstFrame.Task)
        {
            _failures.AddOrUpdate("no welcome within 10 s", 1, (_, n) => n + 1);
        }
    }

    private async Task RunLoopAsync(WebSocket socket, IdleSink sink)
    {
        var outcome = await FrameLoop.RunAsync(socket, sink, 256, CancellationToken.None);
        sink.FirstFrame.TrySetResult();
        Interlocked.Decrement(ref _live);
        if (!_closing)
        {
            _closes.AddOrUpdate(outcome.Key, 1, (_, n) => n + 1);
        }
    }

    private async Task CloseAllAsync()
    {
        using var gate = new SemaphoreSlim(256);
        await Task.WhenAll(_open.Select(async c =>
        {
            await gate.WaitAsync();
            try
            {
                await FrameLoop.CloseAsync(c.Socket, c.Loop, TimeSpan.FromSeconds(3));
            }
            finally
            {
                gate.Release();
            }
        }));
    }

    private sealed class IdleSink(ConnsRunner run, long started) : IFrameSink
    {
        public TaskCompletionSource FirstFrame { get; } = new(TaskCreationOptions.RunContinuationsAsynchronously);

        public void OnFrame(ReadOnlySpan<byte> frame, long receivedAt)
        {
            if (!FirstFrame.Task.IsCompleted)
            {
                run._welcome.RecordTicks(receivedAt - started);
                FirstFrame.TrySetResult();
            }
        }
    }
}
