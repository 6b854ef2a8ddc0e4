using System.Collections.Immutable;
using Broker.Grains.Models;
using Microsoft.Extensions.Logging;

namespace Broker.Grains;

/// <summary>
/// A user of one namespace: which connections it has on which front-ends. Direct messages go
/// through one ordered queue per front-end, like room events, so a sender's messages arrive in
/// the order sent and a dead front-end delays nobody else.
/// </summary>
public sealed partial class UserGrain : Grain, IUserGrain
{
    private readonly ILogger<UserGrain> _logger;
    private readonly Dictionary<string, string> _frontendByConnection = new(StringComparer.Ordinal);
    private readonly Dictionary<string, FrontendQueue<DirectMessage>> _frontends = new(StringComparer.Ordinal);
    private string _namespace = string.Empty;
    private string _user = string.Empty;

    public UserGrain(ILogger<UserGrain> logger) => _logger = logger;

    public override Task OnActivateAsync(CancellationToken cancellationToken)
    {
        (_namespace, _user) = GrainKeys.Split(this.GetPrimaryKeyString());
        return Task.CompletedTask;
    }

    public Task Connect(UserConnection connection)
    {
        Add(connection.ConnectionId, connection.FrontendId, connection.Frontend);
        return Task.CompletedTask;
    }

    public Task Disconnect(string connectionId)
    {
        if (_frontendByConnection.Remove(connectionId, out var frontendId)
            && _frontends.TryGetValue(frontendId, out var queue)
            && --queue.MemberCount == 0
            && queue.IsIdle)
        {
            _frontends.Remove(frontendId);
        }

        return Task.CompletedTask;
    }

    public Task<int> Send(DirectMessage message)
    {
        foreach (var queue in _frontends.Values)
        {
            if (queue.MemberCount > 0)
            {
                queue.Enqueue(message);
            }
        }

        return Task.FromResult(_frontendByConnection.Count);
    }

    public Task SyncFrontend(string frontendId, IFrontendObserver frontend, ImmutableArray<string> connectionIds)
    {
        foreach (var connectionId in connectionIds)
        {
            Add(connectionId, frontendId, frontend);
        }

        return Task.CompletedTask;
    }

    private void Add(string connectionId, string frontendId, IFrontendObserver observer)
    {
        if (_frontendByConnection.ContainsKey(connectionId))
        {
            return;
        }

        if (!_frontends.TryGetValue(frontendId, out var queue))
        {
            queue = new FrontendQueue<DirectMessage>(frontendId, observer, SendAsync, OnFrontendFailed, OnFrontendIdle);
            _frontends[frontendId] = queue;
        }

        queue.Observer = observer;
        queue.MemberCount++;
        _frontendByConnection[connectionId] = frontendId;
    }

    private Task SendAsync(IFrontendObserver observer, ImmutableArray<DirectMessage> messages) =>
        observer.DeliverDirect(new DirectDelivery(_namespace, _user, messages));

    private void OnFrontendIdle(FrontendQueue<DirectMessage> queue)
    {
        if (queue.MemberCount == 0 && _frontends.TryGetValue(queue.FrontendId, out var current) && ReferenceEquals(current, queue))
        {
            _frontends.Remove(queue.FrontendId);
        }
    }

    private void OnFrontendFailed(FrontendQueue<DirectMessage> queue, Exception exception)
    {
        LogFrontendFailed(_logger, queue.FrontendId, _namespace, _user, exception);
        if (_frontends.TryGetValue(queue.FrontendId, out var current) && ReferenceEquals(current, queue))
        {
            _frontends.Remove(queue.FrontendId);
            foreach (var connectionId in _frontendByConnection.Where(c => c.Value == queue.FrontendId).Select(c => c.Key).ToList())
            {
                _frontendByConnection.Remove(connectionId);
            }
        }
    }

    [LoggerMessage(Level = LogLevel.Warning, Message = "Front-end {FrontendId} did not take direct messages for {Namespace}/{User}; its connections were dropped")]
    private static partial void LogFrontendFailed(ILogger logger, string frontendId, string @namespace, string user, Exception exception);
}
