namespace Broker.Frontend.Connections;

/// <summary>A token bucket: <c>perSecond</c> frames sustained, <c>burst</c> at once. Used by one receive loop only.</summary>
public sealed class RateLimiter : Broker.Transport.IControlFrameBudget
{
    private readonly TimeProvider _time;
    private readonly double _perTick;
    private readonly double _burst;
    private double _tokens;
    private long _last;

    public RateLimiter(TimeProvider time, int perSecond, int burst)
    {
        _time = time;
        _perTick = perSecond / (double)time.TimestampFrequency;
        _burst = Math.Max(1, burst);
        _tokens = _burst;
        _last = time.GetTimestamp();
        Enabled = perSecond > 0;
    }

    public bool Enabled { get; }

    public bool TryTake()
    {
        if (!Enabled)
        {
            return true;
        }

        var now = _time.GetTimestamp();
        _tokens = Math.Min(_burst, _tokens + ((now - _last) * _perTick));
        _last = now;
        if (_tokens < 1)
        {
            return false;
        }

        _tokens--;
        return true;
    }
}
