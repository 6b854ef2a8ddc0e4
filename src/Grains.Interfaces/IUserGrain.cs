using System.Collections.Immutable;
using Broker.Grains.Models;

namespace Broker.Grains;

/// <summary>
/// A user within a namespace, keyed "{namespace}/{user}": knows the user's connections on every
/// front-end, so that a direct message reaches all of them wherever they are.
/// </summary>
[Alias("Broker.IUserGrain")]
public interface IUserGrain : IFrontendWatcher
{
    [Alias("Connect")]
    Task Connect(UserConnection connection);

    [Alias("Disconnect")]
    Task Disconnect(string connectionId);

    /// <summary>Queues the message to every front-end holding a connection; returns the connection count.</summary>
    [Alias("Send")]
    Task<int> Send(DirectMessage message);

    /// <summary>A front-end restates the user's connections it holds (additive, like rooms).</summary>
    [Alias("SyncFrontend")]
    Task SyncFrontend(string frontendId, IFrontendObserver frontend, ImmutableArray<string> connectionIds);

    /// <summary>
    /// Closes the user's connections on every live front-end (1008, with <paramref name="reason"/>)
    /// and returns how many were closed. Every front-end the registry lists is asked, not only
    /// those this activation knows of: the front-ends are the truth about their own sockets.
    /// </summary>
    [Alias("CloseConnections")]
    Task<int> CloseConnections(string reason);
}
