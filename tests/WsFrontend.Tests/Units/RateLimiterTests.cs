using Broker.Frontend.Connections;

namespace Broker.Frontend.Tests.Units;

/// <summary>The token bucket, on a clock the test moves.</summary>
public sealed class RateLimiterTests
{
    private readonly ManualClock _clock = new();

    [Fact]
    public void TryTake_BurstThenEmpty_Refused()
    {
        var limiter = new RateLimiter(_clock, perSecond: 10, burst: 3);

        Assert.True(limiter.TryTake());
        Assert.True(limiter.TryTake());
        Assert.True(limiter.TryTake());
        Assert.False(limiter.TryTake());
    }

    [Fact]
    public void TryTake_AfterTime_RefilledAtTheRate()
    {
        var limiter = new RateLimiter(_clock, perSecond: 10, burst: 1);
        Assert.True(limiter.TryTake());
        Assert.False(limiter.TryTake());

        _clock.Advance(TimeSpan.FromMilliseconds(50));
        Assert.False(limiter.TryTake());

        _clock.Advance(TimeSpan.FromMilliseconds(50));
        Assert.True(limiter.TryTake());
        Assert.False(limiter.TryTake());
    }

    [Fact]
    public void TryTake_LongIdle_RefillsNoMoreThanTheBurst()
    {
        var limiter = new RateLimiter(_clock, perSecond: 100, burst: 5);
        for (var i = 0; i < 5; i++)
        {
            limiter.TryTake();
        }

        _clock.Advance(TimeSpan.FromHours(1));

        Assert.Equal(5, Enumerable.Range(0, 10).Count(_ => limiter.TryTake()));
    }

    [Fact]
    public void TryTake_RateZero_NeverLimits()
    {
        var limiter = new RateLimiter(_clock, perSecond: 0, burst: 0);

        Assert.False(limiter.Enabled);
        Assert.All(Enumerable.Range(0, 10_000), _ => Assert.True(limiter.TryTake()));
    }

    [Fact]
    public void TryTake_BurstBelowOne_StillLetsOneThrough()
    {
        var limiter = new RateLimiter(_clock, perSecond: 1, burst: 0);

        Assert.True(limiter.TryTake());
        Assert.False(limiter.TryTake());
    }

    private sealed class ManualClock : TimeProvider
    {
        private long _ticks;

        public override long TimestampFrequency => TimeSpan.TicksPerSecond;

        public override long GetTimestamp() => _ticks;

        public void Advance(TimeSpan by) => _ticks += by.Ticks;
    }
}
