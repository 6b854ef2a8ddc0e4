using System.Diagnostics;

namespace Broker.Grains.Diagnostics;

/// <summary>
/// The traced publishes of one room activation waiting for their commit: seq → the W3C
/// traceparent of their <c>room.commit</c> span, handed to the message's event when it is
/// committed. Empty, and never touched beyond a count check, while nothing is traced.
/// Contract: used only on the owning activation's scheduler.
/// </summary>
internal sealed class CommitTraces
{
    private Dictionary<long, string>? _bySeq;

    /// <summary>Remembers the publish's span for its seq when that span exists.</summary>
    public void Add(long seq, Activity? activity)
    {
        if (BrokerActivity.TraceParentOf(activity) is { } traceParent)
        {
            (_bySeq ??= []).Add(seq, traceParent);
        }
    }

    /// <summary>The traceparent of the publish that got this seq, if it was traced; forgotten here.</summary>
    public string? Take(long seq) =>
        _bySeq is { Count: > 0 } bySeq && bySeq.Remove(seq, out var traceParent) ? traceParent : null;

    /// <summary>The uncommitted publishes failed: nothing of theirs is delivered.</summary>
    public void Clear() => _bySeq?.Clear();
}
