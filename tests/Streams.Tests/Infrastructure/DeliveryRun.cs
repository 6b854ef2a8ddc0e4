using System.Text;
using Broker.Grains.Streams;
using Orleans.Streams;

namespace Broker.Streams.Tests.Infrastructure;

/// <summary>
/// Numbered items produced to several room streams by a client, one after another per room
/// (each awaited, as a room produces), and what the recorder grains heard of them.
/// </summary>
public sealed class DeliveryRun(IClusterClient client, int rooms, TimeSpan interval, bool subscribeExplicitly = false)
{
    private readonly CancellationTokenSource _stop = new();
    private readonly List<Task> _loops = [];

    public IReadOnlyList<string> Rooms { get; } = [.. Enumerable.Range(0, rooms).Select(i => $"r{i}-{Guid.NewGuid():N}")];

    public Dictionary<string, List<Produced>> Produced { get; } = [];

    /// <summary>
    /// With <c>subscribeExplicitly</c>, the client subscribes to each room's stream itself (for
    /// silos that do not host the recorder grain: processes of src/Silo).
    /// </summary>
    public async Task SubscribeAsync()
    {
        if (!subscribeExplicitly)
        {
            return;
        }

        var provider = client.GetStreamProvider(BrokerStreams.ProviderName);
        foreach (var room in Rooms)
        {
            await provider.GetStream<RoomStreamItem>(BrokerStreams.RoomStream(StreamRecorder.Namespace, room)).SubscribeAsync((item, _) =>
            {
                StreamRecorder.Record(item, "client");
                return Task.CompletedTask;
            });
        }
    }

    public void Start()
    {
        foreach (var room in Rooms)
        {
            var log = new List<Produced>();
            Produced[room] = log;
            _loops.Add(Task.Run(() => ProduceAsync(room, log)));
        }
    }

    public async Task StopAsync()
    {
        await _stop.CancelAsync();
        await Task.WhenAll(_loops);
    }

    /// <summary>Every room has heard at least this many items produced at or after <paramref name="since"/>.</summary>
    public bool EveryRoomHeard(int count, DateTime since) => Rooms.All(room =>
    {
        List<Produced> produced;
        lock (Produced[room])
        {
            produced = [.. Produced[room]];
        }

        var after = produced.Where(p => p.Start >= since).Select(p => p.Seq).ToHashSet();
        return StreamRecorder.Room(room).Select(d => d.Seq).Distinct().Count(after.Contains) >= count;
    });

    /// <summary>Every room has heard its last item whose production succeeded (once producers stopped).</summary>
    public bool EveryRoomHeardItsLast() => Rooms.All(room =>
    {
        var last = Produced[room].LastOrDefault(p => p.Ok);
        return last is null || StreamRecorder.Room(room).Any(d => d.Seq == last.Seq);
    });

    public DeliveryReport Report(DateTime killedAt)
    {
        var report = new DeliveryReport();
        var pauses = new List<TimeSpan>();
        foreach (var room in Rooms)
        {
            var produced = Produced[room];
            var heard = StreamRecorder.Room(room);
            var seqs = heard.Select(d => d.Seq).ToHashSet();
            var ok = produced.Where(p => p.Ok).ToList();
            var lost = ok.Count(p => !seqs.Contains(p.Seq));
            report.Produced += ok.Count;
            report.Failed += produced.Count - ok.Count;
            report.FailedButHeard += produced.Count(p => !p.Ok && seqs.Contains(p.Seq));
            report.Lost += lost;
            report.RoomsWithLoss += lost > 0 ? 1 : 0;
            report.Duplicates += heard.Count - seqs.Count;
            report.Heard += heard.Count;
            // A first hearing of a seq below one already heard (a repeat is a duplicate, not a reorder).
            var highest = long.MinValue;
            var seen = new HashSet<long>();
            foreach (var d in heard)
            {
                if (seen.Add(d.Seq) && d.Seq < highest)
                {
                    report.Reordered++;
                }

                highest = Math.Max(highest, d.Seq);
            }

            // The longest silence of the room's subscriber that ended after the kill.
            var pause = TimeSpan.Zero;
            for (var i = 1; i < heard.Count; i++)
            {
                if (heard[i].At > killedAt)
                {
                    var gap = heard[i].At - (heard[i - 1].At > killedAt ? heard[i - 1].At : killedAt);
                    pause = gap > pause ? gap : pause;
                }
            }

            pauses.Add(pause);
            var slowest = produced.Where(p => p.End > killedAt).Select(p => p.End - p.Start).DefaultIfEmpty().Max();
            report.SlowestProduce = slowest > report.SlowestProduce ? slowest : report.SlowestProduce;
        }

        pauses.Sort();
        report.MedianPause = pauses[pauses.Count / 2];
        report.MaxPause = pauses[^1];
        return report;
    }

    private async Task ProduceAsync(string room, List<Produced> log)
    {
        var stream = client.GetStreamProvider(BrokerStreams.ProviderName)
            .GetStream<RoomStreamItem>(BrokerStreams.RoomStream(StreamRecorder.Namespace, room));
        for (long seq = 1; !_stop.IsCancellationRequested; seq++)
        {
            var item = new RoomStreamItem(
                RoomStreamItemKind.Message, StreamRecorder.Namespace, room, "e1", seq, "server:test",
                DateTimeOffset.UtcNow.ToUnixTimeMilliseconds(), Encoding.UTF8.GetBytes($"{{\"n\":{seq}}}"));
            var start = DateTime.UtcNow;
            string? error = null;
            try
            {
                await stream.OnNextAsync(item);
            }
            catch (Exception ex)
            {
                error = ex.GetType().Name;
            }

            lock (log)
            {
                log.Add(new Produced(seq, start, DateTime.UtcNow, error is null, error));
            }

            try
            {
                // Pacing, not synchronisation: one item per interval per room.
                await Task.Delay(interval, _stop.Token);
            }
            catch (OperationCanceledException)
            {
                break;
            }
        }
    }
}

public sealed record Produced(long Seq, DateTime Start, DateTime End, bool Ok, string? Error);

public sealed class DeliveryReport
{
    public int Produced { get; set; }

    public int Failed { get; set; }

    public int FailedButHeard { get; set; }

    public int Heard { get; set; }

    public int Lost { get; set; }

    public int RoomsWithLoss { get; set; }

    public int Duplicates { get; set; }

    public int Reordered { get; set; }

    public TimeSpan MedianPause { get; set; }

    public TimeSpan MaxPause { get; set; }

    public TimeSpan SlowestProduce { get; set; }

    public override string ToString() =>
        $"produced (acked) {Produced}, produce failed {Failed} (of which heard {FailedButHeard}), heard {Heard}, " +
        $"lost {Lost} in {RoomsWithLoss} rooms, duplicates {Duplicates}, reordered {Reordered}, " +
        $"pause after kill: median {MedianPause.TotalSeconds:F1} s, max {MaxPause.TotalSeconds:F1} s, slowest produce after kill {SlowestProduce.TotalSeconds:F1} s";
}
