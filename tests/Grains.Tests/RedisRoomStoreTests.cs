using System.Text;
using Broker.Grains.Models;
using Broker.Grains.Storage;
using Broker.Grains.Tests.Infrastructure;
using StackExchange.Redis;

namespace Broker.Grains.Tests;

/// <summary>The Redis room store's commit on its own, against a real Redis: atomic, and only where the room has not moved on.</summary>
[Collection(DurableClusterCollection.Name)]
public sealed class RedisRoomStoreTests(DurableClusterFixture fixture)
{
    [Fact]
    public async Task Append_InOrder_StoredWindowSeqAndExpiry()
    {
        var (store, key) = NewStore();
        var loaded = await store.LoadAsync(key);

        await store.AppendAsync(key, loaded.Epoch, Messages(1, 3), keep: 2);
        await store.AppendAsync(key, loaded.Epoch, Messages(4, 4), keep: 2);

        var again = await store.LoadAsync(key);
        Assert.Equal(loaded.Epoch, again.Epoch);
        Assert.Equal(4, again.Seq);
        Assert.Equal([3L, 4], again.Recent.Select(m => m.Message.Seq));
        Assert.Equal("m4", again.Recent[1].MsgId);
        Assert.Equal("\"4\"", Encoding.UTF8.GetString(again.Recent[1].Message.Payload));
        var db = fixture.Redis.Connection.GetDatabase();
        Assert.InRange((await db.KeyTimeToLiveAsync($"broker:test-store:{key}:meta"))!.Value, TimeSpan.FromMinutes(59), TimeSpan.FromHours(1));
        Assert.InRange((await db.KeyTimeToLiveAsync($"broker:test-store:{key}:log"))!.Value, TimeSpan.FromMinutes(59), TimeSpan.FromHours(1));
    }

    [Fact]
    public async Task Append_StaleEpochOrSeqAlreadyCommitted_RefusedAndNothingWritten()
    {
        var (store, key) = NewStore();
        var epoch = (await store.LoadAsync(key)).Epoch;
        await store.AppendAsync(key, epoch, Messages(1, 2), keep: 10);

        // Another epoch, the same seqs again, a gap, a first batch once one is stored.
        await Assert.ThrowsAsync<RoomStoreException>(() => store.AppendAsync(key, "other-epoch", Messages(3, 3), keep: 10));
        await Assert.ThrowsAsync<RoomStoreException>(() => store.AppendAsync(key, epoch, Messages(2, 3), keep: 10));
        await Assert.ThrowsAsync<RoomStoreException>(() => store.AppendAsync(key, epoch, Messages(5, 5), keep: 10));
        await Assert.ThrowsAsync<RoomStoreException>(() => store.AppendAsync(key, epoch, Messages(1, 1), keep: 10));

        var stored = await store.LoadAsync(key);
        Assert.Equal(2, stored.Seq);
        Assert.Equal([1L, 2], stored.Recent.Select(m => m.Message.Seq));
    }

    [Fact]
    public async Task Append_KeepZero_LogDeletedSeqKept()
    {
        var (store, key) = NewStore();
        var epoch = (await store.LoadAsync(key)).Epoch;
        await store.AppendAsync(key, epoch, Messages(1, 2), keep: 10);

        await store.AppendAsync(key, epoch, Messages(3, 3), keep: 0);

        var stored = await store.LoadAsync(key);
        Assert.Equal(3, stored.Seq);
        Assert.Empty(stored.Recent);
    }

    private (RedisRoomStore Store, string Key) NewStore() =>
        (new RedisRoomStore(() => Task.FromResult<IConnectionMultiplexer>(fixture.Redis.Connection), new RoomStoreOptions { KeyPrefix = "broker:test-store:", Ttl = TimeSpan.FromHours(1) }),
         GrainKeys.Of("chat", "store-" + Guid.NewGuid().ToString("N")));

    private static List<StoredMessage> Messages(long from, long to) =>
        [.. Enumerable.Range((int)from, (int)(to - from + 1)).Select(i => new StoredMessage(new RoomMessage(i, "alice", 1000 + i, Encoding.UTF8.GetBytes($"\"{i}\"")), $"m{i}"))];
}
