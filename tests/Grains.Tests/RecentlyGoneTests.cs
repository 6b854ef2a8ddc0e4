namespace Broker.Grains.Tests;

public sealed class RecentlyGoneTests
{
    [Fact]
    public void Add_ThenForget_NoLongerContained()
    {
        var gone = new RecentlyGone();
        gone.Add("c1");
        Assert.True(gone.Contains("c1"));
        Assert.False(gone.Contains("c2"));

        gone.Forget("c1");

        Assert.False(gone.Contains("c1"));
    }

    [Fact]
    public void Add_MoreThanMaxEntries_ForgetsTheOldestFirst()
    {
        var gone = new RecentlyGone();
        for (var i = 0; i <= RecentlyGone.MaxEntries; i++)
        {
            gone.Add($"c{i}");
        }

        Assert.Equal(RecentlyGone.MaxEntries, gone.Count);
        Assert.False(gone.Contains("c0"));
        Assert.True(gone.Contains("c1"));
        Assert.True(gone.Contains($"c{RecentlyGone.MaxEntries}"));
    }

    [Fact]
    public void Add_AgainAfterForget_TheStaleFirstEntryEvictsNothing()
    {
        var gone = new RecentlyGone();
        gone.Add("c0");
        gone.Forget("c0");
        for (var i = 1; i < RecentlyGone.MaxEntries; i++)
        {
            gone.Add($"c{i}");
        }

        gone.Add("c0");
        gone.Add("one-more");

        // c0's first entry is first in line but stale: the eviction passes it and takes c1.
        Assert.True(gone.Contains("c0"));
        Assert.False(gone.Contains("c1"));
        Assert.True(gone.Contains("c2"));
        Assert.Equal(RecentlyGone.MaxEntries, gone.Count);
    }
}
