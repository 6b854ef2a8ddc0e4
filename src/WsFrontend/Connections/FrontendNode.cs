using System.Collections.Concurrent;
using Broker.Frontend.Options;
using Broker.Grains;
using Microsoft.Extensions.Options;

namespace Broker.Frontend.Connections;

/// <summary>
/// This front-end process: its id, its connections and local indexes, and the one observer
/// reference that rooms and users deliver to. The observer object is held here for the life of
/// the process, because Orleans only holds observers weakly.
/// </summary>
public sealed class FrontendNode
{
    private readonly IGrainFactory _grains;
    private readonly Lazy<IFrontendObserver> _reference;
    private readonly ConcurrentDictionary<string, ClientConnection> _connections = new(StringComparer.Ordinal);
    private readonly ConcurrentDictionary<OwedLeave, byte> _owedLeaves = new();
    private long _connectionCounter;

    public FrontendNode(IGrainFactory grains, IOptions<BrokerOptions> options, ILogger<FrontendObserver> observerLogger)
    {
        _grains = grains;
        Id = options.Value.NodeId is { Length: > 0 } id ? id : "fe-" + Guid.NewGuid().ToString("N")[..8];
        Observer = new FrontendObserver(Rooms, Users, grains, observerLogger);
        _reference = new Lazy<IFrontendObserver>(() => _grains.CreateObjectReference<IFrontendObserver>(Observer));
    }

    public string Id { get; }

    /// <summary>"{namespace}/{room}" → local memberships.</summary>
    public LocalIndex<RoomMembership> Rooms { get; } = new();

    /// <summary>"{namespace}/{user}" → local connections.</summary>
    public LocalIndex<ClientConnection> Users { get; } = new();

    public FrontendObserver Observer { get; }

    /// <summary>The reference grains call; created on first use, once the cluster is up.</summary>
    public IFrontendObserver Reference => _reference.Value;

    public int ConnectionCount => _connections.Count;

    /// <summary>Leaves the cluster has not confirmed yet (it was unreachable): retried by the heartbeat.</summary>
    public ICollection<OwedLeave> OwedLeaves => _owedLeaves.Keys;

    /// <summary>Remembers a leave to retry: without it a room would keep a ghost member forever.</summary>
    public void Owe(OwedLeave leave) => _owedLeaves.TryAdd(leave, 0);

    public void Settle(OwedLeave leave) => _owedLeaves.TryRemove(leave, out _);

    public string NextConnectionId() =>
        string.Concat("c-", Id.StartsWith("fe-", StringComparison.Ordinal) ? Id[3..] : Id, "-", Interlocked.Increment(ref _connectionCounter).ToString(System.Globalization.CultureInfo.InvariantCulture));

    public void Register(ClientConnection connection) => _connections[connection.Id] = connection;

    public void Unregister(ClientConnection connection) => _connections.TryRemove(connection.Id, out _);

    /// <summary>Asks every connection to close and returns when their handlers have finished.</summary>
    public Task CloseAllAsync(System.Net.WebSockets.WebSocketCloseStatus status, string reason)
    {
        var all = _connections.Values.ToArray();
        foreach (var connection in all)
        {
            connection.Close(status, reason);
        }

        return Task.WhenAll(all.Select(c => c.Finished));
    }
}

/// <summary>A connection that must still be removed from a room (IsRoom) or a user grain, by grain key.</summary>
public readonly record struct OwedLeave(bool IsRoom, string Key, string ConnectionId)
{
    public Task SendAsync(IGrainFactory grains) => IsRoom
        ? grains.Ref<IRoomGrain>(Key).Leave(ConnectionId)
        : grains.Ref<IUserGrain>(Key).Disconnect(ConnectionId);
}
