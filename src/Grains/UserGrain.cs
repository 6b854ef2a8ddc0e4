using System.Collections.Immutable;
using Broker.Grains.Diagnostics;
using Broker.Grains.Models;
using Microsoft.Extensions.Logging;

namespace Broker.Grains;

/// <summary>
/// A user of one namespace: which connections it has on which front-ends. Direct messages go
/// through one ordered queue per front-end, like room events, so a sender's messages arrive in
/// the order sent and a dead front-end delays nobody else. A new activation asks the live
/// front-ends for the user's connections before its first direct message.
/// </summary>
public sealed partial class UserGrain : Grain, IUserGrain
{
    private readonly ILogger<UserGrain> _logger;
    private readonly Dictionary<string, string> _frontendByConnection = new(StringComparer.Ordinal);
    private readonly FrontendQueueSet<DirectMessage> _frontends;
    private readonly RecentlyGone _disconnected = new();
    private readonly IActivationGate _gate;
    private bool _refused;
    private string _namespace = string.Empty;
    private string _user = string.Empty;
    private Task? _rebuild;

    /// <summary>How long the first direct message of an activation waits for the connections to be rebuilt.</summary>
    private static readonly TimeSpan FirstSendRebuildWait = TimeSpan.FromSeconds(2);

    /// <summary>How long <see cref="CloseConnections"/> waits for one front-end's answer before counting it as closing nothing.</summary>
    internal static readonly TimeSpan FrontendCloseTimeout = TimeSpan.FromSeconds(2);

    public UserGrain(ILogger<UserGrain> logger, IActivationGate gate)
    {
        _logger = logger;
        _gate = gate;
        _frontends = new FrontendQueueSet<DirectMessage>(SendAsync, OnFrontendFailed, OnDeliveryFailed, redeliver: false, onDrained: OnDrained);
    }

    public override Task OnActivateAsync(CancellationToken cancellationToken)
    {
        (_namespace, _user) = GrainKeys.Split(this.GetPrimaryKeyString());

        // Short of memory: the calls of this activation are refused (see RoomGrain).
        _refused = !_gate.AdmitsNewActivations;
        if (!_refused)
        {
            SiloMetrics.UserActivated();
        }

        return Task.CompletedTask;
    }

    public override Task OnDeactivateAsync(DeactivationReason reason, CancellationToken cancellationToken)
    {
        if (!_refused)
        {
            SiloMetrics.UserDeactivated();
        }

        return Task.CompletedTask;
    }

    public Task Connect(UserConnection connection)
    {
        ThrowIfRefused();
        Add(connection.ConnectionId, connection.FrontendId, connection.Frontend);
        return Task.CompletedTask;
    }

    public Task Disconnect(string connectionId)
    {
        if (_refused)
        {
            this.DeactivateOnIdle();
            return Task.CompletedTask;
        }

        if (_frontendByConnection.Remove(connectionId, out var frontendId))
        {
            _disconnected.Add(connectionId);
            if (_frontends.RemoveMember(frontendId))
            {
                FrontendMembership.Unwatch(GrainFactory, frontendId, SelfReference<IFrontendWatcher>.Of(this, GrainFactory));
            }
        }

        return Task.CompletedTask;
    }

    public async Task<int> Send(DirectMessage message)
    {
        ThrowIfRefused();
        _rebuild ??= RebuildAsync();
        if (!_rebuild.IsCompleted)
        {
            // Right after a failover the registry may be warming up: wait a little, then deliver
            // to the connections known so far (direct messages are at most once); the rebuild
            // goes on and later messages reach everybody it finds.
            await Task.WhenAny(_rebuild, Task.Delay(FirstSendRebuildWait));
        }

        _frontends.Broadcast(message);
        return _frontendByConnection.Count;
    }

    public Task SyncFrontend(string frontendId, IFrontendObserver frontend, ImmutableArray<string> connectionIds)
    {
        ThrowIfRefused();
        foreach (var connectionId in connectionIds)
        {
            AddUnlessGone(connectionId, frontendId, frontend);
        }

        FrontendMembership.Watch(GrainFactory, frontendId, SelfReference<IFrontendWatcher>.Of(this, GrainFactory));
        return Task.CompletedTask;
    }

    public async Task<int> CloseConnections(string reason)
    {
        ThrowIfRefused();

        // Every live front-end, not only the ones this activation knows: an activation rebuilt
        // after a failover, or one made for a generated id, may not know them all yet, and a
        // front-end that holds none of the user's connections answers 0 at once.
        var frontends = await GrainFactory.Ref<IFrontendRegistryGrain>(IFrontendRegistryGrain.Key).GetLive().WaitAsync(FrontendMembership.RegistryTimeout);
        var closed = await Task.WhenAll(frontends.Select(frontend => CloseOnAsync(frontend, reason)));
        if (_frontendByConnection.Count == 0)
        {
            // Activated for this call alone: nothing to keep (the closed connections' own
            // Disconnect calls find their way here on their own, and end it when drained).
            this.DeactivateOnIdle();
        }

        return closed.Sum();
    }

    public Task FrontendLost(string frontendId)
    {
        if (_refused)
        {
            this.DeactivateOnIdle();
            return Task.CompletedTask;
        }

        DropFrontend(frontendId);
        return Task.CompletedTask;
    }

    /// <summary>
    /// Adds a connection that a front-end listed (a restatement, or the answer to a rebuild):
    /// unless it disconnected since that list was taken.
    /// </summary>
    private void AddUnlessGone(string connectionId, string frontendId, IFrontendObserver observer)
    {
        if (!_disconnected.Contains(connectionId))
        {
            Add(connectionId, frontendId, observer);
        }
    }

    private void Add(string connectionId, string frontendId, IFrontendObserver observer)
    {
        if (_frontendByConnection.ContainsKey(connectionId))
        {
            return;
        }

        if (_frontends.AddMember(frontendId, observer))
        {
            FrontendMembership.Watch(GrainFactory, frontendId, SelfReference<IFrontendWatcher>.Of(this, GrainFactory));
        }

        _frontendByConnection[connectionId] = frontendId;
    }

    /// <summary>
    /// A user with no connection and nothing in flight is not kept for the collection age
    /// (15 min): with connection churn those activations (one per anonymous connection) would
    /// pile up on the silos. Messages still being delivered keep it until they are (a quick
    /// reconnect then finds them in order).
    /// </summary>
    private void OnDrained() => this.DeactivateOnIdle();

    private void ThrowIfRefused()
    {
        if (_refused)
        {
            this.DeactivateOnIdle();
            throw new SiloOverloadedException();
        }
    }

    private void DropFrontend(string frontendId)
    {
        _frontends.Drop(frontendId);
        foreach (var connectionId in _frontendByConnection.Where(c => c.Value == frontendId).Select(c => c.Key).ToList())
        {
            _frontendByConnection.Remove(connectionId);
        }
    }

    /// <summary>
    /// Asks the live front-ends for this user's connections: after a failover the activation is
    /// new but the connections are not. Done once, before the first direct message, not at
    /// activation: a user grain is activated for every new user (every anonymous connection)
    /// and most never receive one; asking every front-end for each of them cost a registry
    /// call and one call per front-end per new connection. The front-ends' own restatements
    /// (on gateway loss and every heartbeat) complete the picture anyway.
    /// </summary>
    private Task RebuildAsync() =>
        FrontendMembership.RebuildAsync(
            GrainFactory,
            _logger,
            (frontend, ct) => frontend.Frontend.GetUserConnections(_namespace, _user).WaitAsync(ct),
            (frontend, connectionIds) =>
            {
                foreach (var connectionId in connectionIds)
                {
                    AddUnlessGone(connectionId, frontend.FrontendId, frontend.Frontend);
                }
            },
            CancellationToken.None);

    /// <summary>
    /// One front-end's closings; one that fails or does not answer in time (a dead front-end, or
    /// one of a version without the call, during a rolling upgrade) counts as closing none.
    /// </summary>
    private async Task<int> CloseOnAsync(FrontendLease frontend, string reason)
    {
        try
        {
            return await frontend.Frontend.CloseUserConnections(_namespace, _user, reason).WaitAsync(FrontendCloseTimeout);
        }
        catch (Exception ex)
        {
            LogCloseSkipped(_logger, frontend.FrontendId, _namespace, _user, ex.GetType().Name, ex.Message);
            return 0;
        }
    }

    private Task SendAsync(string frontendId, IFrontendObserver observer, ImmutableArray<DirectMessage> messages) =>
        observer.DeliverDirect(new DirectDelivery(_namespace, _user, messages));

    private void OnDeliveryFailed(string frontendId, Exception exception) =>
        LogDeliveryFailed(_logger, frontendId, _namespace, _user, exception.GetType().Name);

    private void OnFrontendFailed(string frontendId, Exception exception)
    {
        LogFrontendFailed(_logger, frontendId, _namespace, _user, exception);
        DropFrontend(frontendId);
    }

    [LoggerMessage(EventId = 2200, Level = LogLevel.Warning, Message = "Direct messages for {Namespace}/{User} to front-end {FrontendId} were lost ({Error})")]
    private static partial void LogDeliveryFailed(ILogger logger, string frontendId, string @namespace, string user, string error);

    [LoggerMessage(EventId = 2201, Level = LogLevel.Warning, Message = "Front-end {FrontendId} did not close the connections of {Namespace}/{User}: {ExceptionType}: {Reason}")]
    private static partial void LogCloseSkipped(ILogger logger, string frontendId, string @namespace, string user, string exceptionType, string reason);

    [LoggerMessage(EventId = 2202, Level = LogLevel.Warning, Message = "Front-end {FrontendId} did not take direct messages for {Namespace}/{User}; its connections were dropped")]
    private static partial void LogFrontendFailed(ILogger logger, string frontendId, string @namespace, string user, Exception exception);
}
