using Broker.Grains.Models;

namespace Broker.Grains.Tests;

public sealed class HistoryWindowTests
{
    private const int Overhead = HistoryWindow.MessageOverheadBytes;

    [Fact]
    public void Add_OverByteBound_EvictsOldestUntilItFits()
    {
        var window = new HistoryWindow();
        window.Resize(100, maxBytes: 3 * (1000 + Overhead));

        for (var seq = 1; seq <= 10; seq++)
        {
            window.Add(Message(seq, 1000));
        }

        Assert.Equal(3, window.Count);
        Assert.Equal(8, window.OldestSeq);
        Assert.Equal(3 * (1000 + Overhead), window.Bytes);
    }

    [Fact]
    public void Add_MessageLargerThanByteBound_KeepsOnlyTheNewest()
    {
        var window = new HistoryWindow();
        window.Resize(100, maxBytes: 500);
        window.Add(Message(1, 10));
        window.Add(Message(2, 10));

        window.Add(Message(3, 5000));

        Assert.Equal(1, window.Count);
        Assert.Equal(3, window.OldestSeq);
    }

    [Fact]
    public void Add_CountBoundReachedFirst_EvictsByCountAndKeepsBytesInStep()
    {
        var window = new HistoryWindow();
        window.Resize(4, maxBytes: long.MaxValue);

        for (var seq = 1; seq <= 10; seq++)
        {
            window.Add(Message(seq, seq));
        }

        Assert.Equal(4, window.Count);
        Assert.Equal(7, window.OldestSeq);
        Assert.Equal(7 + 8 + 9 + 10 + (4 * Overhead), window.Bytes);
    }

    [Fact]
    public void Resize_SmallerByteBound_EvictsOldest()
    {
        var window = new HistoryWindow();
        window.Resize(100);
        for (var seq = 1; seq <= 10; seq++)
        {
            window.Add(Message(seq, 100));
        }

        window.Resize(100, maxBytes: 2 * (100 + Overhead));

        Assert.Equal(2, window.Count);
        Assert.Equal(9, window.OldestSeq);
    }

    [Fact]
    public void CountAfterAdding_BothBounds_MatchesWhatAddKeeps()
    {
        var window = new HistoryWindow();
        window.Resize(6, maxBytes: 5 * (100 + Overhead));
        for (var seq = 1; seq <= 3; seq++)
        {
            window.Add(Message(seq, 100));
        }

        var batch = new[] { Message(4, 100), Message(5, 300), Message(6, 100) };
        var predicted = window.CountAfterAdding(batch);
        foreach (var message in batch)
        {
            window.Add(message);
        }

        Assert.Equal(window.Count, predicted);
        Assert.Equal(4, predicted);
    }

    [Fact]
    public void After_ByteBound_CutsShortWithMoreAndAlwaysHoldsOne()
    {
        var window = new HistoryWindow();
        window.Resize(100);
        for (var seq = 1; seq <= 10; seq++)
        {
            window.Add(Message(seq, 1000));
        }

        var page = window.After(2, limit: 100, maxBytes: 3 * (1000 + Overhead), out var more);
        var tiny = window.After(2, limit: 100, maxBytes: 1, out var tinyMore);
        var rest = window.After(7, limit: 100, maxBytes: long.MaxValue, out var restMore);

        Assert.Equal([3L, 4, 5], page.Select(m => m.Seq));
        Assert.True(more);
        Assert.Equal([3L], tiny.Select(m => m.Seq));
        Assert.True(tinyMore);
        Assert.Equal([8L, 9, 10], rest.Select(m => m.Seq));
        Assert.False(restMore);
    }

    [Fact]
    public void After_Limit_CutsShortWithMoreOnlyWhenMessagesFollow()
    {
        var window = new HistoryWindow();
        window.Resize(100);
        for (var seq = 1; seq <= 5; seq++)
        {
            window.Add(Message(seq, 10));
        }

        var cut = window.After(0, limit: 3, maxBytes: long.MaxValue, out var cutMore);
        var exact = window.After(2, limit: 3, maxBytes: long.MaxValue, out var exactMore);

        Assert.Equal([1L, 2, 3], cut.Select(m => m.Seq));
        Assert.True(cutMore);
        Assert.Equal([3L, 4, 5], exact.Select(m => m.Seq));
        Assert.False(exactMore);
    }

    [Fact]
    public void Latest_ByteBound_StartsAtTheOldestOfTheLatestAndSaysMore()
    {
        var window = new HistoryWindow();
        window.Resize(100);
        for (var seq = 1; seq <= 10; seq++)
        {
            window.Add(Message(seq, 1000));
        }

        var page = window.Latest(limit: 5, maxBytes: 2 * (1000 + Overhead), out var more);
        var whole = window.Latest(limit: 5, maxBytes: long.MaxValue, out var wholeMore);

        Assert.Equal([6L, 7], page.Select(m => m.Seq));
        Assert.True(more);
        Assert.Equal([6L, 7, 8, 9, 10], whole.Select(m => m.Seq));
        Assert.False(wholeMore);
    }

    private static RoomMessage Message(long seq, int bytes) => new(seq, "alice", 0, new byte[bytes]);
}
