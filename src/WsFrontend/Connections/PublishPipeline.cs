using System.Diagnostics;
using System.Runtime.InteropServices;
using Broker.Frontend.Commands;
using Broker.Frontend.Diagnostics;
using Broker.Frontend.Protocol;
using Broker.Grains.Diagnostics;
using Broker.Grains.Models;

namespace Broker.Frontend.Connections;

/// <summary>
/// A connection's publishes in flight (pipelining): the receive loop hands each publish frame
/// over and reads on while fewer than MaxPublishesInFlight (and MaxPublishBytesInFlight bytes of
/// data) are unanswered, so a durable room's commit round trip no longer bounds what one
/// connection can publish.
/// Contract:
/// - Order per room: each room has at most one call of this connection in flight (a lane);
///   publishes that arrive meanwhile queue and leave together, in frame order, as the next call
///   (<see cref="CommandDispatcher.PublishCheckedAsync"/>, <see cref="CommandDispatcher.PublishBatchAsync"/>). Orleans does not keep two calls in
///   flight in order; one at a time keeps the order sent under every failure a single call has.
/// - Order of replies: acks and errors go out in the order the frames came, whatever order the
///   rooms answer in: a reply waits until every publish before it has been answered.
/// - Rules per publish: whether it may be made (namespace switch, grant, membership) is decided
///   when its frame is taken, in frame order, by the receive loop (which alone touches the
///   connection's rooms and grants); a refusal is answered in its place in the order.
/// - Every other frame waits for the publishes before it to be answered
///   (<see cref="WhenAnsweredAsync"/>): a leave after a publish leaves after it was ordered.
/// - Bounded: the receive loop waits for room (<see cref="WaitForCapacityAsync"/>) after taking a
///   publish; a publish counts until its reply is in the outbox, so a client that never reads its
///   acks is held at the bound (its frames wait in TCP), nothing grows.
/// - A closing connection's publishes still complete or fail (each call is bounded by
///   ClusterCallTimeout); their replies then have nobody to go to and are dropped.
/// Made at a connection's first publish, so that connections that never publish hold none of it.
/// </summary>
public sealed class PublishPipeline
{
    private readonly ClientConnection _connection;
    private readonly CommandDispatcher _dispatcher;
    private readonly int _maxPublishes;
    private readonly long _maxBytes;
    private readonly Lock _gate = new();

    /// <summary>Publishes taken and not yet replied to, in frame order.</summary>
    private readonly Queue<PendingPublish> _unanswered = new();

    /// <summary>Rooms with a call of this connection in flight.</summary>
    private readonly Dictionary<string, RoomLane> _lanes = new(StringComparer.Ordinal);

    private long _bytes;

    /// <summary>A writer is moving answered replies to the outbox.</summary>
    private bool _replying;

    /// <summary>The receive loop waits for room or for every publish to be answered.</summary>
    private TaskCompletionSource? _progress;

    public PublishPipeline(ClientConnection connection, CommandDispatcher dispatcher, int maxPublishes, long maxBytes)
    {
        _connection = connection;
        _dispatcher = dispatcher;
        _maxPublishes = maxPublishes;
        _maxBytes = maxBytes;
    }

    /// <summary>Publishes taken and not yet replied to.</summary>
    public int Unanswered
    {
        get
        {
            lock (_gate)
            {
                return _unanswered.Count;
            }
        }
    }

    /// <summary>
    /// Takes a publish frame (parsed, within the rate): checks it may be made, then queues it on
    /// its room's lane, which calls the room at once when no call of this connection to that
    /// room is in flight. Called by the receive loop only, one frame at a time.
    /// </summary>
    public async ValueTask AcceptAsync(ClientFrame frame)
    {
        var started = Stopwatch.GetTimestamp();
        var caller = _connection.Caller;
        var room = frame.Room!;

        // The span is this async method's Activity.Current (the proxy's question runs in it) and
        // the call's when it goes alone; the receive loop's own context is not changed.
        var activity = FrontendActivity.StartPublish(caller, room, frame.MsgId);
        var pending = new PendingPublish(frame, activity, started);
        var refused = await _dispatcher.CheckPublishAsync(caller, room);
        if (refused is not null)
        {
            Finish(pending, refused);
            lock (_gate)
            {
                Take(pending);
            }

            Answered();
            return;
        }

        RoomLane? idle = null;
        lock (_gate)
        {
            Take(pending);
            if (_lanes.TryGetValue(room, out var lane))
            {
                (lane.Queued ??= []).Add(pending);
            }
            else
            {
                idle = new RoomLane(room);
                _lanes.Add(room, idle);
            }
        }

        if (idle is not null)
        {
            _ = RunLaneAsync(idle, pending);
        }
    }

    /// <summary>A publish answered without a call (rate limited): its reply waits for its turn like any other.</summary>
    public void AcceptAnswered(byte[] reply)
    {
        var pending = new PendingPublish(null, null, 0) { Reply = reply };
        lock (_gate)
        {
            Take(pending);
        }

        Answered();
    }

    /// <summary>Completes once fewer than MaxPublishesInFlight publishes (and fewer bytes than MaxPublishBytesInFlight) are unanswered.</summary>
    public ValueTask WaitForCapacityAsync() =>
        WaitUntilAsync(static p => p._unanswered.Count < p._maxPublishes && p._bytes < p._maxBytes);

    /// <summary>Completes once every publish taken has been replied to (its reply is in the outbox, or the connection closed).</summary>
    public ValueTask WhenAnsweredAsync() =>
        WaitUntilAsync(static p => p._unanswered.Count == 0 && !p._replying);

    /// <summary>Under the lock.</summary>
    private void Take(PendingPublish pending)
    {
        _unanswered.Enqueue(pending);
        _bytes += pending.Bytes;
    }

    /// <summary>
    /// One room's calls, one at a time: the first publish, then whatever queued while each call
    /// was in flight, as one batch. The lane ends (and is forgotten) when a call comes back with
    /// nothing queued.
    /// </summary>
    private async Task RunLaneAsync(RoomLane lane, PendingPublish first)
    {
        List<PendingPublish>? batch = null;
        var single = first;
        while (true)
        {
            if (single is not null)
            {
                await CallAsync(lane.Room, single);
            }
            else
            {
                await CallAsync(lane.Room, batch!);
            }

            Answered();
            lock (_gate)
            {
                if (lane.Queued is not { Count: > 0 } queued)
                {
                    _lanes.Remove(lane.Room);
                    return;
                }

                lane.Queued = null;
                if (queued.Count == 1)
                {
                    single = queued[0];
                }
                else
                {
                    single = null;
                    batch = queued;
                }
            }
        }
    }

    private async Task CallAsync(string room, PendingPublish publish)
    {
        // Goes as Publish, inside the publish's own trace.
        Activity.Current = publish.Activity;
        var frame = publish.Frame!;
        Finish(publish, await _dispatcher.PublishCheckedAsync(_connection.Caller, room, frame.Data!, frame.MsgId));
    }

    private async Task CallAsync(string room, List<PendingPublish> batch)
    {
        // One call for many traces: the call itself is in none; each message carries its own.
        Activity.Current = null;
        var messages = new BatchedPublish[batch.Count];
        for (var i = 0; i < messages.Length; i++)
        {
            var frame = batch[i].Frame!;
            messages[i] = new BatchedPublish(frame.Data!, frame.MsgId, BrokerActivity.TraceParentOf(batch[i].Activity));
        }

        var outcome = await _dispatcher.PublishBatchAsync(_connection.Caller, room, ImmutableCollectionsMarshal.AsImmutableArray(messages));
        for (var i = 0; i < batch.Count; i++)
        {
            Finish(batch[i], outcome.Refused ?? (Outcome<PublishResult>)outcome.Value[i]);
        }
    }

    /// <summary>The publish's reply (ack or error), its span ended and its metrics counted; not yet sent.</summary>
    private void Finish(PendingPublish publish, Outcome<PublishResult> outcome)
    {
        var frame = publish.Frame!;
        FrontendActivity.Published(publish.Activity, outcome);
        publish.Activity?.Dispose();
        byte[] reply;
        if (outcome.Refused is { } refused)
        {
            reply = ConnectionHandler.ErrorFrame(frame.Id, refused.Code, refused.Message);
        }
        else
        {
            reply = ConnectionHandler.Counted(SentFrame.Ack, FrameWriter.PublishAck(frame.Id, frame.Room!, outcome.Value.Seq));
            FrontendMetrics.Published(_connection.Namespace, publish.Started);
        }

        lock (_gate)
        {
            publish.Reply = reply;
        }
    }

    /// <summary>Starts the writer when the oldest publish has its reply and no writer runs.</summary>
    private void Answered()
    {
        lock (_gate)
        {
            if (_replying || !_unanswered.TryPeek(out var oldest) || oldest.Reply is null)
            {
                return;
            }

            _replying = true;
        }

        _ = ReplyInOrderAsync();
    }

    /// <summary>
    /// The single writer of publish replies: moves them to the outbox in frame order while the
    /// oldest has its reply, waiting for outbox space like any reply (a client that does not
    /// read holds the pipeline, and with it the receive loop).
    /// </summary>
    private async Task ReplyInOrderAsync()
    {
        while (true)
        {
            PendingPublish? oldest = null;
            TaskCompletionSource? progress;
            lock (_gate)
            {
                if (_unanswered.TryPeek(out var next) && next.Reply is not null)
                {
                    oldest = _unanswered.Dequeue();
                    _bytes -= oldest.Bytes;
                }
                else
                {
                    _replying = false;
                }

                // Room for the receive loop, or (writer done) every publish answered.
                progress = TakeProgress();
            }

            progress?.TrySetResult();
            if (oldest is null)
            {
                return;
            }

            await _connection.ReplyAsync(oldest.Reply!);
        }
    }

    private TaskCompletionSource? TakeProgress()
    {
        var progress = _progress;
        _progress = null;
        return progress;
    }

    private async ValueTask WaitUntilAsync(Func<PublishPipeline, bool> ready)
    {
        while (true)
        {
            Task progress;
            lock (_gate)
            {
                if (ready(this))
                {
                    return;
                }

                _progress ??= new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
                progress = _progress.Task;
            }

            await progress.ConfigureAwait(false);
        }
    }

    /// <summary>A publish taken: its frame (null when answered without a call), its span, when it was taken, and once answered its reply.</summary>
    private sealed class PendingPublish(ClientFrame? frame, Activity? activity, long started)
    {
        public ClientFrame? Frame { get; } = frame;

        public Activity? Activity { get; } = activity;

        public long Started { get; } = started;

        public long Bytes { get; } = frame?.Data?.Length ?? 0;

        /// <summary>Set under the pipeline's lock.</summary>
        public byte[]? Reply { get; set; }
    }

    /// <summary>A room with a call of this connection in flight, and the publishes that queued behind it.</summary>
    private sealed class RoomLane(string room)
    {
        public string Room { get; } = room;

        public List<PendingPublish>? Queued { get; set; }
    }
}
