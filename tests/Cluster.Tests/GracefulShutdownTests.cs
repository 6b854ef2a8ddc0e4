using System.Diagnostics;
using System.Globalization;
using Broker.Cluster.Tests.Infrastructure;

namespace Broker.Cluster.Tests;

/// <summary>
/// A front-end is stopped gracefully (SIGTERM) while a publisher on the other one publishes: its
/// clients get 1012, reconnect to the other front-end, re-join with since+epoch, are answered
/// recovered:true, and in the end have every acked message exactly once, in order.
/// </summary>
public sealed class GracefulShutdownTests(ITestOutputHelper output)
{
    private const int Members = 4;

    /// <summary>The clients' reconnect backoff: they miss ~15 messages, which the re-join must replay.</summary>
    private static readonly TimeSpan ReconnectDelay = TimeSpan.FromMilliseconds(300);

    [Fact]
    public async Task TerminateFrontend_PublishingOnOther_ClientsGet1012RecoverElsewhereAndMissNothing()
    {
        await using var cluster = await BrokerCluster.StartAsync(silos: 1, frontends: 2);
        var clients = new List<RecoveringClient>();
        RetryingPublisher? publisher = null;
        try
        {
            await cluster.GuardAsync(output, async () =>
            {
                var (survivor, stopping) = (cluster.Frontends[0], cluster.Frontends[1]);
                IReadOnlyList<FrontendProcess> Frontends() => cluster.Frontends;
                var room = Names.Unique("graceful");
                var other = Names.Unique("graceful-b");

                // Members on fe-2 (some in two rooms), one on fe-1, and the publisher on fe-1.
                var onStopping = new List<RecoveringClient>();
                for (var i = 0; i < Members; i++)
                {
                    var client = await RecoveringClient.StartAsync(Names.Unique("m" + i.ToString(CultureInfo.InvariantCulture)), stopping, i % 2 == 0 ? [room] : [room, other], Frontends, ReconnectDelay);
                    clients.Add(client);
                    onStopping.Add(client);
                }

                var stayer = await RecoveringClient.StartAsync(Names.Unique("stay"), survivor, [room], Frontends);
                clients.Add(stayer);
                var publisherClient = await RecoveringClient.StartAsync(Names.Unique("pub"), survivor, [room], Frontends);
                clients.Add(publisherClient);
                publisher = RetryingPublisher.Start(publisherClient, room, "g", TimeSpan.FromMilliseconds(20), TimeSpan.FromSeconds(8));
                await publisher.WaitUntilAsync(a => a.Count >= 20, TimeSpan.FromSeconds(10));

                var terminatedAt = Stopwatch.GetTimestamp();
                await stopping.SignalAsync("TERM");
                var exit = stopping.WaitForExitAsync(TimeSpan.FromSeconds(30)).ContinueWith(t => (t.Result, Stopwatch.GetTimestamp()), TaskScheduler.Default);

                // Every client of fe-2 re-joined its rooms on fe-1 (bounded polling) …
                var clock = Stopwatch.StartNew();
                while (onStopping.Any(c => c.Rejoins.Count < c.Rooms.Count && c.Problems.Count == 0))
                {
                    Assert.True(clock.Elapsed < TimeSpan.FromSeconds(20),
                        "Not every client of the stopped front-end re-joined within 20 s: " +
                        string.Join("; ", onStopping.Select(c => $"{c.User} {c.Rejoins.Count}/{c.Rooms.Count}")));
                    await Task.Delay(20);
                }

                // … and 20 more messages are acked after that; fe-2 exits.
                var rejoinedAt = Stopwatch.GetTimestamp();
                var (exited, exitedAt) = await exit;
                await publisher.WaitUntilAsync(a => a.Count(x => x.FirstSentAt > rejoinedAt) >= 20, TimeSpan.FromSeconds(10));
                await publisher.StopAsync(TimeSpan.FromSeconds(20));
                var lastAcked = new Dictionary<string, long> { [room] = publisher.Acks.Max(a => a.Seq) };
                var missing = await DeliveryAudit.WaitForLastAckedAsync(clients, lastAcked, TimeSpan.FromSeconds(10));
                await Task.WhenAll(clients.Select(c => c.StopWatchingAsync()));
                var audit = DeliveryAudit.Of(clients, [publisher]);

                output.WriteLine($"{stopping.Name} got SIGTERM; all its clients re-joined on {survivor.Name} {Ms.Format(Ms.Between(terminatedAt, rejoinedAt))} later (by polling); " +
                                 (exited ? $"it exited {Ms.Format(Ms.Between(terminatedAt, exitedAt))} after the SIGTERM" : "it had not exited 30 s later"));
                output.WriteLine(stopping.Tail(25));
                foreach (var client in onStopping)
                {
                    var end = client.Ends.FirstOrDefault();
                    output.WriteLine($"  {client.User}: closed with {(end.Status is { } s ? ((int)s).ToString(CultureInfo.InvariantCulture) : "nothing (broken)")} " +
                                     $"{Ms.Format(Ms.Between(terminatedAt, end.At))} after the SIGTERM; " + string.Join(" | ", client.Rejoins));
                }

                var worst = publisher.Acks.MaxBy(a => a.Latency)!;
                output.WriteLine($"publisher: {publisher.Acks.Count} acked, {publisher.Retries.Count} retries, worst time to ack {Ms.Format(worst.Latency)}");
                output.WriteLine(audit.Report);
                output.WriteLine(audit.Summary);

                var problems = new List<string>();
                problems.AddRange(missing);
                problems.AddRange(audit.Problems);
                problems.AddRange(clients.SelectMany(c => c.Problems));
                problems.AddRange(publisher.Problems);
                foreach (var client in onStopping)
                {
                    var ends = client.Ends;
                    if (ends.Count == 0 || ends[0].Status != (System.Net.WebSockets.WebSocketCloseStatus)1012)
                    {
                        problems.Add($"{client.User}: expected close 1012 from {stopping.Name}, got {(ends.Count == 0 ? "no close" : ends[0].Status?.ToString() ?? "a broken connection")}.");
                    }

                    if (client.Connections.Count < 2 || client.Connections[^1].Node != survivor.NodeId)
                    {
                        problems.Add($"{client.User}: did not move to {survivor.NodeId}.");
                    }
                }

                problems.AddRange(new[] { stayer, publisherClient }.Where(c => c.Ends.Count > 0).Select(c => $"{c.User} on {survivor.NodeId} was disconnected."));
                problems.AddRange(publisher.Retries.Select(r => $"publish retried although no node it used went away: {r}"));
                problems.AddRange(onStopping.Where(c => c.Rejoins.Where(r => r.Room == room).Sum(r => r.Replayed) == 0)
                    .Select(c => $"{c.User}: nothing replayed in {room} although it was away {Ms.Format(ReconnectDelay)} while messages were published."));
                Assert.True(exited, $"{stopping.Name} did not exit within 30 s of SIGTERM.");
                Assert.True(problems.Count == 0 && audit.Clean, audit.Summary + "\n" + string.Join("\n", problems.Take(60)));
            });
        }
        finally
        {
            if (publisher is not null)
            {
                try
                {
                    await publisher.StopAsync(TimeSpan.FromSeconds(5));
                }
                catch (Exception ex) when (ex is TimeoutException or InvalidOperationException)
                {
                    // Disposal goes on.
                }
            }

            await Task.WhenAll(clients.Select(c => c.DisposeAsync().AsTask()));
        }
    }
}
