using Broker.Grains.Hosting;

namespace Broker.Grains;

/// <summary>Whether this silo takes new room and user activations (the ones clients can multiply).</summary>
public interface IActivationGate
{
    bool AdmitsNewActivations { get; }
}

/// <summary>
/// Refuses new activations while the process uses more than RefuseActivationsAbovePercent of
/// the memory it may use, measured as Orleans measures it (GC committed bytes less fragmentation,
/// over the GC's total available memory), at most once per polling period so that asking costs
/// nothing on the activation path. Rooms and users already active keep working.
/// </summary>
internal sealed class MemoryActivationGate : IActivationGate
{
    private readonly double _refuseAbove;
    private long _nextCheckAt;
    private volatile bool _admits = true;

    public MemoryActivationGate(SiloMemoryOptions options) => _refuseAbove = options.RefuseActivationsAbovePercent;

    public bool AdmitsNewActivations
    {
        get
        {
            var now = Environment.TickCount64;
            var next = Interlocked.Read(ref _nextCheckAt);
            if (now >= next
                && Interlocked.CompareExchange(ref _nextCheckAt, now + (long)SiloMemoryOptions.PollingPeriod.TotalMilliseconds, next) == next)
            {
                _admits = UsedPercent() <= _refuseAbove;
            }

            return _admits;
        }
    }

    private static double UsedPercent()
    {
        var info = GC.GetGCMemoryInfo();
        if (info.TotalAvailableMemoryBytes <= 0)
        {
            return 0;
        }

        // Before the first collection the GC has nothing to report: count the heap instead.
        var used = info.Index == 0 ? GC.GetTotalMemory(forceFullCollection: false) : info.TotalCommittedBytes - info.FragmentedBytes;
        return 100.0 * used / info.TotalAvailableMemoryBytes;
    }
}
