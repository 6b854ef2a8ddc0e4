using System.Diagnostics;
using System.Globalization;

namespace Broker.Cluster.Tests.Infrastructure;

/// <summary>
/// One client publishing to one room at a steady pace, one publish at a time, each waiting for
/// its reply (ack or error) for at most <c>replyTimeout</c>. Every outcome is recorded with its
/// latency, for the assertions and figures of the failure tests. Data is "{tag}#{n}".
/// </summary>
public sealed class PublishLoop
{
    private readonly List<Outcome> _outcomes = [];
    private readonly CancellationTokenSource _stop = new();
    private readonly Task _run;

    private PublishLoop(WsClient client, string room, string tag, TimeSpan interval, TimeSpan replyTimeout)
    {
        Client = client;
        Room = room;
        Tag = tag;
        _run = Task.Run(() => RunAsync(interval, replyTimeout));
    }

    public WsClient Client { get; }

    public string Room { get; }

    public string Tag { get; }

    public IReadOnlyList<Outcome> Outcomes
    {
        get
        {
            lock (_outcomes)
            {
                return [.. _outcomes];
            }
        }
    }

    public static PublishLoop Start(WsClient client, string room, string tag, TimeSpan interval, TimeSpan replyTimeout) =>
        new(client, room, tag, interval, replyTimeout);

    public static string Data(string tag, int n) => tag + "#" + n.ToString(CultureInfo.InvariantCulture);

    /// <summary>Waits until the loop has recorded an outcome that matches (bounded).</summary>
    public async Task WaitUntilAsync(Func<IReadOnlyList<Outcome>, bool> condition, TimeSpan timeout)
    {
        var started = Stopwatch.StartNew();
        while (!condition(Outcomes))
        {
            if (started.Elapsed > timeout)
            {
                throw new TimeoutException($"Publishing to {Room}: condition not met within {timeout}; last outcomes: " +
                                           string.Join(", ", Outcomes.TakeLast(5)));
            }

            if (_run.IsCompleted)
            {
                await _run;
            }

            await Task.Delay(20);
        }
    }

    /// <summary>Stops after the publish in flight has its outcome.</summary>
    public async Task<IReadOnlyList<Outcome>> StopAsync()
    {
        await _stop.CancelAsync();
        await _run;
        return Outcomes;
    }

    private async Task RunAsync(TimeSpan interval, TimeSpan replyTimeout)
    {
        for (var n = 1; !_stop.IsCancellationRequested; n++)
        {
            var data = Data(Tag, n);
            var sent = Stopwatch.GetTimestamp();
            Outcome outcome;
            try
            {
                var reply = await Client.TryPublishAsync(Room, data, replyTimeout);
                outcome = new Outcome(n, data, sent, reply.At, reply.Type == "ack" ? "ack" : "error:" + reply.ErrorCode, reply.Type == "ack" ? reply.Seq : null);
            }
            catch (TimeoutException)
            {
                outcome = new Outcome(n, data, sent, null, "timeout", null);
            }
            catch (Exception ex) when (ex is System.Net.WebSockets.WebSocketException or ObjectDisposedException or InvalidOperationException)
            {
                outcome = new Outcome(n, data, sent, null, "send-failed: " + ex.Message, null);
            }

            lock (_outcomes)
            {
                _outcomes.Add(outcome);
            }

            // Pace (not synchronisation): the next publish leaves `interval` after this one did.
            var wait = interval - Stopwatch.GetElapsedTime(sent);
            if (wait > TimeSpan.Zero)
            {
                try
                {
                    await Task.Delay(wait, _stop.Token);
                }
                catch (OperationCanceledException)
                {
                    break;
                }
            }
        }
    }

    /// <summary>One publish: when it left, when its reply came (null: none within the timeout), what it was.</summary>
    public sealed record Outcome(int N, string Data, long SentAt, long? RepliedAt, string Kind, long? Seq)
    {
        public bool IsAck => Kind == "ack";

        /// <summary>Reply latency; for a publish without reply, infinite.</summary>
        public TimeSpan Latency => RepliedAt is { } r ? Stopwatch.GetElapsedTime(SentAt, r) : TimeSpan.MaxValue;

        public override string ToString() =>
            $"#{N} {Kind} in {(RepliedAt is null ? "-" : Latency.TotalMilliseconds.ToString("F0", CultureInfo.InvariantCulture) + " ms")}";
    }
}
