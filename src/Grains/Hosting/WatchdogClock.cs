using Microsoft.Extensions.DependencyInjection;

namespace Broker.Grains.Hosting;

/// <summary>
/// The clock given to Orleans' silo watchdog (Orleans.Runtime.Watchdog, 10.4.2), whose
/// timestamps count from the watchdog's own start instead of from the machine's boot.
/// </summary>
/// <remarks>
/// The watchdog's Start() starts its platform thread before it sets the component check's
/// timestamp; the platform thread's first check (which runs at once) measures the time since that
/// still-zero timestamp, i.e. since the machine booted with the system clock (Stopwatch counts
/// CLOCK_MONOTONIC on Linux), and warns "Participant check thread has not completed for
/// &lt;uptime&gt;" whenever the new thread runs before the starting one sets the field: every start
/// on a loaded machine, as on the first <c>dotnet run</c> after a build. With this clock the first
/// timestamp the watchdog takes (the platform one, set before either thread starts) is zero, so
/// the still-zero component timestamp means "the watchdog's start" and the first check measures
/// microseconds. Differences between timestamps, all the watchdog uses, are the system clock's.
/// </remarks>
internal sealed class WatchdogClock : TimeProvider
{
    private long _origin;

    /// <summary>Orleans' internal watchdog type; null if a later Orleans renames it (then nothing changes).</summary>
    internal static readonly Type? WatchdogType = typeof(Orleans.Runtime.Silo).Assembly.GetType("Orleans.Runtime.Watchdog") is { } type
        && type.GetConstructors().Length == 1
        && type.GetConstructors()[0].GetParameters().Count(p => p.ParameterType == typeof(TimeProvider)) == 1
        ? type
        : null;

    public override long GetTimestamp()
    {
        var now = System.GetTimestamp();
        // The first call fixes the origin just before "now", so that no timestamp is ever zero
        // except an unset one.
        var origin = Interlocked.CompareExchange(ref _origin, now - 1, 0);
        return now - (origin == 0 ? now - 1 : origin);
    }

    public override long TimestampFrequency => System.TimestampFrequency;

    public override DateTimeOffset GetUtcNow() => System.GetUtcNow();

    public override TimeZoneInfo LocalTimeZone => System.LocalTimeZone;

    public override ITimer CreateTimer(TimerCallback callback, object? state, TimeSpan dueTime, TimeSpan period) =>
        System.CreateTimer(callback, state, dueTime, period);

    /// <summary>Gives the silo's watchdog its own <see cref="WatchdogClock"/> (the rest of membership keeps the system clock).</summary>
    internal static void Use(IServiceCollection services)
    {
        if (WatchdogType is not { } type)
        {
            return;
        }

        for (var i = 0; i < services.Count; i++)
        {
            if (services[i].ServiceType == type && !services[i].IsKeyedService)
            {
                services[i] = ServiceDescriptor.Singleton(type, sp => ActivatorUtilities.CreateInstance(sp, type, new WatchdogClock()));
            }
        }
    }
}
