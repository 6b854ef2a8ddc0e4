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
    private static long s_streamOutboxItems;

    private static readonly Counter<long> Commits = Meter.CreateCounter<long>("broker.room.commits", "{message}", "Messages committed by rooms on this silo.");
    private static readonly Counter<long> Fanout = Meter.CreateCounter<long>("broker.room.fanout", "{delivery}", "Deliveries from rooms on this silo to front-ends (a room's events for one front-end); several rooms' may share a call.");
    private static readonly Counter<long> FrontendCalls = Meter.CreateCounter<long>("broker.frontend.calls", "{call}", "Calls from this silo to front-ends carrying room deliveries (one or more rooms' each).");
    private static readonly Histogram<double> CommitDuration = Meter.CreateHistogram(
        "broker.room.commit.duration",
        "s",
        "Publish arriving at the room to committed, the store's write included.",
        tags: null,
        advice: new InstrumentAdvice<double>
        {
            HistogramBucketBoundaries = [0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10],
        });

    private static readonly Counter<long> StreamProduced = Meter.CreateCounter<long>("broker.stream.items.produced", "{item}", "Items rooms on this silo produced to their Orleans streams (docs/streams.md).");
    private static readonly Counter<long> StreamDropped = Meter.CreateCounter<long>("broker.stream.items.dropped", "{item}", "Items rooms on this silo dropped instead of producing them to their streams.");

    private static readonly KeyValuePair<string, object?> KindMessage = new("kind", "message");
    private static readonly KeyValuePair<string, object?> KindMemberJoined = new("kind", "member_joined");
    private static readonly KeyValuePair<string, object?> KindMemberLeft = new("kind", "member_left");

    static SiloMetrics()
    {
        Meter.CreateObservableUpDownCounter("broker.stream.outbox.items", () => Interlocked.Read(ref s_streamOutboxItems), "{item}", "Items waiting in rooms' stream outboxes on this silo.");
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

    /// <summary>One call to a front-end left this silo with room deliveries (FrontendLanes).</summary>
    public static void FrontendCall() => FrontendCalls.Add(1);

    /// <summary>Items produced to room streams, by kind: one call per produced batch and kind.</summary>
    public static void StreamItemsProduced(int messages, int joined, int left)
    {
        if (!StreamProduced.Enabled)
        {
            return;
        }

        if (messages > 0)
        {
            StreamProduced.Add(messages, KindMessage);
        }

        if (joined > 0)
        {
            StreamProduced.Add(joined, KindMemberJoined);
        }

        if (left > 0)
        {
            StreamProduced.Add(left, KindMemberLeft);
        }
    }

    /// <summary>
    /// Items a room's stream outbox dropped: <paramref name="reason"/> is <c>full</c> (the outbox
    /// was at its bound), <c>failed</c> (producing kept failing) or <c>too_large</c> (one item
    /// larger than a stream message may be).
    /// </summary>
    public static void StreamItemsDropped(string reason, int items) =>
        StreamDropped.Add(items, new KeyValuePair<string, object?>("reason", reason));

    /// <summary>Items entering (positive) or leaving (negative) rooms' stream outboxes.</summary>
    public static void StreamOutboxChanged(int items) => Interlocked.Add(ref s_streamOutboxItems, items);
}
