using Broker.Grains.Storage;

namespace Broker.Grains.Tests;

public sealed class EpochTombstonesTests
{
    [Fact]
    public void TryTake_AfterAdd_ReturnsTheEpochOnce()
    {
        var tombstones = new EpochTombstones(TimeProvider.System);
        tombstones.Add("chat/a", "e1");

        Assert.True(tombstones.TryTake("chat/a", out var epoch));
        Assert.Equal("e1", epoch);
        Assert.False(tombstones.TryTake("chat/a", out _));
        Assert.False(tombstones.TryTake("chat/b", out _));
        Assert.Equal(0, tombstones.Count);
    }

    [Fact]
    public void Add_MoreThanMaxEntries_EvictsTheOldestFirst()
    {
        var tombstones = new EpochTombstones(TimeProvider.System, maxEntries: 3, TimeSpan.FromMinutes(10));
        for (var i = 0; i < 4; i++)
        {
            tombstones.Add($"chat/r{i}", $"e{i}");
        }

        Assert.Equal(3, tombstones.Count);
        Assert.False(tombstones.TryTake("chat/r0", out _));
        Assert.True(tombstones.TryTake("chat/r1", out var epoch));
        Assert.Equal("e1", epoch);
    }

    [Fact]
    public void Add_SameRoomAgain_LatestEpochKeptAndItsOldEntryEvictsNothing()
    {
        var tombstones = new EpochTombstones(TimeProvider.System, maxEntries: 3, TimeSpan.FromMinutes(10));
        tombstones.Add("chat/a", "old");
        tombstones.Add("chat/b", "b");
        tombstones.Add("chat/a", "new");

        // Four entries were added: the first (a's stale one) goes, a's latest stays.
        tombstones.Add("chat/c", "c");

        Assert.True(tombstones.TryTake("chat/a", out var epoch));
        Assert.Equal("new", epoch);
        Assert.True(tombstones.TryTake("chat/b", out _));
    }

    [Fact]
    public void Add_ChurnOnOneRoom_BookkeepingStaysWithinMaxEntries()
    {
        var tombstones = new EpochTombstones(TimeProvider.System, maxEntries: 100, TimeSpan.FromMinutes(10));
        for (var i = 0; i < 10_000; i++)
        {
            tombstones.Add("chat/churn", $"e{i}");
            tombstones.Add($"chat/other{i}", "x");
            Assert.True(tombstones.TryTake("chat/churn", out _));
        }

        Assert.True(tombstones.Count <= 100, $"{tombstones.Count} entries kept, at most 100 expected.");
        Assert.True(tombstones.QueuedEntries <= 100, $"{tombstones.QueuedEntries} queued entries, at most 100 expected.");
    }

    [Fact]
    public void TryTake_AfterTimeToLive_ReturnsNothing()
    {
        var time = new ManualTime();
        var tombstones = new EpochTombstones(time, maxEntries: 10, TimeSpan.FromMinutes(10));
        tombstones.Add("chat/a", "ea");
        time.Advance(TimeSpan.FromMinutes(9));
        tombstones.Add("chat/b", "eb");

        time.Advance(TimeSpan.FromMinutes(1));

        Assert.False(tombstones.TryTake("chat/a", out _));
        Assert.True(tombstones.TryTake("chat/b", out var epoch));
        Assert.Equal("eb", epoch);
    }

    [Fact]
    public async Task MemoryStoreLoad_AfterUnloadAtSeqZero_SameEpochOnceElseNew()
    {
        var store = new MemoryRoomStore(new EpochTombstones(TimeProvider.System));
        var first = await store.LoadAsync("chat/a");
        store.Unload("chat/a", first.Epoch, seq: 0);

        var resumed = await store.LoadAsync("chat/a");
        var next = await store.LoadAsync("chat/a");

        Assert.Equal((first.Epoch, 0L), (resumed.Epoch, resumed.Seq));
        Assert.NotEqual(first.Epoch, next.Epoch);
    }

    [Fact]
    public async Task MemoryStoreLoad_AfterUnloadWithSeqHandedOut_NewEpoch()
    {
        var store = new MemoryRoomStore(new EpochTombstones(TimeProvider.System));
        var first = await store.LoadAsync("chat/a");
        store.Unload("chat/a", first.Epoch, seq: 1);

        var next = await store.LoadAsync("chat/a");

        Assert.NotEqual(first.Epoch, next.Epoch);
    }

    [Fact]
    public async Task MemoryStoreLoad_OlderEntryLeftThenLaterActivationNumberedMessages_NewEpoch()
    {
        var store = new MemoryRoomStore(new EpochTombstones(TimeProvider.System));
        var older = await store.LoadAsync("chat/a");
        var later = await store.LoadAsync("chat/a");

        // The older activation's entry arrives after the later one loaded; the later one then went at seq 3.
        store.Unload("chat/a", older.Epoch, seq: 0);
        store.Unload("chat/a", later.Epoch, seq: 3);
        var next = await store.LoadAsync("chat/a");

        Assert.NotEqual(older.Epoch, next.Epoch);
        Assert.NotEqual(later.Epoch, next.Epoch);
    }

    private sealed class ManualTime : TimeProvider
    {
        private long _timestamp;

        public override long GetTimestamp() => _timestamp;

        public void Advance(TimeSpan by) => _timestamp += (long)(by.TotalSeconds * TimestampFrequency);
    }
}
