using System.Diagnostics;

namespace Broker.Grains.Diagnostics;

/// <summary>
/// The broker's traces: one <see cref="ActivitySource"/> named <c>Broker</c> for front-ends and
/// silos (docs/operations.md "Traces"). A message's trace is <c>publish</c> (front-end, the
/// publish frame or the server API's publish, up to its ack) → Orleans' grain-call spans →
/// <c>room.commit</c> (silo, the room's publish, store write included) and, on every front-end
/// holding members, <c>deliver</c>, whose parent is the commit of the last traced message the
/// delivery carries and whose links are the commits of the others (deliveries are coalesced
/// per front-end, so one delivery call may carry messages of many traces).
/// Off the hot path without a listener: <see cref="ActivitySource.StartActivity(string, ActivityKind)"/>
/// then returns null, and no tag is computed unless the span records (IsAllDataRequested).
/// </summary>
public static class BrokerActivity
{
    public const string SourceName = "Broker";

    public const string PublishSpan = "publish";
    public const string CommitSpan = "room.commit";
    public const string DeliverSpan = "deliver";

    // Tags. Room names are fine on spans (unlike metric labels): a span is one event, not a series.
    public const string NamespaceTag = "broker.namespace";
    public const string RoomTag = "broker.room";
    public const string MsgIdTag = "broker.msg_id";
    public const string SeqTag = "broker.seq";
    public const string DuplicateTag = "broker.duplicate";
    public const string MessagesTag = "broker.messages";
    public const string RecipientsTag = "broker.recipients";

    /// <summary>OpenTelemetry's general attribute for why an operation failed: here the protocol error code, or the exception's type on the silo.</summary>
    public const string ErrorTypeTag = "error.type";

    public static readonly ActivitySource Source = new(SourceName, typeof(BrokerActivity).Assembly.GetName().Version?.ToString());

    /// <summary>
    /// The room's side of a publish, made only inside a publish's trace: a child of Orleans'
    /// span of the grain call when that span continues a caller's context. A silo starts no trace
    /// of its own: the front-end's sampler decided about the publish, and Orleans does not
    /// propagate a sampled-out publish's context, so its span here would be a root (sampled again
    /// on its own trace id) and the commit an orphan.
    /// </summary>
    public static Activity? StartRoomCommit(string ns, string room, string? msgId)
    {
        if (Activity.Current?.ParentId is null)
        {
            return null;
        }

        var activity = Source.StartActivity(CommitSpan, ActivityKind.Internal);
        if (activity is { IsAllDataRequested: true })
        {
            activity.SetTag(NamespaceTag, ns);
            activity.SetTag(RoomTag, room);
            if (msgId is not null)
            {
                activity.SetTag(MsgIdTag, msgId);
            }
        }

        return activity;
    }

    /// <summary>
    /// The room's side of one message of a batch (<c>IRoomGrain.PublishBatch</c>): a child of
    /// the publish whose recorded context the message carries; none without one. Activity.Current
    /// is left as it was, since one turn starts the spans of several traces.
    /// </summary>
    public static Activity? StartBatchedCommit(string ns, string room, string? msgId, string? traceParent)
    {
        if (traceParent is null || !Source.HasListeners() || !ActivityContext.TryParse(traceParent, null, isRemote: true, out var parent))
        {
            return null;
        }

        var current = Activity.Current;
        var activity = Source.StartActivity(CommitSpan, ActivityKind.Internal, parent);
        Activity.Current = current;
        if (activity is { IsAllDataRequested: true })
        {
            activity.SetTag(NamespaceTag, ns);
            activity.SetTag(RoomTag, room);
            if (msgId is not null)
            {
                activity.SetTag(MsgIdTag, msgId);
            }
        }

        return activity;
    }

    /// <summary>The room answered: the message's seq, and whether it was a retry of one committed before.</summary>
    public static void Committed(Activity? activity, long seq, bool duplicate)
    {
        if (activity is { IsAllDataRequested: true })
        {
            activity.SetTag(SeqTag, seq);
            if (duplicate)
            {
                activity.SetTag(DuplicateTag, true);
            }
        }
    }

    /// <summary>The publish failed on the silo (the store, or the activation refused): the exception's type.</summary>
    public static void Failed(Activity? activity, Exception exception)
    {
        if (activity is { IsAllDataRequested: true })
        {
            activity.SetStatus(ActivityStatusCode.Error, exception.Message);
            activity.SetTag(ErrorTypeTag, exception.GetType().FullName);
        }
    }

    /// <summary>
    /// The W3C traceparent a message event carries to the front-ends, only when the commit is
    /// recorded (sampled): their <c>deliver</c> spans hang off it. A sampled-out commit sends
    /// nothing, so its deliveries cost no parsing and make no span.
    /// </summary>
    public static string? TraceParentOf(Activity? activity) => activity is { Recorded: true } ? activity.Id : null;

    /// <summary>
    /// Clears the ambient span before a room's delivery call. The room's delivery pump runs in
    /// the execution context of whichever publish started it, and goes on for the messages of
    /// later publishes; Orleans would otherwise put every later delivery call into that first
    /// publish's trace. The messages carry their own commit's context instead.
    /// </summary>
    public static void DetachDelivery()
    {
        if (Activity.Current is not null)
        {
            Activity.Current = null;
        }
    }
}
