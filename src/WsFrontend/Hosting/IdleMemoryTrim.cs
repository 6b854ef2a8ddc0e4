using System.Diagnostics;
using Broker.Frontend.Connections;
using Broker.Frontend.Options;
using Microsoft.Extensions.Options;

namespace Broker.Frontend.Hosting;

/// <summary>
/// Gives memory back after a burst of connections, once the front-end is quiet. Opening (or
/// closing) thousands of connections allocates handshakes, grain calls and their replies; once
/// they sit idle nothing allocates, so no collection runs and that garbage stays resident —
/// about half of an idle front-end's RSS per connection (docs/performance.md, "Idle memory").
/// Every <see cref="BrokerOptions.IdleTrimInterval"/> this looks at two numbers: whether any
/// collection ran since its last look (none: the process allocates less than a gen0 budget per
/// interval, i.e. it is quiet) and how far the connection count moved since the last trim. Quiet
/// and moved by at least <see cref="BrokerOptions.IdleTrimConnections"/>: one full, compacting
/// collection that returns free memory to the system (<see cref="GCCollectionMode.Aggressive"/>).
/// Under traffic collections run anyway and nothing is done; a steady count is never trimmed twice.
/// </summary>
public sealed partial class IdleMemoryTrim(FrontendNode node, IOptions<BrokerOptions> options, ILogger<IdleMemoryTrim> logger) : BackgroundService
{
    private readonly BrokerOptions _options = options.Value;

    protected override async Task ExecuteAsync(CancellationToken stoppingToken)
    {
        if (_options.IdleTrimInterval <= TimeSpan.Zero)
        {
            return;
        }

        using var timer = new PeriodicTimer(_options.IdleTrimInterval);
        var collections = GC.CollectionCount(0);
        var trimmedAt = node.ConnectionCount;
        try
        {
            while (await timer.WaitForNextTickAsync(stoppingToken))
            {
                var now = GC.CollectionCount(0);
                var connections = node.ConnectionCount;
                if (now == collections && Math.Abs(connections - trimmedAt) >= _options.IdleTrimConnections)
                {
                    var before = Environment.WorkingSet;
                    var clock = Stopwatch.StartNew();
                    GC.Collect(2, GCCollectionMode.Aggressive, blocking: true, compacting: true);
                    LogTrimmed(logger, connections - trimmedAt, connections, before / (1024.0 * 1024), Environment.WorkingSet / (1024.0 * 1024), clock.Elapsed.TotalMilliseconds);
                    trimmedAt = connections;
                }

                collections = GC.CollectionCount(0);
            }
        }
        catch (OperationCanceledException)
        {
            // Stopping.
        }
    }

    [LoggerMessage(EventId = 1040, Level = LogLevel.Debug, Message = "Idle after the connection count moved by {Change} (now {Connections}): a full collection took the working set from {BeforeMb:0.0} MB to {AfterMb:0.0} MB in {Ms:0.0} ms")]
    private static partial void LogTrimmed(ILogger logger, int change, int connections, double beforeMb, double afterMb, double ms);
}
