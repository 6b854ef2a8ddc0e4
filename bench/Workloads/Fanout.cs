using System.Buffers.Text;
using System.Collections.Concurrent;
using System.Diagnostics;
using System.Net;
using System.Net.WebSockets;
using System.Text;
using Broker.Bench.Core;

namespace Broker.Bench.Workloads;

public sealed record FanoutOptions
{
    /// <summary>Front-end URLs; members are spread over them round-robin.</summary>
    public required IReadOnlyList<Uri> Urls { get; init; }

    /// <summary>When set, publishers are extra connections on these URLs (joined to their room, so they get their
    /// own messages, counted but kept out of the latency figures); otherwise publishers are members.</summary>
    public IReadOnlyList<Uri> PublisherUrls { get; init; } = [];

    public int Rooms { get; init; } = 10;
    public int Members { get; init; } = 100;
    public int Publishers { get; init; } = 10;

    /// <summary>Aggregate publishes per second over all publishers (open loop).</summary>
    public double Rate { get; init; } = 500;

    /// <summary>Size of each message's data (a JSON object carrying the send timestamp), in bytes.</summary>
    public int Payload { get; init; } = 100;

    public TimeSpan Warmup { get; init; } = TimeSpan.FromSeconds(3);
    public TimeSpan Duration { get; init; } = TimeSpan.FromSeconds(20);

    /// <summary>After the last publish, how long to wait for outstanding deliveries and acks.</summary>
    public TimeSpan Drain { get; init; } = TimeSpan.FromSeconds(5);

    public string Namespace { get; init; } = "chat";
    public IReadOnlyList<int> Pids { get; init; } = [];
    public IReadOnlyList<IPAddress> SourceIps { get; init; } = [];
    public int ConnectConcurrency { get; init; } = 32;
    public TextWriter? Progress { get; init; }
    public string Label { get; init; } = "fanout";
}

public sealed record FanoutResult(
    string Workload,
    string Label,
    IReadOnlyList<string> Urls,
    IReadOnlyList<string> PublisherUrls,
    int Rooms,
    int Members,
    int Publishers,
    double Rate,
    int Payload,
    double WarmupSeconds,
    double MeasuredSeconds,
    int Connections,
    double ConnectSeconds,
    long Published,
    long Acked,
    long Rejected,
    double PublishedPerSecond,
    long Delivered,
    double DeliveredPerSecond,
    long ExpectedDeliveries,
    long ReceivedDeliveries,
    long MissingDeliveries,
    long OutOfOrder,
    long Duplicates,
    long PublisherOrderViolations,
    long UnexpectedFrames,
    LatencySummary Latency,
    LatencySummary AckLatency,
    LatencySummary SchedulerLateness,
    IReadOnlyDictionary<string, long> Errors,
    IReadOnlyDictionary<string, long> Closes,
    CpuReport Cpu,
    double DeliveriesPerServerCpuSecond,
    double ServerCpuMicrosPerDelivery,
    double ServerUserMicrosPerDelivery);

/// <summary>
/// R rooms × M members over one or more front-ends; P publishers publish at a fixed open-loop
/// aggregate rate (sends are scheduled by time, never wait for acks). Each message's data carries
/// the publisher, its counter and the send time, so every receiver measures latency, order,
/// duplicates and losses.
/// </summary>
public sealed class FanoutRunner
{
    private const long JoinId = 0;
    private readonly FanoutOptions _o;
    private readonly string _runId = Convert.ToHexStringLower(Guid.NewGuid().ToByteArray().AsSpan(0, 4));
    private readonly byte[][] _roomNames;
    private readonly int[] _receivers;
    private readonly List<Member> _connections = [];
    private readonly List<Publisher> _publishers = [];
    private readonly LatencyRecorder _live = new();
    private readonly LatencyRecorder _measured = new();
    private readonly LatencyRecorder _acks = new();
    private readonly LatencyRecorder _lateness = new();
    private readonly ConcurrentDictionary<string, long> _errors = new(StringComparer.Ordinal);
    private readonly ConcurrentDictionary<string, long> _closes = new(StringComparer.Ordinal);

    // Stopwatch timestamps: _epoch is when publishing starts; message stamps are ticks since _epoch.
    private long _epoch;
    private long _measureFrom;
    private long _measureTo;
    private volatile bool _closing;
    private volatile string _phase = "connecting";

    private long _deliveredAll;
    private long _publishedAll;
    private long _errorsAll;
    private long _closesAll;
    private long _sentMeasured;
    private long _acked;
    private long _rejected;
    private long _expected;
    private long _receivedMeasured;
    private long _outOfOrder;
    private long _duplicates;
    private long _fifo;
    private long _unexpected;
    private long _framesAll;

    private FanoutRunner(FanoutOptions options)
    {
        _o = options;
        _roomNames = [.. Enumerable.Range(0, options.Rooms).Select(r => Encoding.UTF8.GetBytes($"bench-{_runId}-{r}"))];
        _receivers = new int[options.Rooms];
    }

    public static Task<FanoutResult> RunAsync(FanoutOptions options, CancellationToken ct = default)
    {
        Validate(options);
        return new FanoutRunner(options).RunCoreAsync(ct);
    }

    private static void Validate(FanoutOptions o)
    {
        if (o.Urls.Count == 0)
        {
            throw new BenchException("At least one --url is needed.");
        }

        if (o.Rooms < 1 || o.Members < 0 || o.Publishers < 1 || o.Rate <= 0 || o.Payload < 0)
        {
            throw new BenchException("--rooms and --publishers must be at least 1, --members at least 0, --rate positive.");
        }

        if (o.PublisherUrls.Count == 0 && o.Publishers > o.Rooms * o.Members)
        {
            throw new BenchException($"{o.Publishers} publishers cannot be chosen among {o.Rooms * o.Members} members; lower --publishers or give --publisher-url.");
        }

        if (o.Duration <= TimeSpan.Zero)
        {
            throw new BenchException("--duration must be positive.");
        }
    }

    private async Task<FanoutResult> RunCoreAsync(CancellationToken ct)
    {
        var o = _o;
        for (var r = 0; r < o.Rooms; r++)
        {
            for (var j = 0; j < o.Members; j++)
            {
                var g = (r * o.Members) + j;
                AddConnection(o.Urls[g % o.Urls.Count], r, recordLatency: true);
            }
        }

        for (var p = 0; p < o.Publishers; p++)
        {
            var room = p % o.Rooms;
            var connection = o.PublisherUrls.Count > 0
                ? AddConnection(o.PublisherUrls[p % o.PublisherUrls.Count], room, recordLatency: false)
                : _connections[(room * o.Members) + (p / o.Rooms)];
            var publisher = new Publisher(this, p, connection, room);
            connection.Publisher = publisher;
            _publishers.Add(publisher);
        }

        var meter = new CpuMeter(o.Pids);
        var connectStart = Stopwatch.GetTimestamp();
        var connected = 0;
        await using (new Ticker(o.Progress, meter, t => $"{o.Label} {t.Second,4}s  connecting {Volatile.Read(ref connected)}/{_connections.Count}"))
        {
            try
            {
                await ConnectAllAsync(() => Interlocked.Increment(ref connected), ct);
            }
            catch
            {
                await CloseAllAsync();
                throw;
            }
        }

        var connectSeconds = Stopwatch.GetElapsedTime(connectStart).TotalSeconds;
        try
        {
            // Let the join traffic settle before the clock starts: every join is announced to the
            // room's other members (member_joined), so R rooms of M members joining at once are
            // R·M²/2 frames (1M for 2 rooms × 1,000) that would otherwise be measured as latency.
            await SettleAsync(o.Progress, ct);
            return await PublishAndMeasureAsync(meter, connectSeconds, ct);
        }
        finally
        {
            await CloseAllAsync();
        }
    }

    /// <summary>Waits (at most 120 s) until no frame has arrived for 500 ms.</summary>
    private async Task SettleAsync(TextWriter? progress, CancellationToken ct)
    {
        var start = Stopwatch.GetTimestamp();
        var quiet = 0;
        var last = Interlocked.Read(ref _framesAll);
        while (quiet < 5 && Stopwatch.GetElapsedTime(start) < TimeSpan.FromSeconds(120))
        {
            await Task.Delay(100, ct);
            var now = Interlocked.Read(ref _framesAll);
            quiet = now == last ? quiet + 1 : 0;
            last = now;
        }

        if (progress is not null && Stopwatch.GetElapsedTime(start) > TimeSpan.FromSeconds(2))
        {
            progress.WriteLine($"{_o.Label} join traffic settled after {Stopwatch.GetElapsedTime(start).TotalSeconds:0.0} s ({last:N0} frames)");
        }
    }

    private Member AddConnection(Uri url, int room, bool recordLatency)
    {
        var index = _connections.Count;
        var uri = WsConnector.Endpoint(url, _o.Namespace, $"user=b{_runId}-{index}");
        var member = new Member(this, index, room, uri, recordLatency);
        _connections.Add(member);
        _receivers[room]++;
        return member;
    }

    private async Task ConnectAllAsync(Action onConnected, CancellationToken ct)
    {
        var connector = new WsConnector(_o.SourceIps) { ReadBuffer = 16 * 1024 };
        using var gate = new SemaphoreSlim(_o.ConnectConcurrency);
        var failures = new ConcurrentDictionary<string, int>(StringComparer.Ordinal);
        var tasks = _connections.Select(async m =>
        {
            await gate.WaitAsync(ct);
            try
            {
                m.Socket = await connector.ConnectAsync(m.Uri, ct);
                m.Loop = RunLoopAsync(m, ct);
                var join = Encoding.UTF8.GetBytes($"{{\"type\":\"join\",\"id\":{JoinId},\"room\":\"{Encoding.UTF8.GetString(_roomNames[m.Room])}\"}}");
                await m.Socket.SendAsync(join, WebSocketMessageType.Text, true, ct);
                await m.Joined.Task.WaitAsync(TimeSpan.FromSeconds(15), ct);
                onConnected();
            }
            catch (Exception ex) when (ex is not OperationCanceledException || !ct.IsCancellationRequested)
            {
                failures.AddOrUpdate(ex is BenchException ? ex.Message : FrameLoop.Describe(ex), 1, (_, n) => n + 1);
            }
            finally
            {
                gate.Release();
            }
        }).ToList();
        await Task.WhenAll(tasks);
        if (!failures.IsEmpty)
        {
            throw new BenchException(
                $"{failures.Values.Sum()} of {_connections.Count} connections failed to connect and join: "
                + string.Join("; ", failures.Select(f => $"{f.Key} ×{f.Value}")));
        }
    }

    private async Task<CloseOutcome> RunLoopAsync(Member m, CancellationToken ct)
    {
        var outcome = await FrameLoop.RunAsync(m.Socket!, m, 4096, ct);
        m.Joined.TrySetException(new BenchException("closed before joining: " + outcome.Key));
        if (!_closing)
        {
            _closes.AddOrUpdate(outcome.Key, 1, (_, n) => n + 1);
            Interlocked.Increment(ref _closesAll);
        }

        return outcome;
    }

    private async Task<FanoutResult> PublishAndMeasureAsync(CpuMeter meter, double connectSeconds, CancellationToken ct)
    {
        var o = _o;
        var freq = Stopwatch.Frequency;
        _measureFrom = (long)(o.Warmup.TotalSeconds * freq);
        _measureTo = _measureFrom + (long)(o.Duration.TotalSeconds * freq);
        _epoch = Stopwatch.GetTimestamp();
        _phase = o.Warmup > TimeSpan.Zero ? "warmup" : "measure";

        long lastDelivered = 0, lastPublished = 0, lastErrors = 0;
        CpuSample? from = null, to = null;
        long deliveredFrom = 0, deliveredTo = 0;

        await using (new Ticker(o.Progress, meter, t =>
        {
            var delivered = Interlocked.Read(ref _deliveredAll);
            var published = Interlocked.Read(ref _publishedAll);
            var errors = Interlocked.Read(ref _errorsAll);
            var lat = _live.TakeInterval();
            var late = _lateness.TakeInterval();
            var line = $"{o.Label} {t.Second,4}s  {_phase,-7}  published {Fmt.N(published - lastPublished)}/s  delivered {Fmt.N(delivered - lastDelivered)}/s"
                + $"  p50 {Fmt.Ms(lat.P50Ms)}  p99 {Fmt.Ms(lat.P99Ms)}  max {Fmt.Ms(lat.MaxMs)}  late p99 {Fmt.Ms(late.P99Ms)}"
                + $"  errors {errors - lastErrors}  closes {Interlocked.Read(ref _closesAll)}  server {t.ServerCores:0.00} cores  tool {t.ToolCores:0.00} cores";
            lastDelivered = delivered;
            lastPublished = published;
            lastErrors = errors;
            return line;
        }))
        {
            var window = Task.Run(
                async () =>
                {
                    await DelayUntil(_epoch + _measureFrom, ct);
                    from = meter.Sample();
                    deliveredFrom = Interlocked.Read(ref _deliveredAll);
                    _phase = "measure";
                    await DelayUntil(_epoch + _measureTo, ct);
                    to = meter.Sample();
                    deliveredTo = Interlocked.Read(ref _deliveredAll);
                    _phase = "drain";
                },
                ct);
            await Task.WhenAll(_publishers.Select(p => p.RunAsync(ct)).Append(window));

            var drainEnd = Stopwatch.GetTimestamp() + (long)(o.Drain.TotalSeconds * freq);
            while (Stopwatch.GetTimestamp() < drainEnd && !Drained())
            {
                await Task.Delay(20, ct);
            }
        }

        _ = _live.Total();
        var cpu = meter.Report(from!, to!);
        var delivered = deliveredTo - deliveredFrom;
        var expected = Interlocked.Read(ref _expected);
        var received = Interlocked.Read(ref _receivedMeasured);
        var result = new FanoutResult(
            "fanout",
            o.Label,
            [.. o.Urls.Select(u => u.ToString())],
            [.. o.PublisherUrls.Select(u => u.ToString())],
            o.Rooms,
            o.Members,
            o.Publishers,
            o.Rate,
            o.Payload,
            o.Warmup.TotalSeconds,
            cpu.WallSeconds,
            _connections.Count,
            CpuMeter.Round(connectSeconds),
            Interlocked.Read(ref _sentMeasured),
            Interlocked.Read(ref _acked),
            Interlocked.Read(ref _rejected),
            Math.Round(Interlocked.Read(ref _sentMeasured) / o.Duration.TotalSeconds, 1),
            delivered,
            Math.Round(delivered / cpu.WallSeconds, 1),
            expected,
            received,
            Math.Max(0, expected - received),
            Interlocked.Read(ref _outOfOrder),
            Interlocked.Read(ref _duplicates),
            Interlocked.Read(ref _fifo),
            Interlocked.Read(ref _unexpected),
            _measured.Total(),
            _acks.Total(),
            _lateness.Total(),
            new SortedDictionary<string, long>(_errors, StringComparer.Ordinal),
            new SortedDictionary<string, long>(_closes, StringComparer.Ordinal),
            cpu,
            cpu.PerServerCpuSecond(delivered),
            cpu.MicrosPerEvent(delivered),
            cpu.MicrosPerEvent(delivered, userOnly: true));
        return result;
    }

    private bool Drained() =>
        Interlocked.Read(ref _receivedMeasured) >= Interlocked.Read(ref _expected)
        && Interlocked.Read(ref _acked) + Interlocked.Read(ref _rejected) >= Interlocked.Read(ref _sentMeasured);

    private static async Task DelayUntil(long timestamp, CancellationToken ct)
    {
        var wait = Stopwatch.GetElapsedTime(Stopwatch.GetTimestamp(), timestamp);
        if (wait > TimeSpan.Zero)
        {
            await Task.Delay(wait, ct);
        }
    }

    private async Task CloseAllAsync()
    {
        _closing = true;
        using var gate = new SemaphoreSlim(64);
        await Task.WhenAll(_connections.Where(m => m.Socket is not null).Select(async m =>
        {
            await gate.WaitAsync();
            try
            {
                await FrameLoop.CloseAsync(m.Socket!, m.Loop ?? Task.CompletedTask, TimeSpan.FromSeconds(3));
            }
            finally
            {
                gate.Release();
            }
        }));
    }

    private bool IsMeasured(long stamp) => stamp >= _measureFrom && stamp < _measureTo;

    private void CountError(ReadOnlySpan<byte> code)
    {
        Interlocked.Increment(ref _errorsAll);
        _errors.AddOrUpdate(code.IsEmpty ? "(no code)" : Encoding.UTF8.GetString(code), 1, (_, n) => n + 1);
    }

    private void OnMessage(Member m, ref Frame f, long receivedAt)
    {
        Interlocked.Increment(ref _deliveredAll);
        if (!f.Room.SequenceEqual(_roomNames[m.Room]) || !f.HasStamp)
        {
            Interlocked.Increment(ref _unexpected);
            return;
        }

        var (duplicate, outOfOrder) = m.Seqs.Add(f.Seq);
        if (duplicate)
        {
            Interlocked.Increment(ref _duplicates);
            return;
        }

        if (outOfOrder)
        {
            Interlocked.Increment(ref _outOfOrder);
        }

        if ((uint)f.Publisher < (uint)m.LastCounter.Length)
        {
            if (f.Counter < m.LastCounter[f.Publisher])
            {
                Interlocked.Increment(ref _fifo);
            }
            else
            {
                m.LastCounter[f.Publisher] = f.Counter;
            }
        }

        var latency = receivedAt - _epoch - f.SentTicks;
        if (m.RecordLatency)
        {
            _live.RecordTicks(latency);
        }

        if (IsMeasured(f.SentTicks))
        {
            Interlocked.Increment(ref _receivedMeasured);
            if (m.RecordLatency)
            {
                _measured.RecordTicks(latency);
            }
        }
    }

    /// <summary>One connection, joined to one room.</summary>
    private sealed class Member : IFrameSink
    {
        private readonly FanoutRunner _run;

        public Member(FanoutRunner run, int index, int room, Uri uri, bool recordLatency)
        {
            _run = run;
            Index = index;
            Room = room;
            Uri = uri;
            RecordLatency = recordLatency;
            LastCounter = [.. Enumerable.Repeat(-1L, run._o.Publishers)];
        }

        public int Index { get; }
        public int Room { get; }
        public Uri Uri { get; }
        public bool RecordLatency { get; }
        public SeqSet Seqs { get; } = new();
        public long[] LastCounter { get; }
        public TaskCompletionSource Joined { get; } = new(TaskCreationOptions.RunContinuationsAsynchronously);
        public WebSocket? Socket { get; set; }
        public Task<CloseOutcome>? Loop { get; set; }
        public Publisher? Publisher { get; set; }

        public void OnFrame(ReadOnlySpan<byte> frame, long receivedAt)
        {
            Interlocked.Increment(ref _run._framesAll);
            if (!FrameReader.TryRead(frame, out var f))
            {
                Interlocked.Increment(ref _run._unexpected);
                return;
            }

            switch (f.Type)
            {
                case FrameType.Message:
                    _run.OnMessage(this, ref f, receivedAt);
                    break;
                case FrameType.Ack when f.HasId:
                    Publisher?.OnAck(f.Id, receivedAt);
                    break;
                case FrameType.Joined when f.HasId && f.Id == JoinId:
                    Joined.TrySetResult();
                    break;
                case FrameType.Error:
                    if (f.HasId && f.Id == JoinId && !Joined.Task.IsCompleted)
                    {
                        Joined.TrySetException(new BenchException("join refused: " + Encoding.UTF8.GetString(f.Code)));
                    }
                    else if (f.HasId)
                    {
                        Publisher?.OnError(f.Id);
                    }

                    _run.CountError(f.Code);
                    break;
                default:
                    break;
            }
        }
    }

    /// <summary>Publishes to one room through one connection at rate/P per second, on a fixed schedule.</summary>
    private sealed class Publisher
    {
        private readonly FanoutRunner _run;
        private readonly int _index;
        private readonly Member _connection;
        private readonly int _room;
        private readonly long[] _sentAt;
        private readonly byte[] _buffer;
        private readonly int _prefixLength;

        public Publisher(FanoutRunner run, int index, Member connection, int room)
        {
            _run = run;
            _index = index;
            _connection = connection;
            _room = room;
            var o = run._o;
            var total = (o.Warmup + o.Duration).TotalSeconds * o.Rate / o.Publishers;
            _sentAt = new long[(int)Math.Ceiling(total) + 2];
            var prefix = Encoding.UTF8.GetBytes($"{{\"type\":\"publish\",\"room\":\"{Encoding.UTF8.GetString(run._roomNames[room])}\",\"id\":");
            _buffer = new byte[prefix.Length + o.Payload + 128];
            prefix.CopyTo(_buffer, 0);
            _prefixLength = prefix.Length;
        }

        public async Task RunAsync(CancellationToken ct)
        {
            var o = _run._o;
            var freq = Stopwatch.Frequency;
            var interval = freq * o.Publishers / o.Rate;
            var start = _run._epoch + (long)(freq * _index / o.Rate);
            var end = _run._epoch + _run._measureTo;
            var early = freq / 1000; // sends within 1 ms of their slot go now: timers are not finer
            var socket = _connection.Socket!;
            for (var n = 0; n < _sentAt.Length; n++)
            {
                var due = start + (long)(n * interval);
                if (due >= end)
                {
                    break;
                }

                var wait = due - Stopwatch.GetTimestamp();
                if (wait > early)
                {
                    await Task.Delay(TimeSpan.FromSeconds((double)(wait - early) / freq), ct);
                }

                var now = Stopwatch.GetTimestamp();
                _run._lateness.RecordTicks(Math.Max(0, now - due));
                var stamp = now - _run._epoch;
                var length = Write(n, stamp);
                _sentAt[n] = now;
                try
                {
                    await socket.SendAsync(_buffer.AsMemory(0, length), WebSocketMessageType.Text, true, ct);
                }
                catch (Exception ex) when (ex is WebSocketException or IOException or ObjectDisposedException or InvalidOperationException)
                {
                    _run._errors.AddOrUpdate("send failed: " + FrameLoop.Describe(ex), 1, (_, c) => c + 1);
                    Interlocked.Increment(ref _run._errorsAll);
                    return;
                }

                Interlocked.Increment(ref _run._publishedAll);
                if (_run.IsMeasured(stamp))
                {
                    Interlocked.Increment(ref _run._sentMeasured);
                    Interlocked.Add(ref _run._expected, _run._receivers[_room]);
                }
            }
        }

        /// <summary>{"type":"publish","room":"…","id":N+1,"data":{"p":P,"n":N,"t":T,"x":"…"}} with data of exactly Payload bytes when it fits.</summary>
        private int Write(int n, long stamp)
        {
            var span = _buffer.AsSpan();
            var pos = _prefixLength;
            Utf8Formatter.TryFormat(n + 1L, span[pos..], out var w);
            pos += w;
            pos += Put(span[pos..], ",\"data\":"u8);
            var dataStart = pos;
            pos += Put(span[pos..], "{\"p\":"u8);
            Utf8Formatter.TryFormat(_index, span[pos..], out w);
            pos += w;
            pos += Put(span[pos..], ",\"n\":"u8);
            Utf8Formatter.TryFormat(n, span[pos..], out w);
            pos += w;
            pos += Put(span[pos..], ",\"t\":"u8);
            Utf8Formatter.TryFormat(stamp, span[pos..], out w);
            pos += w;
            pos += Put(span[pos..], ",\"x\":\""u8);
            var pad = Math.Max(0, _run._o.Payload - (pos - dataStart) - 2);
            span.Slice(pos, pad).Fill((byte)'x');
            pos += pad;
            pos += Put(span[pos..], "\"}}"u8);
            return pos;
        }

        private static int Put(Span<byte> to, ReadOnlySpan<byte> bytes)
        {
            bytes.CopyTo(to);
            return bytes.Length;
        }

        public void OnAck(long id, long receivedAt)
        {
            var n = id - 1;
            if ((ulong)n < (ulong)_sentAt.Length && _sentAt[n] != 0)
            {
                _run._acks.RecordTicks(receivedAt - _sentAt[n]);
                if (_run.IsMeasured(_sentAt[n] - _run._epoch))
                {
                    Interlocked.Increment(ref _run._acked);
                }
            }
        }

        public void OnError(long id)
        {
            var n = id - 1;
            if ((ulong)n < (ulong)_sentAt.Length && _sentAt[n] != 0 && _run.IsMeasured(_sentAt[n] - _run._epoch))
            {
                Interlocked.Increment(ref _run._rejected);
                Interlocked.Add(ref _run._expected, -_run._receivers[_room]);
            }
        }
    }
}
