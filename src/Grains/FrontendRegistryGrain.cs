using System.Collections.Immutable;
using Broker.Grains.Models;
using Microsoft.Extensions.Logging;

namespace Broker.Grains;

/// <summary>
/// Front-end leases (see <see cref="IFrontendRegistryGrain"/>). In memory: when its activation
/// is lost, every front-end's next renewal answers "unknown", and the front-ends restate their
/// members, which also renews every watch.
/// </summary>
public sealed partial class FrontendRegistryGrain : Grain, IFrontendRegistryGrain
{
    /// <summary>How often expired leases are looked for.</summary>
    public static readonly TimeSpan SweepInterval = TimeSpan.FromMilliseconds(500);

    /// <summary>
    /// How long a front-end that is watched but has not renewed yet (it just started, or this
    /// registry was just rebuilt) may take to renew before it is declared lost.
    /// </summary>
    public static readonly TimeSpan UnknownGrace = TimeSpan.FromSeconds(10);

    /// <summary>
    /// A new activation (the old one was lost with its silo) knows no front-end until each has
    /// renewed. Front-ends renew every 2 s and say how many front-ends they knew; until that
    /// many have renewed — for at most this long after activation — GetLive waits: a room
    /// rebuilt meanwhile would otherwise miss members and lose their messages. As long as a
    /// lease: right after a silo dies a front-end's renewals may be slow to get through, and a
    /// front-end that has not renewed for this long would be declared lost anyway.
    /// </summary>
    public static readonly TimeSpan WarmUp = TimeSpan.FromSeconds(6);

    private static readonly TimeSpan WarmUpPoll = TimeSpan.FromMilliseconds(50);

    private readonly Dictionary<string, Entry> _frontends = new(StringComparer.Ordinal);
    private readonly TimeProvider _time;
    private readonly ILogger<FrontendRegistryGrain> _logger;
    private IGrainTimer? _sweep;
    private DateTimeOffset _activatedAt;
    private int _expectedFrontends = -1;

    public FrontendRegistryGrain(TimeProvider time, ILogger<FrontendRegistryGrain> logger)
    {
        _time = time;
        _logger = logger;
    }

    public override Task OnActivateAsync(CancellationToken cancellationToken)
    {
        _activatedAt = _time.GetUtcNow();
        return Task.CompletedTask;
    }

    public Task<RenewResult> Renew(FrontendLease lease)
    {
        StartSweeping();
        _expectedFrontends = Math.Max(_expectedFrontends, lease.KnownFrontends);
        var expires = _time.GetUtcNow() + lease.Ttl;
        if (_frontends.TryGetValue(lease.FrontendId, out var entry) && entry.Lease is not null)
        {
            entry.Lease = lease;
            entry.Expires = expires;
            return Task.FromResult(new RenewResult(Fresh: false, LeasedCount));
        }

        if (entry is null)
        {
            _frontends[lease.FrontendId] = new Entry(lease, expires);
        }
        else
        {
            entry.Lease = lease;
            entry.Expires = expires;
        }

        LogFrontendJoined(_logger, lease.FrontendId);
        return Task.FromResult(new RenewResult(Fresh: true, LeasedCount));
    }

    private int LeasedCount => _frontends.Values.Count(e => e.Lease is not null);

    public Task Leave(string frontendId)
    {
        if (_frontends.Remove(frontendId))
        {
            LogFrontendLeft(_logger, frontendId);
        }

        return Task.CompletedTask;
    }

    public async Task<ImmutableArray<FrontendLease>> GetLive()
    {
        // GetLive interleaves: renewals keep coming in while this waits.
        while ((_expectedFrontends < 0 || LeasedCount < _expectedFrontends) && _time.GetUtcNow() - _activatedAt < WarmUp)
        {
            await Task.Delay(WarmUpPoll, _time);
        }

        return _frontends.Values.Where(e => e.Lease is not null).Select(e => e.Lease!).ToImmutableArray();
    }

    public Task Watch(string frontendId, IFrontendWatcher watcher)
    {
        StartSweeping();
        if (!_frontends.TryGetValue(frontendId, out var entry))
        {
            // Not renewed yet: it has a grace period to do so; if it never does, it is lost.
            entry = new Entry(null, _time.GetUtcNow() + UnknownGrace);
            _frontends[frontendId] = entry;
        }

        entry.Watchers.Add(watcher);
        return Task.CompletedTask;
    }

    public Task Unwatch(string frontendId, IFrontendWatcher watcher)
    {
        if (_frontends.TryGetValue(frontendId, out var entry))
        {
            entry.Watchers.Remove(watcher);
        }

        return Task.CompletedTask;
    }

    private void StartSweeping() =>
        _sweep ??= this.RegisterGrainTimer(Sweep, new GrainTimerCreationOptions(SweepInterval, SweepInterval) { KeepAlive = true });

    private Task Sweep(CancellationToken cancellationToken)
    {
        var now = _time.GetUtcNow();
        List<string>? lost = null;
        foreach (var (id, entry) in _frontends)
        {
            if (entry.Expires < now)
            {
                (lost ??= []).Add(id);
            }
        }

        foreach (var id in lost ?? [])
        {
            _frontends.Remove(id, out var entry);
            LogFrontendLost(_logger, id, entry!.Watchers.Count);
            foreach (var watcher in entry.Watchers)
            {
                _ = watcher.FrontendLost(id);
            }
        }

        return Task.CompletedTask;
    }

    [LoggerMessage(EventId = 2100, Level = LogLevel.Information, Message = "Front-end {FrontendId} joined the cluster")]
    private static partial void LogFrontendJoined(ILogger logger, string frontendId);

    [LoggerMessage(EventId = 2101, Level = LogLevel.Information, Message = "Front-end {FrontendId} left the cluster")]
    private static partial void LogFrontendLeft(ILogger logger, string frontendId);

    [LoggerMessage(EventId = 2102, Level = LogLevel.Warning, Message = "Front-end {FrontendId} lost (lease expired); telling {Watchers} rooms and users")]
    private static partial void LogFrontendLost(ILogger logger, string frontendId, int watchers);

    /// <summary>A front-end's lease (null until its first renewal) and who to tell when it runs out.</summary>
    private sealed class Entry(FrontendLease? lease, DateTimeOffset expires)
    {
        public FrontendLease? Lease { get; set; } = lease;

        public DateTimeOffset Expires { get; set; } = expires;

        public HashSet<IFrontendWatcher> Watchers { get; } = [];
    }
}
