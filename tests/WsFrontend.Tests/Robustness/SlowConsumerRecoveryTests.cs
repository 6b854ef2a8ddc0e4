using System.Diagnostics;
using System.Text.Json;
using Broker.Frontend.Tests.Infrastructure;

namespace Broker.Frontend.Tests.Robustness;

/// <summary>
/// "The 1013 close carries nothing away": a member closed as a slow consumer reconnects, joins
/// with since + epoch, is answered recovered:true after the messages it missed, and over its two
/// connections has every acked message exactly once, in order.
/// </summary>
public sealed class SlowConsumerRecoveryTests
{
    private const int Messages = 250;
    private const int MoreMessages = 30;
    private const int PayloadChars = 60 * 1024;

    [Fact]
    public async Task Join_SinceAndEpochAfterSlowConsumerClose1013_RecoveredTrueAndEveryAckedMessageExactlyOnceInOrder()
    {
        await using var server = await BrokerServer.StartAsync(new Dictionary<string, string?>
        {
            ["Broker:OutboxFrames"] = "16",
            ["Broker:CloseTimeout"] = "00:00:30",

            // The window must hold the whole gap (up to Messages + MoreMessages).
            ["Broker:Namespaces:chat:History"] = "1000",
            ["Broker:Namespaces:chat:HistoryBytes"] = "64000000",
        });
        var room = BrokerFixture.UniqueRoom("slowrec");
        await using var publisher = await server.ConnectAsync("/chat?user=publisher");
        await using var fast = await server.ConnectAsync("/chat?user=fast");
        await publisher.JoinAsync(room);
        await fast.JoinAsync(room);

        // The slow member joins but reads nothing until it has been left behind.
        await using var slow = await server.ConnectAsync("/chat?user=slow", autoRead: false);
        await slow.SendAsync(new { type = "join", id = 1, room });
        await fast.WaitForAsync(f => Frame.Is(f, "member_joined") && f.GetProperty("user").GetString() == "slow");

        // ~15 MB in 60 KB messages, one publish at a time: far more than the socket buffers plus 16 outbox frames.
        var padding = new string('x', PayloadChars);
        var acked = new List<long>();
        var atFast = fast.CollectAsync(frames => frames.Count(f => Frame.IsMessageIn(f, room)) >= Messages + MoreMessages, TimeSpan.FromSeconds(30), "fast");
        for (var n = 0; n < Messages; n++)
        {
            acked.Add(await PublishAsync(publisher, room, n, padding));
        }

        // The slow member now reads: what was already in flight, then close 1013.
        slow.StartReading();
        Assert.Equal(Frame.TryAgainLater, await slow.WaitForCloseAsync(TimeSpan.FromSeconds(15)));
        var first = await slow.DrainAsync();
        var joined = first.Single(f => Frame.Is(f, "joined") && Frame.HasId(f, 1));
        var epoch = joined.GetProperty("epoch").GetString()!;
        var before = first.Where(f => Frame.IsMessageIn(f, room)).ToList();
        var since = before.Count > 0 ? before[^1].GetProperty("seq").GetInt64() : joined.GetProperty("seq").GetInt64();
        Assert.True(before.Count < Messages, "The slow member got every message before its close, so it was never behind.");

        // It reconnects and recovers while the publisher goes on publishing (small messages).
        var clock = Stopwatch.StartNew();
        await using var again = await server.ConnectAsync("/chat?user=slow");
        var more = Task.Run(async () =>
        {
            var seqs = new List<long>();
            for (var n = Messages; n < Messages + MoreMessages; n++)
            {
                seqs.Add(await PublishAsync(publisher, room, n, "small"));
            }

            return seqs;
        });
        await again.SendAsync(new { type = "join", id = "recover", room, since, epoch });
        List<JsonElement> recovery;
        try
        {
            recovery = await again.CollectUntilAsync(f => Frame.Is(f, "joined") && Frame.HasId(f, "recover"), TimeSpan.FromSeconds(15), "recovering member");
        }
        catch (TimeoutException ex)
        {
            var status = again.Closed.IsCompleted ? $"closed with {(int?)await again.Closed}" : "still open";
            var publishing = "went on publishing";
            try
            {
                await more;
            }
            catch (Exception e) when (e is System.Net.WebSockets.WebSocketException or TimeoutException or InvalidOperationException)
            {
                publishing = $"could not go on publishing ({e.Message}; its connection {(publisher.Closed.IsCompleted ? $"closed with {(int?)await publisher.Closed}" : "open")})";
            }

            throw new Xunit.Sdk.XunitException(
                $"The member closed as a slow consumer reconnected and joined with since={since} epoch={epoch} " +
                $"(it had {before.Count} of {Messages} messages, so {Messages - before.Count}+ to replay; outbox 16 frames): " +
                $"expected the missed messages then joined recovered:true; the new connection was {status} before its joined reply; the publisher {publishing}. {ex.Message}");
        }

        var recoveredAfter = clock.Elapsed;
        var rejoined = recovery[^1];
        acked.AddRange(await more);
        var replayed = recovery.Count(f => Frame.IsMessageIn(f, room));
        var rest = await again.CollectAsync(
            frames => recovery.Concat(frames).Where(f => Frame.IsMessageIn(f, room)).Select(Seq).DefaultIfEmpty(since).Max() >= acked.Max(),
            TimeSpan.FromSeconds(15),
            "recovering member, after joined");

        Assert.True(rejoined.GetProperty("recovered").GetBoolean(), $"join with since={since} epoch={epoch} answered {rejoined}");
        Assert.Equal(epoch, rejoined.GetProperty("epoch").GetString());

        // Over both connections: every acked message exactly once, in seq order, each with its own data.
        var all = before.Concat(recovery).Concat(rest).Where(f => Frame.IsMessageIn(f, room)).ToList();
        var expected = acked.Order().ToList();
        Assert.Equal(Enumerable.Range(1, Messages + MoreMessages).Select(i => (long)i), expected);
        var seen = all.Select(Seq).ToList();
        var lost = expected.Except(seen).Count();
        var duplicated = seen.Count - seen.Distinct().Count();
        var outOfOrder = seen.Zip(seen.Skip(1)).Count(p => p.Second < p.First);
        Assert.True(lost == 0 && duplicated == 0 && outOfOrder == 0,
            $"slow member over both connections: lost {lost}, duplicated {duplicated}, out of order {outOfOrder} " +
            $"(before the close {before.Count} up to seq {since}, replayed {replayed}, then {rest.Count(f => Frame.IsMessageIn(f, room))})");
        Assert.Equal(expected, seen);
        Assert.Equal(Enumerable.Range(0, Messages + MoreMessages), all.Select(m => m.GetProperty("data").GetProperty("n").GetInt32()));
        Assert.Equal(Messages + MoreMessages - before.Count, replayed + rest.Count(f => Frame.IsMessageIn(f, room)));
        Assert.True(replayed > 0, "Nothing was replayed although the member missed messages.");

        // The fast member got everything once, in order, and was never closed; recovery took moments.
        var atFastMessages = (await atFast).Where(f => Frame.IsMessageIn(f, room)).Select(Seq).ToList();
        Assert.Equal(expected, atFastMessages);
        Assert.False(fast.Closed.IsCompleted || again.Closed.IsCompleted, "a reading member was closed");
        Assert.True(recoveredAfter < TimeSpan.FromSeconds(5), $"Reconnect and recovery of {replayed} messages took {recoveredAfter}.");
    }

    private static long Seq(JsonElement message) => message.GetProperty("seq").GetInt64();

    /// <summary>Publishes {n, padding} and waits for its ack (frames before it are the publisher's own copies, skipped).</summary>
    private static async Task<long> PublishAsync(TestClient publisher, string room, int n, string padding)
    {
        var id = "p" + n.ToString(System.Globalization.CultureInfo.InvariantCulture);
        await publisher.SendAsync(new { type = "publish", id, room, data = new { n, padding } });
        var ack = await publisher.WaitForAsync(f => Frame.HasId(f, id), TimeSpan.FromSeconds(5));
        Assert.True(Frame.Is(ack, "ack"), $"publish {n}: {ack}");
        return ack.GetProperty("seq").GetInt64();
    }
}
