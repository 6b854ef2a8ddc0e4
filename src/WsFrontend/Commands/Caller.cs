using Broker.Frontend.Connections;
using Broker.Frontend.Options;
using Broker.Grains.Models;

namespace Broker.Frontend.Commands;

/// <summary>
/// Who a command comes from: a client connection (its user, its rooms, its grants), or the
/// server's HTTP API (the user "server", trusted: no client rule applies to it).
/// </summary>
public sealed class Caller
{
    private Caller(string ns, NamespaceOptions options, string user, ClientConnection? connection, RoomPolicy policy)
    {
        Namespace = ns;
        Options = options;
        User = user;
        Connection = connection;
        Policy = policy;
    }

    /// <summary>The name the server API's messages come from; no client may claim it.</summary>
    public const string ServerUser = "server";

    public string Namespace { get; }

    public NamespaceOptions Options { get; }

    public string User { get; }

    /// <summary>The client connection asking; null for the server API.</summary>
    public ClientConnection? Connection { get; }

    public RoomPolicy Policy { get; }

    /// <summary>The server API: every client rule (clientPublish, membership, grants) is for clients only.</summary>
    public bool IsServer => Connection is null;

    /// <summary>For logs: the connection's id, or "api".</summary>
    public string Id => Connection?.Id ?? "api";

    public bool IsMemberOf(string room) => Connection?.Rooms.ContainsKey(room) ?? false;

    public static Caller For(ClientConnection connection) =>
        new(connection.Namespace, connection.Options, connection.User, connection, connection.Policy);

    public static Caller Server(string ns, NamespaceOptions options) =>
        new(ns, options, ServerUser, null, options.ToRoomPolicy());
}
