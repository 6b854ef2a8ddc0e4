using System.Diagnostics;
using Broker.Frontend.Connections;
using Broker.Frontend.Diagnostics;
using Broker.Frontend.Hosting;
using Broker.Frontend.Options;
using Broker.Frontend.Tests.Infrastructure;
using Broker.Grains;

namespace Broker.Frontend.Tests.Robustness;

/// <summary>
/// Everything queued for one socket, pushes and replies, counts against Broker:OutboxBytes as
/// well as Broker:OutboxFrames (protocol.md "Bounds"). Asserted through the connection's own
/// accounting (QueuedBytes), never memory or timing.
/// </summary>
public sealed class OutboxBudgetTests
{
    private static readonly TimeSpan Timeout = TimeSpan.FromSeconds(20);

    [Fact]
    public async Task Publish_MemberNeverReads_Closed1013ByOutboxBytesLongBeforeOutboxFrames()
    {
        const long outboxBytes = 256 * 1024;
        const int maxMessages = 400; // 24 MB: far past the kernel's buffers plus 256 KiB, far short of them plus 1024 frames
        await using var server = await BrokerServer.StartAsync(new Dictionary<string, string?>
        {
            ["Broker:OutboxBytes"] = outboxBytes.ToString(System.Globalization.CultureInfo.InvariantCulture),
            ["Broker:CloseTimeout"] = "00:00:30",
        });
        var room = BrokerFixture.UniqueRoom("bytes");
        using var slow = await RawWebSocket.ConnectAsync(server.HttpBase, "/chat?user=slow-bytes");
        await slow.SendTextFramesAsync([$$"""{"type":"join","id":1,"room":"{{room}}"}"""]);
        await Eventually.WaitUntilAsync(() => server.Node.Rooms.Get(GrainKeys.Of("chat", room)).Length == 1, Timeout, "the slow member's join");
        var connection = ConnectionOf(server, "slow-bytes");

        var padding = new string('x', 60 * 1024);
        long mostQueued = 0;
        var sent = 0;
        while (!connection.IsClosing && sent < maxMessages)
        {
            await server.PublishAsync(room, new { n = sent++, padding });
            mostQueued = Math.Max(mostQueued, connection.QueuedBytes);
        }

        // Deliveries follow the acks on their own time: the close may come after the last ack.
        var clock = Stopwatch.StartNew();
        while (!connection.IsClosing)
        {
            mostQueued = Math.Max(mostQueued, connection.QueuedBytes);
            Assert.True(clock.Elapsed < Timeout, $"The member that never reads is still open after {sent} messages of 60 KB; {connection.QueuedFrames} frames, {connection.QueuedBytes} bytes queued.");
            await Task.Delay(10); // nothing raises an event for a close the server decides
        }

        Assert.Equal(Frame.TryAgainLater, connection.CloseStatus);
        Assert.InRange(mostQueued, 0, outboxBytes);
        var events = server.Services.GetRequiredService<ClientEventLog>();
        await Eventually.WaitUntilAsync(() => events.Total(ClientEvent.SlowConsumer) == 1, Timeout, "the slow consumer to be counted");
    }

    [Fact]
    public async Task History_NeverReadingClientFloodsRequests_OutboxHeldToTheBudgetAndEveryReplyArrivesOnRead()
    {
        const int messages = 100;
        const int requests = 40;
        await using var server = await BrokerServer.StartAsync();
        var room = BrokerFixture.UniqueRoom("amplify");

        // 100 messages of 20 KB: every history reply is ~2 MB, twice the default byte budget.
        var padding = new string('h', 20 * 1024);
        for (var n = 0; n < messages; n++)
        {
            await server.PublishAsync(room, new { n, padding });
        }

        using var attacker = await RawWebSocket.ConnectAsync(server.HttpBase, "/chat?user=amplifier");
        await attacker.SendTextFramesAsync(
            [$$"""{"type":"join","id":"j","room":"{{room}}"}""", .. Enumerable.Range(1, requests).Select(id => $$"""{"type":"history","id":{{id}},"room":"{{room}}"}""")]);
        await Eventually.WaitUntilAsync(() => server.Node.ConnectionCount == 1, Timeout, "the attacker's connection to register");
        var connection = ConnectionOf(server, "amplifier");

        // The receive loop stops taking requests once the outbox is full: nothing more is
        // fetched, built or queued until the client reads.
        await Eventually.WaitUntilAsync(() => connection.IsWaitingForRoom || connection.QueuedFrames > 1, Timeout, "the receive loop to wait for outbox room");
        var queuedBytes = connection.QueuedBytes;
        var queuedFrames = connection.QueuedFrames;
        Assert.True(
            queuedBytes <= BrokerOptions.DefaultOutboxBytes || queuedFrames == 1,
            $"{queuedFrames} frames, {queuedBytes} bytes queued for a client that does not read; the budget is {BrokerOptions.DefaultOutboxBytes} bytes (or one frame).");
        Assert.False(connection.IsClosing, "A client's own replies must slow it down, not close it.");

        // Backpressure loses nothing: once the client reads, every request is answered, in order.
        var clock = Stopwatch.StartNew();
        var historyIds = new List<int>();
        while (historyIds.Count < requests)
        {
            var left = Timeout - clock.Elapsed;
            Assert.True(left > TimeSpan.Zero, $"Only {historyIds.Count} of {requests} history replies within {Timeout}.");
            var text = await attacker.ReadTextAsync(left);
            Assert.True(text is not null, $"Closed with {attacker.CloseStatus} after {historyIds.Count} history replies.");
            if (text.StartsWith("{\"type\":\"history\"", StringComparison.Ordinal))
            {
                var id = text.AsSpan(text.IndexOf("\"id\":", StringComparison.Ordinal) + 5);
                historyIds.Add(int.Parse(id[..id.IndexOf(',')], System.Globalization.CultureInfo.InvariantCulture));
            }
        }

        Assert.Equal(Enumerable.Range(1, requests), historyIds);
        Assert.False(connection.IsClosing);
    }

    private static ClientConnection ConnectionOf(BrokerServer server, string user) =>
        Assert.Single(server.Node.Users.Get(GrainKeys.Of("chat", user)));
}
