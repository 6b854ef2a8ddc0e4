using System.Diagnostics;
using System.Globalization;
using System.Net.WebSockets;

namespace Broker.Cluster.Tests.Infrastructure;

/// <summary>
/// Publishes "{tag}-{n}" (data and msgId alike) to one room at a steady pace, one at a time, and
/// retries the same msgId until it is acked: after an error reply, after no reply within
/// <c>replyTimeout</c>, and after its connection ended (then on the connection the
/// <see cref="RecoveringClient"/> re-established elsewhere). Records every ack and every retry.
/// </summary>
public sealed class RetryingPublisher
{
    private static readonly TimeSpan GiveUpAfter = TimeSpan.FromSeconds(40);

    private readonly List<Acked> _acks = [];
    private readonly List<Retry> _retries = [];
    private readonly List<string> _problems = [];
    private readonly CancellationTokenSource _stop = new();
    private readonly Task _run;

    private RetryingPublisher(RecoveringClient client, string room, string tag, TimeSpan interval, TimeSpan replyTimeout)
    {
        Client = client;
        Room = room;
        Tag = tag;
        _run = Task.Run(() => RunAsync(interval, replyTimeout));
    }

    public RecoveringClient Client { get; }

    public string Room { get; }

    public string Tag { get; }

    public IReadOnlyList<Acked> Acks
    {
        get
        {
            lock (_acks)
            {
                return [.. _acks];
            }
        }
    }

    public IReadOnlyList<Retry> Retries
    {
        get
        {
            lock (_acks)
            {
                return [.. _retries];
            }
        }
    }

    /// <summary>A msgId never acked within the give-up limit.</summary>
    public IReadOnlyList<string> Problems
    {
        get
        {
            lock (_acks)
            {
                return [.. _problems];
            }
        }
    }

    public static RetryingPublisher Start(RecoveringClient client, string room, string tag, TimeSpan interval, TimeSpan replyTimeout) =>
        new(client, room, tag, interval, replyTimeout);

    /// <summary>Waits (bounded polling) until the acks satisfy <paramref name="condition"/>.</summary>
    public async Task WaitUntilAsync(Func<IReadOnlyList<Acked>, bool> condition, TimeSpan timeout)
    {
        var clock = Stopwatch.StartNew();
        while (!condition(Acks))
        {
            if (_run.IsCompleted)
            {
                await _run;
                throw new InvalidOperationException($"{Tag}: the publisher stopped. {string.Join("; ", Problems)}");
            }

            if (clock.Elapsed > timeout)
            {
                throw new TimeoutException($"{Tag}: condition not met within {timeout}; {Acks.Count} acks, last retries: {string.Join(", ", Retries.TakeLast(5))}");
            }

            await Task.Delay(20);
        }
    }

    /// <summary>Stops after the msgId in flight is acked (or given up).</summary>
    public async Task StopAsync(TimeSpan timeout)
    {
        await _stop.CancelAsync();
        await _run.WaitAsync(timeout);
    }

    private async Task RunAsync(TimeSpan interval, TimeSpan replyTimeout)
    {
        for (var n = 1; !_stop.IsCancellationRequested; n++)
        {
            var msgId = Tag + "-" + n.ToString(CultureInfo.InvariantCulture);
            var first = Stopwatch.GetTimestamp();
            if (!await PublishUntilAckedAsync(msgId, first, replyTimeout))
            {
                return;
            }

            // Pace (not synchronisation): the next publish leaves `interval` after this one first did.
            var wait = interval - Stopwatch.GetElapsedTime(first);
            if (wait > TimeSpan.Zero)
            {
                try
                {
                    await Task.Delay(wait, _stop.Token);
                }
                catch (OperationCanceledException)
                {
                    return;
                }
            }
        }
    }

    private async Task<bool> PublishUntilAckedAsync(string msgId, long first, TimeSpan replyTimeout)
    {
        for (var attempt = 1; ; attempt++)
        {
            if (Stopwatch.GetElapsedTime(first) > GiveUpAfter)
            {
                lock (_acks)
                {
                    _problems.Add($"{Tag}: {msgId} not acked after {attempt - 1} attempts within {GiveUpAfter}");
                }

                return false;
            }

            WsClient connection;
            try
            {
                connection = await Client.EnsureConnectedAsync();
            }
            catch (Exception ex)
            {
                lock (_acks)
                {
                    _problems.Add($"{Tag}: {msgId}: could not reconnect: {ex.Message}");
                }

                return false;
            }

            var sent = Stopwatch.GetTimestamp();
            var request = connection.RequestAsync(
                new() { ["type"] = "publish", ["room"] = Room, ["data"] = msgId, ["msgId"] = msgId },
                replyTimeout);
            string why;
            var done = await Task.WhenAny(request, connection.Closed);
            if (done != request)
            {
                _ = request.ContinueWith(t => t.Exception, TaskScheduler.Default);
                why = "connection ended";
            }
            else
            {
                try
                {
                    var reply = await request;
                    if (reply.Type == "ack")
                    {
                        lock (_acks)
                        {
                            _acks.Add(new Acked(msgId, reply.Seq, attempt, connection.Node, first, reply.At));
                        }

                        return true;
                    }

                    why = "error:" + reply.ErrorCode;
                }
                catch (TimeoutException)
                {
                    why = "timeout";
                }
                catch (Exception ex) when (ex is WebSocketException or ObjectDisposedException or InvalidOperationException)
                {
                    why = "send failed";
                }
            }

            lock (_acks)
            {
                _retries.Add(new Retry(msgId, attempt, why, connection.Node, sent, Stopwatch.GetTimestamp()));
            }

            if (why.StartsWith("error:", StringComparison.Ordinal))
            {
                // Bounded retry pacing after an error reply.
                await Task.Delay(100);
            }
        }
    }

    /// <summary>An acked msgId: its seq, after how many attempts, on which node, first sent and acked (Stopwatch timestamps).</summary>
    public sealed record Acked(string MsgId, long Seq, int Attempts, string Node, long FirstSentAt, long AckedAt)
    {
        public TimeSpan Latency => Ms.Between(FirstSentAt, AckedAt);
    }

    /// <summary>An attempt that was not acked, and why.</summary>
    public sealed record Retry(string MsgId, int Attempt, string Why, string Node, long SentAt, long At)
    {
        public override string ToString() => $"{MsgId}#{Attempt.ToString(CultureInfo.InvariantCulture)} {Why} on {Node}";
    }
}
