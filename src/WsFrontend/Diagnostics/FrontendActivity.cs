using System.Diagnostics;
using Broker.Frontend.Commands;
using Broker.Grains.Diagnostics;
using Broker.Grains.Models;

namespace Broker.Frontend.Diagnostics;

/// <summary>
/// The front-end's spans on the <c>Broker</c> source (<see cref="BrokerActivity"/>): <c>publish</c>
/// and <c>deliver</c>. Each returns null, having computed nothing, while no listener samples them.
/// </summary>
internal static class FrontendActivity
{
    /// <summary>
    /// A publish, from the client's frame (or the server API's request) to its ack. A client
    /// connection's publish starts a trace of its own: the ambient span there would be the
    /// WebSocket's HTTP upgrade request, which lasts as long as the connection. The server API's
    /// publish stays inside its HTTP request's trace (and so continues a caller's traceparent).
    /// </summary>
    public static Activity? StartPublish(Caller caller, string room, string? msgId)
    {
        if (!BrokerActivity.Source.HasListeners())
        {
            return null;
        }

        if (!caller.IsServer && Activity.Current is not null)
        {
            // Only this async call's flow: the receive loop's context is not changed.
            Activity.Current = null;
        }

        var activity = BrokerActivity.Source.StartActivity(BrokerActivity.PublishSpan, ActivityKind.Server);
        if (activity is { IsAllDataRequested: true })
        {
            activity.SetTag(BrokerActivity.NamespaceTag, caller.Namespace);
            activity.SetTag(BrokerActivity.RoomTag, room);
            if (msgId is not null)
            {
                activity.SetTag(BrokerActivity.MsgIdTag, msgId);
            }
        }

        return activity;
    }

    /// <summary>Tags the publish with its outcome (seq, or the error code) and passes the outcome on.</summary>
    public static Outcome<PublishResult> Published(Activity? activity, Outcome<PublishResult> outcome)
    {
        if (activity is { IsAllDataRequested: true })
        {
            if (outcome.Refused is { } refused)
            {
                activity.SetStatus(ActivityStatusCode.Error, refused.Message);
                activity.SetTag(BrokerActivity.ErrorTypeTag, refused.Code);
            }
            else
            {
                activity.SetTag(BrokerActivity.SeqTag, outcome.Value.Seq);
                if (outcome.Value.Duplicate)
                {
                    activity.SetTag(BrokerActivity.DuplicateTag, true);
                }
            }
        }

        return outcome;
    }

    /// <summary>
    /// One delivery call from a room to this front-end (not one per socket): a child of the
    /// commit of the last traced message it carries, linked to the commits of the others. A
    /// delivery carrying no traced message (member events, untraced publishes) makes no span.
    /// </summary>
    public static Activity? StartDeliver(RoomDelivery delivery, int recipients)
    {
        if (!BrokerActivity.Source.HasListeners())
        {
            return null;
        }

        var events = delivery.Events;
        var parentAt = -1;
        for (var i = events.Length - 1; i >= 0; i--)
        {
            if (events[i].TraceParent is not null)
            {
                parentAt = i;
                break;
            }
        }

        if (parentAt < 0 || !ActivityContext.TryParse(events[parentAt].TraceParent, null, isRemote: true, out var parent))
        {
            return null;
        }

        List<ActivityLink>? links = null;
        var messages = 0;
        var lastSeq = 0L;
        for (var i = 0; i < events.Length; i++)
        {
            if (events[i].Message is { } message)
            {
                messages++;
                lastSeq = message.Seq;
            }

            if (i != parentAt && events[i].TraceParent is { } other && ActivityContext.TryParse(other, null, isRemote: true, out var linked))
            {
                (links ??= []).Add(new ActivityLink(linked));
            }
        }

        // Activity.Current here is Orleans' span of the delivery call, when its source is sampled:
        // the explicit parent replaces it (see BrokerActivity.DetachDelivery).
        var activity = BrokerActivity.Source.StartActivity(BrokerActivity.DeliverSpan, ActivityKind.Consumer, parent, tags: null, links);
        if (activity is { IsAllDataRequested: true })
        {
            activity.SetTag(BrokerActivity.NamespaceTag, delivery.Namespace);
            activity.SetTag(BrokerActivity.RoomTag, delivery.Room);
            activity.SetTag(BrokerActivity.SeqTag, lastSeq);
            activity.SetTag(BrokerActivity.MessagesTag, messages);
            activity.SetTag(BrokerActivity.RecipientsTag, recipients);
        }

        return activity;
    }
}
