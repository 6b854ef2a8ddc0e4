using System.Diagnostics;
using System.Diagnostics.Metrics;

namespace Broker.Grains.Diagnostics;

/// <summary>
/// The silo's instruments on the <c>Broker</c> meter (docs/operations.md, "Metrics"): rooms and
/// users active on this silo, messages committed, commit duration, and delivery calls to
/// front-ends. One static meter per process; the counts are per process (an embedded
/// front-end's co-hosted silo reports here too). Calls are once per publish or per delivery
/// call, never per member.
/// </summary>
public static class SiloMetrics
{
    public const string MeterName = "Broker";

    private static readonly Meter Meter = new(MeterName);

    private static long s_rooms;
    private static long s_users;

    private static readonly Counter<long> Commits = Meter.CreateCounter<long>("broker.room.commits", "{message}", "Messages committed by rooms on this silo.");
    private static readonly Counter<long> Fanout = Meter.CreateCounter<long>("broker.room.fanout", "{call}", "Delivery calls from rooms on this silo to front-ends.");
    private static readonly Histogram<double> CommitDuration = Meter.CreateHistogram(
        "broker.room.commit.duration",
        "s",
        "Publish arriving at the room to committed, the store's write included.",
        tags: null,
        advice: new InstrumentAdvice<double>
        {
            HistogramBucketBoundaries = [0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10],
        });

    static SiloMetrics()
    {
        Meter.CreateObservableUpDownCounter("broker.rooms.active", () => Interlocked.Read(ref s_rooms), "{room}", "Room grain activations on this silo.");
        Meter.CreateObservableUpDownCounter("broker.users.active", () => Interlocked.Read(ref s_users), "{user}", "User grain activations on this silo.");
    }

    /// <summary>Creates the instruments now, so that the gauges read 0 before the first activation.</summary>
    public static void EnsureCreated()
    {
        // The static constructor has run by now.
    }

    public static void RoomActivated() => Interlocked.Increment(ref s_rooms);

    public static void RoomDeactivated() => Interlocked.Decrement(ref s_rooms);

    public static void UserActivated() => Interlocked.Increment(ref s_users);

    public static void UserDeactivated() => Interlocked.Decrement(ref s_users);

    /// <summary>Messages committed by a room of <paramref name="ns"/>.</summary>
    public static void Committed(string ns, int messages) =>
        Commits.Add(messages, new KeyValuePair<string, object?>("namespace", ns));

    /// <summary>One publish committed: from <paramref name="started"/> (a <see cref="Stopwatch"/> timestamp) to now.</summary>
    public static void CommitTook(bool durable, long started)
    {
        if (CommitDuration.Enabled)
        {
            CommitDuration.Record(Stopwatch.GetElapsedTime(started).TotalSeconds, new KeyValuePair<string, object?>("store", durable ? "redis" : "memory"));
        }
    }

    /// <summary>One delivery call from a room to a front-end.</summary>
    public static void FanoutCall() => Fanout.Add(1);
}
