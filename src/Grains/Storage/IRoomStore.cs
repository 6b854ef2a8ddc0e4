using Broker.Grains.Models;

namespace Broker.Grains.Storage;

/// <summary>A committed message with the publisher's msgId, so that idempotency survives a restart.</summary>
public sealed record StoredMessage(RoomMessage Message, string? MsgId);

/// <summary>What a room's store holds: its epoch, its last committed seq, and its recent messages (oldest first).</summary>
public sealed record RoomSnapshot(string Epoch, long Seq, IReadOnlyList<StoredMessage> Recent);

/// <summary>
/// Where a room keeps what must survive its activation. Contract: an epoch is created once and
/// kept until the stored state is lost; Append is atomic (all of the batch or none) and only
/// succeeds while the stored epoch is the caller's, so two activations can never both extend
/// one epoch and a seq is never written twice.
/// </summary>
public interface IRoomStore
{
    /// <summary>True when an appended batch survives the process (acks then mean "durable").</summary>
    bool IsDurable { get; }

    /// <summary>Loads the room, creating a new epoch (seq 0) when nothing is stored.</summary>
    Task<RoomSnapshot> LoadAsync(string roomKey, CancellationToken cancellationToken = default);

    /// <summary>
    /// Appends messages (in seq order) and trims the log to its newest <paramref name="keep"/>
    /// entries (0 deletes it): the room works out how many from its history window, bounded in
    /// messages and in bytes, so that the log holds what the window holds. Throws
    /// <see cref="RoomStoreException"/> on failure.
    /// </summary>
    Task AppendAsync(string roomKey, string epoch, IReadOnlyList<StoredMessage> batch, int keep);

    /// <summary>
    /// The room's activation is going (it deactivates); <paramref name="seq"/> is the last seq it
    /// handed out, committed or not. A store that keeps the room's state itself has nothing to do.
    /// </summary>
    void Unload(string roomKey, string epoch, long seq);
}

/// <summary>
/// No store: state lives in the activation only; a new activation is a new epoch, except that a
/// room that went at seq 0 (it never had a message, so it held nothing) takes its epoch back in
/// its next activation on this silo (<see cref="EpochTombstones"/>).
/// </summary>
public sealed class MemoryRoomStore : IRoomStore
{
    private readonly EpochTombstones _tombstones;

    public MemoryRoomStore(EpochTombstones tombstones) => _tombstones = tombstones;

    public bool IsDurable => false;

    public Task<RoomSnapshot> LoadAsync(string roomKey, CancellationToken cancellationToken = default) =>
        Task.FromResult(new RoomSnapshot(_tombstones.TryTake(roomKey, out var epoch) ? epoch : NewEpoch(), 0, []));

    public Task AppendAsync(string roomKey, string epoch, IReadOnlyList<StoredMessage> batch, int keep) => Task.CompletedTask;

    /// <summary>
    /// Only an epoch in which no seq was handed out is remembered: (epoch, seq 0) is then all the
    /// room was, and resuming it loses nothing. An epoch that numbered a message (even one whose
    /// history is gone, History=0) is never resumed: its seqs would be handed out again. Such an
    /// activation also drops any entry left for the room, should an older activation's have come
    /// in late, so that an epoch from before its messages cannot come back and claim that nothing
    /// was missed.
    /// </summary>
    public void Unload(string roomKey, string epoch, long seq)
    {
        if (seq == 0 && epoch.Length > 0)
        {
            _tombstones.Add(roomKey, epoch);
        }
        else
        {
            _tombstones.Forget(roomKey);
        }
    }

    public static string NewEpoch() => Guid.NewGuid().ToString("N")[..12];
}
