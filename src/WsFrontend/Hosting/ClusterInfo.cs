using Broker.Frontend.Commands;
using Broker.Frontend.Connections;
using Broker.Frontend.Options;
using Broker.Frontend.Protocol;
using Broker.Grains;
using Microsoft.Extensions.Options;

namespace Broker.Frontend.Hosting;

/// <summary>
/// What the server API's GET /api/info shows: this front-end, the live front-ends (from the
/// registry's leases, which carry each one's connection count), and the active silos with the
/// room and user grains active on each (Orleans' management grain). The same calls work in
/// embedded mode (one silo, this process) and against a cluster.
/// </summary>
public sealed partial class ClusterInfo
{
    private static readonly string RoomGrainType = typeof(RoomGrain).FullName!;
    private static readonly string UserGrainType = typeof(UserGrain).FullName!;

    private readonly FrontendNode _node;
    private readonly IGrainFactory _grains;
    private readonly BrokerOptions _options;
    private readonly ILogger<ClusterInfo> _logger;

    public ClusterInfo(FrontendNode node, IGrainFactory grains, IOptions<BrokerOptions> options, ILogger<ClusterInfo> logger)
    {
        _node = node;
        _grains = grains;
        _options = options.Value;
        _logger = logger;
    }

    public async Task<Outcome<InfoReply>> GetAsync()
    {
        try
        {
            var management = _grains.GetGrain<IManagementGrain>(0);
            var frontends = _grains.GetGrain<IFrontendRegistryGrain>(IFrontendRegistryGrain.Key).GetLive();
            var hosts = management.GetDetailedHosts(onlyActive: true);
            var grains = management.GetSimpleGrainStatistics();
            await Task.WhenAll(frontends, hosts, grains).WaitAsync(_options.ClusterCallTimeout);

            var self = _node.ConnectionCount;
            var listed = frontends.Result
                .Select(lease => new FrontendInfo(lease.FrontendId, lease.FrontendId == _node.Id ? self : lease.Connections))
                .ToList();
            if (!listed.Exists(f => f.Id == _node.Id))
            {
                // Not renewed yet (it just started, or the registry was just rebuilt): it is alive all the same.
                listed.Add(new FrontendInfo(_node.Id, self));
            }

            var silos = hosts.Result
                .OrderBy(host => host.SiloAddress.ToParsableString(), StringComparer.Ordinal)
                .Select(host => new SiloInfo(
                    host.SiloAddress.ToParsableString(),
                    host.SiloName ?? string.Empty,
                    host.Status.ToString(),
                    Activations(grains.Result, host.SiloAddress, RoomGrainType),
                    Activations(grains.Result, host.SiloAddress, UserGrainType)))
                .ToList();
            var mode = string.IsNullOrEmpty(_options.Cluster.Redis) ? "embedded" : "cluster";
            return new InfoReply(_node.Id, mode, self, [.. listed.OrderBy(f => f.Id, StringComparer.Ordinal)], silos);
        }
        catch (Exception ex) when (ClusterErrors.IsClusterUnavailable(ex))
        {
            LogUnavailable(_logger, ex.GetType().Name, ex.Message);
            return new CommandError(ErrorCodes.Unavailable, "The cluster could not answer in time; try again.");
        }
    }

    /// <summary>Activations of one grain class on one silo (the statistic names the class, with its assembly after a comma in some versions).</summary>
    private static int Activations(SimpleGrainStatistic[] statistics, SiloAddress silo, string grainType) =>
        statistics
            .Where(s => s.SiloAddress.Equals(silo) && (s.GrainType == grainType || s.GrainType.StartsWith(grainType + ",", StringComparison.Ordinal)))
            .Sum(s => s.ActivationCount);

    [LoggerMessage(EventId = 1030, Level = LogLevel.Debug, Message = "GET /api/info was answered unavailable: {ExceptionType}: {Reason}")]
    private static partial void LogUnavailable(ILogger logger, string exceptionType, string reason);
}
