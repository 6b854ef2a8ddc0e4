using System.Collections.Immutable;
using Broker.Grains.Models;
using Orleans.Concurrency;

namespace Broker.Grains;

/// <summary>
/// A room, keyed "{namespace}/{room}": the single writer that orders its messages. It assigns
/// seq (1, 2, 3 … within an epoch), keeps members per front-end, presence and the history
/// window, and pushes each event to every front-end holding members, one ordered queue per
/// front-end so that a slow or dead front-end never delays the others.
/// </summary>
[Alias("Broker.IRoomGrain")]
public interface IRoomGrain : IFrontendWatcher
{
    [Alias("Join")]
    Task<JoinResult> Join(JoinRequest request);

    /// <summary>Removes a connection; returns false when it was not a member.</summary>
    [Alias("Leave")]
    Task<bool> Leave(string connectionId);

    /// <summary>
    /// Orders a message and answers once it is committed (durable when the room has a store).
    /// Interleaves: publishes that arrive while a commit is in flight join the next commit.
    /// </summary>
    [AlwaysInterleave, Alias("Publish")]
    Task<PublishResult> Publish(PublishRequest request);

    /// <summary>
    /// Orders several messages of one publisher (a connection's publishes to this room that
    /// queued while its previous call was in flight), in the order given and in one turn, so
    /// nothing of anybody else's falls between them; answers once they are committed (all in the
    /// same commit with a durable store), one result per message, in order. A message whose msgId
    /// was seen before — in an earlier call or earlier in this batch — is not ordered again: its
    /// result carries the first seq and Duplicate. Fails as a whole (nothing of it acked or
    /// delivered) when the room cannot commit. Added with publish pipelining: upgrade silos before front-ends.
    /// </summary>
    [AlwaysInterleave, Alias("PublishBatch")]
    Task<ImmutableArray<PublishResult>> PublishBatch(PublishBatchRequest request);

    [ReadOnly, Alias("GetPresence")]
    Task<ImmutableArray<PresenceEntry>> GetPresence();

    /// <summary>
    /// Messages after <paramref name="since"/> (oldest first), or the latest ones when since is
    /// null; not bounded in bytes. Kept for front-ends of the previous version: new callers use
    /// <see cref="GetHistory(long?, int, int)"/>.
    /// </summary>
    [ReadOnly, Alias("GetHistory")]
    Task<HistoryPage> GetHistory(long? since, int limit);

    /// <summary>
    /// Messages after <paramref name="since"/> (oldest first), or the latest <paramref name="limit"/>
    /// when since is null (then from the oldest of them): at most <paramref name="limit"/>, and
    /// no more than <paramref name="maxBytes"/> counting each message as its data plus
    /// HistoryWindow.MessageOverheadBytes, yet at least one when there is one. When cut short
    /// while later messages exist, <see cref="HistoryPage.More"/> is true: page on with since
    /// set to the last seq.
    /// </summary>
    [ReadOnly, Alias("GetHistoryPage")]
    Task<HistoryPage> GetHistory(long? since, int limit, int maxBytes);

    /// <summary>
    /// A front-end restates which of its connections are members. Keeps the room active while
    /// it has members and rebuilds membership after the room's activation was lost. Additive:
    /// members are removed only by Leave, so a sync racing a join never drops anybody.
    /// </summary>
    [Alias("SyncFrontend")]
    Task SyncFrontend(FrontendRoomSync sync);
}
