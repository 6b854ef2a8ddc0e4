using System.Diagnostics;
using Broker.Client;
using Broker.Cluster.Tests.Infrastructure;

namespace Broker.Cluster.Tests;

/// <summary>
/// The .NET client library (src/Client) on a two-front-end cluster with the Redis store (durable
/// acks): a front-end is SIGKILLed mid-stream and the library alone keeps the guarantees.
/// </summary>
public sealed class ClientLibraryTests(ITestOutputHelper output)
{
    private static readonly TimeSpan Limit = TimeSpan.FromSeconds(20);

    [Fact]
    public async Task SubscribersFrontendKilled_EveryAckedMessageOnceInOrder_NoReset_BackWithin10s()
    {
        // What the subscriber misses while it is away must fit the room's history window for
        // "no reset" to be the promise: the publisher is paced at ~100/s and the window holds
        // 1,000, the 10 s this test allows for the way back. (Unpaced, a durable publisher does
        // ~500/s since commits take one round trip: 100 messages in a 200 ms reconnect.)
        await using var cluster = await BrokerCluster.StartAsync(silos: 1, frontends: 2, durable: true, frontendSettings: ["--Broker:Namespaces:chat:History=1000"]);
        await cluster.GuardAsync(output, async () =>
        {
            var (fe1, fe2) = (cluster.Frontends[0], cluster.Frontends[1]);
            var room = Names.Unique("room");
            await using var subscriber = new BrokerClient([Chat(fe2), Chat(fe1)], new BrokerClientOptions { User = Names.Unique("sub") });
            await using var publisher = new BrokerClient([Chat(fe1), Chat(fe2)], new BrokerClientOptions { User = Names.Unique("pub") });
            var events = new Events();
            subscriber.StateChanged += (_, e) => events.Add(e.State.ToString());
            var subRoom = subscriber.Room(room);
            var received = new List<RoomMessage>();
            subRoom.MessageReceived += (_, m) =>
            {
                lock (received)
                {
                    received.Add(m);
                }

                events.Add("message");
            };
            subRoom.Reset += (_, r) => events.Add("reset " + r);
            await subRoom.JoinAsync();
            Assert.Equal(fe2.NodeId, subscriber.Node);
            var pubRoom = publisher.Room(room);
            await pubRoom.JoinAsync();

            var acks = new List<(int Data, long Seq)>();
            using var stop = new CancellationTokenSource();
            var publishing = Task.Run(async () =>
            {
                using var pace = new PeriodicTimer(TimeSpan.FromMilliseconds(10));
                for (var i = 1; !stop.IsCancellationRequested && await pace.WaitForNextTickAsync(); i++)
                {
                    var ack = await pubRoom.PublishAsync(i);
                    lock (acks)
                    {
                        acks.Add((i, ack.Seq));
                    }

                    events.Add("ack");
                }
            });

            await events.WaitAsync(() => Count(received) >= 30, Limit, "30 messages before the kill");
            var killedAt = Stopwatch.GetTimestamp();
            fe2.Kill();
            await events.WaitAsync(() => events.Count("Connected") >= 2, Limit, "the subscriber connected again");
            var back = Stopwatch.GetElapsedTime(killedAt);
            Assert.Equal(fe1.NodeId, subscriber.Node);
            var ackedSoFar = Count(acks);
            await events.WaitAsync(() => Count(acks) >= ackedSoFar + 30, Limit, "30 more acks after the reconnect");
            await stop.CancelAsync();
            await publishing.WaitAsync(Limit);

            var acked = Snapshot(acks);

            // A last message: anything delivered twice would come before it (per-room order).
            var end = await pubRoom.PublishAsync(-1);
            await events.WaitAsync(() => Snapshot(received).Any(m => m.Seq == end.Seq), Limit, "every acked message at the subscriber");
            var got = Snapshot(received)[..^1];
            output.WriteLine($"{acked.Count} acked, {got.Count} received; subscriber connected again {back.TotalMilliseconds:0} ms after the SIGKILL");

            Assert.Equal(acked.Select(a => a.Seq), got.Select(m => m.Seq));
            Assert.Equal(acked.Select(a => a.Data), got.Select(m => m.Data.GetInt32()));
            Assert.Equal(Enumerable.Range(1, acked.Count).Select(i => (long)i), got.Select(m => m.Seq));
            Assert.DoesNotContain(events.All, e => e.StartsWith("reset", StringComparison.Ordinal));
            Assert.True(back < TimeSpan.FromSeconds(10), $"the subscriber was back {back} after the kill (limit 10 s)");
        });
    }

    [Fact]
    public async Task PublishersFrontendKilled_EveryPublishAckedExactlyOnce()
    {
        await using var cluster = await BrokerCluster.StartAsync(silos: 1, frontends: 2, durable: true);
        await cluster.GuardAsync(output, async () =>
        {
            var (fe1, fe2) = (cluster.Frontends[0], cluster.Frontends[1]);
            var room = Names.Unique("room");
            await using var publisher = new BrokerClient([Chat(fe1), Chat(fe2)], new BrokerClientOptions { User = Names.Unique("pub") });
            await using var subscriber = new BrokerClient([Chat(fe2)], new BrokerClientOptions { User = Names.Unique("sub") });
            var events = new Events();
            var subRoom = subscriber.Room(room);
            var received = new List<RoomMessage>();
            subRoom.MessageReceived += (_, m) =>
            {
                lock (received)
                {
                    received.Add(m);
                }

                events.Add("message");
            };
            await subRoom.JoinAsync();
            var pubRoom = publisher.Room(room);
            await pubRoom.JoinAsync();
            Assert.Equal(fe1.NodeId, publisher.Node);

            // A steady stream, twenty publishes queued at any time (the client sends them in order,
            // one after the other), so that some are in flight when the front-end dies.
            var publishes = new List<Task<PublishAck>>();
            using var stop = new CancellationTokenSource();
            var publishing = Task.Run(async () =>
            {
                using var window = new SemaphoreSlim(20);
                for (var i = 1; !stop.IsCancellationRequested; i++)
                {
                    await window.WaitAsync();
                    var publish = pubRoom.PublishAsync(i);
                    lock (publishes)
                    {
                        publishes.Add(publish);
                    }

                    _ = publish.ContinueWith(_ =>
                    {
                        window.Release();
                        events.Add("ack");
                    }, TaskScheduler.Default);
                }
            });

            await events.WaitAsync(() => events.Count("ack") >= 200, Limit, "200 acks before the kill");
            fe1.Kill();
            var ackedAtKill = events.Count("ack");
            await events.WaitAsync(() => events.Count("ack") >= ackedAtKill + 200, Limit, "200 more acks after the kill");
            Assert.Equal(fe2.NodeId, publisher.Node);
            await stop.CancelAsync();
            await publishing.WaitAsync(Limit);
            await Task.WhenAll(Snapshot(publishes)).WaitAsync(Limit);

            var acks = Snapshot(publishes).Select(p => p.Result).ToList();

            // A last message: anything delivered twice would come before it (per-room order).
            var end = await pubRoom.PublishAsync(-1);
            await events.WaitAsync(() => Snapshot(received).Any(m => m.Seq == end.Seq), Limit, "every message at the subscriber");
            var got = Snapshot(received)[..^1];
            output.WriteLine($"{acks.Count} publishes acked; {got.Count} received");

            Assert.Equal(Enumerable.Range(1, acks.Count).Select(i => (long)i), acks.Select(a => a.Seq));
            Assert.Equal(acks.Count, acks.Select(a => a.MsgId).Distinct().Count());
            Assert.Equal(Enumerable.Range(1, acks.Count), got.Select(m => m.Data.GetInt32()));
            Assert.Equal(acks.Select(a => a.Seq), got.Select(m => m.Seq));
        });
    }

    private static Uri Chat(FrontendProcess frontend) => new(frontend.WsBase, "chat");

    private static int Count<T>(List<T> list)
    {
        lock (list)
        {
            return list.Count;
        }
    }

    private static List<T> Snapshot<T>(List<T> list)
    {
        lock (list)
        {
            return [.. list];
        }
    }

    /// <summary>Everything the clients raised, and a wait (with a timeout) for a condition over it.</summary>
    private sealed class Events
    {
        private readonly List<string> _all = [];
        private TaskCompletionSource _changed = new(TaskCreationOptions.RunContinuationsAsynchronously);

        public IReadOnlyList<string> All
        {
            get
            {
                lock (_all)
                {
                    return [.. _all];
                }
            }
        }

        public int Count(string e)
        {
            lock (_all)
            {
                return _all.Count(x => x == e);
            }
        }

        public void Add(string e)
        {
            TaskCompletionSource changed;
            lock (_all)
            {
                _all.Add(e);
                changed = _changed;
                _changed = new(TaskCreationOptions.RunContinuationsAsynchronously);
            }

            changed.TrySetResult();
        }

        public async Task WaitAsync(Func<bool> condition, TimeSpan timeout, string what)
        {
            var deadline = Stopwatch.GetTimestamp() + (long)(timeout.TotalSeconds * Stopwatch.Frequency);
            while (true)
            {
                Task changed;
                lock (_all)
                {
                    changed = _changed.Task;
                }

                if (condition())
                {
                    return;
                }

                var left = TimeSpan.FromSeconds((double)(deadline - Stopwatch.GetTimestamp()) / Stopwatch.Frequency);
                if (left <= TimeSpan.Zero)
                {
                    throw new TimeoutException($"Not within {timeout}: {what}. Last events: {string.Join(", ", All.TakeLast(8))}");
                }

                try
                {
                    await changed.WaitAsync(left);
                }
                catch (TimeoutException)
                {
                }
            }
        }
    }
}
