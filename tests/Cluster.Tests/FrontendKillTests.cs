using System.Diagnostics;
using Broker.Cluster.Tests.Infrastructure;

namespace Broker.Cluster.Tests;

/// <summary>
/// A front-end dies (SIGKILL): rooms drop its members, the others get member_left within 10 s,
/// presence stops listing them, and the dead front-end never delays delivery to healthy ones.
/// </summary>
public sealed class FrontendKillTests(ITestOutputHelper output)
{
    private static readonly TimeSpan StallLimit = TimeSpan.FromSeconds(2);

    [Fact]
    public async Task KillFrontend_Sigkill_MemberLeftWithin10sAndPublishingNeverStalls()
    {
        await using var cluster = await BrokerCluster.StartAsync(silos: 1, frontends: 2);
        await cluster.GuardAsync(output, async () =>
        {
            var (feA, feB) = (cluster.Frontends[0], cluster.Frontends[1]);
            var room = Names.Unique("room");
            await using var publisher = await WsClient.ConnectAsync(feA.WsBase, Names.Unique("alice"));
            await using var watcher = await WsClient.ConnectAsync(feA.WsBase, Names.Unique("ann"));
            await using var doomed = await WsClient.ConnectAsync(feB.WsBase, Names.Unique("bob"));
            await publisher.JoinAsync(room);
            await watcher.JoinAsync(room);
            await doomed.JoinAsync(room);
            await publisher.WaitForMemberEventAsync("member_joined", room, doomed.User);

            // Messages are flowing to fe-2 before it dies.
            await publisher.PublishAsync(room, "before");
            await doomed.WaitForMessageAsync(room, "before");

            var loop = PublishLoop.Start(publisher, room, "p", TimeSpan.FromMilliseconds(50), TimeSpan.FromSeconds(8));
            await loop.WaitUntilAsync(o => o.Count(x => x.IsAck) >= 10, TimeSpan.FromSeconds(10));

            var killedAt = Stopwatch.GetTimestamp();
            feB.Kill();
            var left = await publisher.WaitForMemberEventAsync("member_left", room, doomed.User, TimeSpan.FromSeconds(30));
            var memberLeftAfter = Ms.Between(killedAt, left.At);
            var presence = await watcher.PresentUsersAsync(room);

            // Keep publishing a little past member_left, then stop.
            var afterLeft = loop.Outcomes.Count;
            await loop.WaitUntilAsync(o => o.Count >= afterLeft + 20, TimeSpan.FromSeconds(10));
            var outcomes = await loop.StopAsync();

            var during = outcomes.Where(o => o.SentAt >= killedAt).ToList();
            var worst = outcomes.Max(o => o.Latency);
            var worstDuring = during.Max(o => o.Latency);
            output.WriteLine($"member_left {Ms.Format(memberLeftAfter)} after SIGKILL of {feB.Name}");
            output.WriteLine($"publishes: {outcomes.Count} in all, {during.Count} after the kill; worst ack latency {Ms.Format(worst)} " +
                             $"(after the kill {Ms.Format(worstDuring)}, median {Ms.Format(during.Select(o => o.Latency).Order().ElementAt(during.Count / 2))})");

            Assert.True(memberLeftAfter < TimeSpan.FromSeconds(10), $"member_left came {Ms.Format(memberLeftAfter)} after the kill (limit 10 s).");
            Assert.DoesNotContain(doomed.User, presence);
            Assert.Contains(publisher.User, presence);
            Assert.All(outcomes, o => Assert.True(o.IsAck, $"publish {o} was not acked"));
            // A stall is what the lease TTL (6 s) or a call timeout (5 s) would cost; the kill itself
            // costs 0.8-1.05 s on a loaded 2-core box (three test assemblies at once), not yet
            // explained: the limit is 2 s so that it still catches the former.
            Assert.True(worst < StallLimit, $"a publish waited {Ms.Format(worst)} for its ack while fe-2 died (limit {Ms.Format(StallLimit)}).");

            // The healthy member on fe-1 received every acked message, in seq order, none twice.
            var lastData = outcomes[^1].Data;
            await watcher.WaitForMessageAsync(room, lastData);
            var received = watcher.Messages(room);
            Assert.Equal(received.Select(m => m.Seq).Order(), received.Select(m => m.Seq));
            Assert.Equal(received.Count, received.Select(m => m.Seq).Distinct().Count());
            Assert.Superset(outcomes.Select(o => o.Data).ToHashSet(), received.Select(m => m.DataString).ToHashSet());

            // Delivery latency to the healthy member: no gap either.
            var deliveryGaps = received.Zip(received.Skip(1), (x, y) => Ms.Between(x.At, y.At)).ToList();
            var worstGap = deliveryGaps.Count == 0 ? TimeSpan.Zero : deliveryGaps.Max();
            output.WriteLine($"largest gap between two deliveries to the fe-1 watcher: {Ms.Format(worstGap)}");
            Assert.True(worstGap < StallLimit, $"deliveries to a healthy member stalled {Ms.Format(worstGap)} (limit {Ms.Format(StallLimit)}).");

            Assert.True(publisher.IsOpen && watcher.IsOpen, "A client on the healthy front-end was disconnected.");
        });
    }
}
