using System.Buffers.Binary;
using System.Text;
using Broker.Grains.Models;
using StackExchange.Redis;

namespace Broker.Grains.Storage;

/// <summary>
/// Room state in Redis, two keys per room:
/// "{prefix}{room}:meta" (hash: epoch, seq) and "{prefix}{room}:log" (list: the history window,
/// oldest first). A batch is appended in one MULTI/EXEC conditioned on the stored epoch — one
/// round trip for any number of messages (group commit) — conditioned on the stored epoch and
/// seq, so a stale or duplicate activation can never write.
/// Keys expire after <see cref="RoomStoreOptions.Ttl"/> without writes.
/// </summary>
public sealed class RedisRoomStore : IRoomStore
{
    private static readonly RedisValue EpochField = "epoch";
    private static readonly RedisValue SeqField = "seq";
    private readonly Lazy<Task<IConnectionMultiplexer>> _redis;
    private readonly RoomStoreOptions _options;

    /// <param name="connect">Opens the connection, once, asynchronously: a synchronous connect from a
    /// grain was measured to stall the whole thread pool for ~10 s on a 2-core machine.</param>
    public RedisRoomStore(Func<Task<IConnectionMultiplexer>> connect, RoomStoreOptions options)
    {
        _redis = new Lazy<Task<IConnectionMultiplexer>>(connect);
        _options = options;
    }

    public bool IsDurable => true;

    public async Task<RoomSnapshot> LoadAsync(string roomKey, CancellationToken cancellationToken = default)
    {
        var (meta, log) = Keys(roomKey);
        try
        {
            var db = (await _redis.Value).GetDatabase();
            // A room with no stored epoch (new, or its keys were lost) starts a new one; HSETNX
            // makes two racing activations agree on a single epoch.
            await db.HashSetAsync(meta, EpochField, MemoryRoomStore.NewEpoch(), When.NotExists);
            var values = await db.HashGetAsync(meta, [EpochField, SeqField]);
            var entries = await db.ListRangeAsync(log);
            var recent = entries.Select(e => Decode((byte[])e!)).ToList();
            var seq = values[1].HasValue ? (long)values[1] : 0;
            return new RoomSnapshot((string)values[0]!, seq, recent);
        }
        catch (RedisException ex)
        {
            throw new RoomStoreException($"Could not load room {roomKey}: {ex.GetType().Name}: {ex.Message}");
        }
    }

    public async Task AppendAsync(string roomKey, string epoch, IReadOnlyList<StoredMessage> batch, int keep)
    {
        IDatabase db;
        try
        {
            db = (await _redis.Value).GetDatabase();
        }
        catch (RedisException ex)
        {
            throw new RoomStoreException($"Could not reach the room store: {ex.GetType().Name}: {ex.Message}");
        }

        var (meta, log) = Keys(roomKey);
        var transaction = db.CreateTransaction();
        transaction.AddCondition(Condition.HashEqual(meta, EpochField, epoch));

        // And on the seq this batch follows: a second activation of the room (for a moment,
        // after a silo failure) can never commit the same seq twice.
        var previous = batch[0].Message.Seq - 1;
        transaction.AddCondition(previous == 0 ? Condition.HashNotExists(meta, SeqField) : Condition.HashEqual(meta, SeqField, previous));
        _ = transaction.HashSetAsync(meta, SeqField, batch[^1].Message.Seq);
        if (keep > 0)
        {
            // Only what will be kept is pushed: a batch bigger than the window (in messages or
            // bytes) does not pass through Redis' memory first.
            var pushed = batch.Skip(Math.Max(0, batch.Count - keep)).Select(m => (RedisValue)Encode(m)).ToArray();
            _ = transaction.ListRightPushAsync(log, pushed);
            _ = transaction.ListTrimAsync(log, -keep, -1);
            _ = transaction.KeyExpireAsync(log, _options.Ttl);
        }
        else
        {
            _ = transaction.KeyDeleteAsync(log);
        }

        _ = transaction.KeyExpireAsync(meta, _options.Ttl);
        bool committed;
        try
        {
            committed = await transaction.ExecuteAsync();
        }
        catch (RedisException ex)
        {
            throw new RoomStoreException($"Could not commit {batch.Count} messages of room {roomKey}: {ex.GetType().Name}: {ex.Message}");
        }

        if (!committed)
        {
            throw new RoomStoreException($"Room {roomKey} moved on (another activation committed in epoch {epoch}); this one reloads.");
        }
    }

    /// <summary>Redis keeps the epoch (and the rest): the next activation loads it from there.</summary>
    public void Unload(string roomKey, string epoch, long seq)
    {
    }

    private (RedisKey Meta, RedisKey Log) Keys(string roomKey) =>
        (_options.KeyPrefix + roomKey + ":meta", _options.KeyPrefix + roomKey + ":log");

    // Layout: seq (8) | ts (8) | from length (4) | from | msgId length (4, -1 = none) | msgId | payload
    internal static byte[] Encode(StoredMessage stored)
    {
        var message = stored.Message;
        var from = Encoding.UTF8.GetBytes(message.From);
        var msgId = stored.MsgId is null ? null : Encoding.UTF8.GetBytes(stored.MsgId);
        var bytes = new byte[8 + 8 + 4 + from.Length + 4 + (msgId?.Length ?? 0) + message.Payload.Length];
        var span = bytes.AsSpan();
        BinaryPrimitives.WriteInt64LittleEndian(span, message.Seq);
        BinaryPrimitives.WriteInt64LittleEndian(span[8..], message.Timestamp);
        BinaryPrimitives.WriteInt32LittleEndian(span[16..], from.Length);
        from.CopyTo(span[20..]);
        var at = 20 + from.Length;
        BinaryPrimitives.WriteInt32LittleEndian(span[at..], msgId?.Length ?? -1);
        at += 4;
        msgId?.CopyTo(span[at..]);
        at += msgId?.Length ?? 0;
        message.Payload.CopyTo(span[at..]);
        return bytes;
    }

    internal static StoredMessage Decode(byte[] bytes)
    {
        var span = bytes.AsSpan();
        var seq = BinaryPrimitives.ReadInt64LittleEndian(span);
        var ts = BinaryPrimitives.ReadInt64LittleEndian(span[8..]);
        var fromLength = BinaryPrimitives.ReadInt32LittleEndian(span[16..]);
        var from = Encoding.UTF8.GetString(span.Slice(20, fromLength));
        var at = 20 + fromLength;
        var msgIdLength = BinaryPrimitives.ReadInt32LittleEndian(span[at..]);
        at += 4;
        string? msgId = null;
        if (msgIdLength >= 0)
        {
            msgId = Encoding.UTF8.GetString(span.Slice(at, msgIdLength));
            at += msgIdLength;
        }

        return new StoredMessage(new RoomMessage(seq, from, ts, span[at..].ToArray()), msgId);
    }
}

/// <summary>Settings of the Redis room store.</summary>
public sealed class RoomStoreOptions
{
    /// <summary>Prefix of every key the store writes; includes the service id so services can share a Redis.</summary>
    public string KeyPrefix { get; set; } = "broker:room:";

    /// <summary>A room not written for this long is forgotten by Redis (its next activation starts a new epoch).</summary>
    public TimeSpan Ttl { get; set; } = TimeSpan.FromDays(7);
}
