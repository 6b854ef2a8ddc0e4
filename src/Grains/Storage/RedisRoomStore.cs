using System.Buffers.Binary;
using System.Text;
using Broker.Grains.Models;
using StackExchange.Redis;

namespace Broker.Grains.Storage;

/// <summary>
/// Room state in Redis, two keys per room:
/// "{prefix}{room}:meta" (hash: epoch, seq) and "{prefix}{room}:log" (list: the history window,
/// oldest first). A batch is appended by one script (atomic, one round trip for any number of
/// messages: group commit) conditioned on the stored epoch and seq, so a stale or duplicate
/// activation can never write.
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

        // And on the seq this batch follows: a second activation of the room (for a moment,
        // after a silo failure) can never commit the same seq twice.
        var previous = batch[0].Message.Seq - 1;

        // Only what will be kept is pushed: a batch bigger than the window (in messages or
        // bytes) does not pass through Redis' memory first.
        var pushed = keep > 0 ? Math.Min(keep, batch.Count) : 0;
        var arguments = new RedisValue[AppendFixedArguments + pushed];
        arguments[0] = epoch;
        arguments[1] = previous;
        arguments[2] = batch[^1].Message.Seq;
        arguments[3] = keep;
        arguments[4] = (long)_options.Ttl.TotalMilliseconds;
        for (var i = 0; i < pushed; i++)
        {
            arguments[AppendFixedArguments + i] = Encode(batch[batch.Count - pushed + i]);
        }

        RedisResult result;
        try
        {
            result = await db.ScriptEvaluateAsync(AppendScript, [meta, log], arguments);
        }
        catch (RedisException ex)
        {
            throw new RoomStoreException($"Could not commit {batch.Count} messages of room {roomKey}: {ex.GetType().Name}: {ex.Message}");
        }

        if ((long)result != 1)
        {
            throw new RoomStoreException($"Room {roomKey} moved on (another activation committed in epoch {epoch}); this one reloads.");
        }
    }

    private const int AppendFixedArguments = 5;

    /// <summary>
    /// The commit of a batch, atomic in Redis and one round trip: only when the stored epoch is
    /// the activation's and the stored seq is the one the batch follows (none for the first),
    /// the seq moves to the batch's last, the kept messages are pushed and the log trimmed to
    /// the window, and both keys' expiry is renewed. 1 when committed, 0 when the room moved on.
    /// (A transaction with conditions cost two round trips — WATCH and the conditions' reads,
    /// then MULTI/EXEC — and held the connection's writes for all rooms in between.)
    /// KEYS: meta, log. ARGV: epoch, previous seq (0: none), last seq, keep, ttl in ms, messages.
    /// </summary>
    private const string AppendScript = """
        if redis.call('HGET', KEYS[1], 'epoch') ~= ARGV[1] then return 0 end
        local seq = redis.call('HGET', KEYS[1], 'seq')
        if ARGV[2] == '0' then
          if seq then return 0 end
        elseif seq ~= ARGV[2] then
          return 0
        end
        redis.call('HSET', KEYS[1], 'seq', ARGV[3])
        if tonumber(ARGV[4]) > 0 then
          for i = 6, #ARGV, 1000 do
            redis.call('RPUSH', KEYS[2], unpack(ARGV, i, math.min(i + 999, #ARGV)))
          end
          redis.call('LTRIM', KEYS[2], -tonumber(ARGV[4]), -1)
          redis.call('PEXPIRE', KEYS[2], ARGV[5])
        else
          redis.call('DEL', KEYS[2])
        end
        redis.call('PEXPIRE', KEYS[1], ARGV[5])
        return 1
        """;

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
