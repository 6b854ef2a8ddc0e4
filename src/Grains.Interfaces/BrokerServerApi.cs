using System.Text;
using System.Text.Json;
using Broker.Grains.Models;

namespace Broker.Grains;

/// <summary>
/// How application code inside the cluster (any grain, or any Orleans client of it) speaks in
/// rooms and to users (docs/streams.md, "Into rooms"): a publish is ordered and delivered by the
/// room exactly like a client's, and a direct message reaches the user's connections on every
/// front-end. The sender is a server identity the caller names: <c>server</c> or
/// <c>server:NAME</c>, names no client can claim (protocol.md v1.2). Arguments that the broker
/// could not deliver as they are throw <see cref="ArgumentException"/> and nothing is sent.
/// </summary>
public static class BrokerServerApi
{
    /// <summary>The server's own identity: the HTTP API's sender.</summary>
    public const string Server = "server";

    /// <summary>Server identities an application names for itself: "server:dice".</summary>
    public const string ServerPrefix = "server:";

    /// <summary>The largest <c>data</c> accepted, in UTF-8 bytes (1 MiB).</summary>
    public const int MaxDataBytes = 1024 * 1024;

    /// <summary>The longest namespace, room, user, sender or msgId (the front-ends' default MaxNameLength).</summary>
    public const int MaxNameLength = 200;

    /// <summary>
    /// Publishes <paramref name="json"/> (any JSON value: the message's <c>data</c>) to a room,
    /// and answers once the room has committed it. With a <paramref name="msgId"/> the publish is
    /// idempotent per sender: a retry with the same sender and msgId is answered with the first
    /// seq (<see cref="PublishResult.Duplicate"/>) and delivered once.
    /// The room keeps the options its front-ends last gave it (history, presence, Stream); a
    /// room no front-end has called since it was activated runs with the defaults until one does.
    /// </summary>
    public static Task<PublishResult> PublishToRoomAsync(this IGrainFactory grains, string ns, string room, string from, string json, string? msgId = null) =>
        PublishToRoomAsync(grains, ns, room, from, Encoding.UTF8.GetBytes(json ?? throw new ArgumentNullException(nameof(json))), msgId);

    /// <inheritdoc cref="PublishToRoomAsync(IGrainFactory, string, string, string, string, string?)"/>
    public static Task<PublishResult> PublishToRoomAsync(this IGrainFactory grains, string ns, string room, string from, ReadOnlySpan<byte> utf8Json, string? msgId = null)
    {
        ArgumentNullException.ThrowIfNull(grains);
        CheckNamespace(ns);
        CheckName(room, nameof(room));
        CheckSender(from);
        if (msgId is not null)
        {
            CheckName(msgId, nameof(msgId));
        }

        var data = CheckData(utf8Json);
        return grains.Ref<IRoomGrain>(GrainKeys.Of(ns, room)).Publish(new PublishRequest(from, data, msgId, Policy: null));
    }

    /// <summary>
    /// Sends <paramref name="json"/> (any JSON value) to every connection of <paramref name="user"/>
    /// in <paramref name="ns"/>, on any front-end, as a <c>direct</c> frame; returns how many
    /// connections it was queued to (0 is not an error: the user is not connected).
    /// </summary>
    public static Task<int> SendToUserAsync(this IGrainFactory grains, string ns, string user, string from, string json) =>
        SendToUserAsync(grains, ns, user, from, Encoding.UTF8.GetBytes(json ?? throw new ArgumentNullException(nameof(json))));

    /// <inheritdoc cref="SendToUserAsync(IGrainFactory, string, string, string, string)"/>
    public static Task<int> SendToUserAsync(this IGrainFactory grains, string ns, string user, string from, ReadOnlySpan<byte> utf8Json)
    {
        ArgumentNullException.ThrowIfNull(grains);
        CheckNamespace(ns);
        CheckName(user, nameof(user));
        CheckSender(from);
        var data = CheckData(utf8Json);
        var message = new DirectMessage(from, DateTimeOffset.UtcNow.ToUnixTimeMilliseconds(), data);
        return grains.Ref<IUserGrain>(GrainKeys.Of(ns, user)).Send(message);
    }

    /// <summary>"server", or "server:" and a name of visible characters.</summary>
    public static bool IsServerIdentity(string? from)
    {
        if (from is null || from.Length > MaxNameLength)
        {
            return false;
        }

        if (from == Server)
        {
            return true;
        }

        if (!from.StartsWith(ServerPrefix, StringComparison.Ordinal) || from.Length == ServerPrefix.Length)
        {
            return false;
        }

        foreach (var c in from.AsSpan(ServerPrefix.Length))
        {
            if (char.IsControl(c) || char.IsWhiteSpace(c))
            {
                return false;
            }
        }

        return true;
    }

    private static void CheckNamespace(string ns)
    {
        CheckName(ns, nameof(ns));
        if (ns.Contains('/', StringComparison.Ordinal))
        {
            throw new ArgumentException("A namespace name has no '/': pass \"chat\", not \"/chat\".", nameof(ns));
        }
    }

    private static void CheckName(string name, string parameter)
    {
        if (string.IsNullOrEmpty(name))
        {
            throw new ArgumentException($"{parameter} must not be empty.", parameter);
        }

        if (name.Length > MaxNameLength)
        {
            throw new ArgumentException($"{parameter} is longer than {MaxNameLength} characters.", parameter);
        }
    }

    private static void CheckSender(string from)
    {
        if (!IsServerIdentity(from))
        {
            throw new ArgumentException(
                "from must be a server identity: \"server\", or \"server:\" followed by a name without spaces or control characters (at most 200 characters in all); clients can never claim these.",
                nameof(from));
        }
    }

    private static byte[] CheckData(ReadOnlySpan<byte> utf8Json)
    {
        if (utf8Json.Length > MaxDataBytes)
        {
            throw new ArgumentException($"data is {utf8Json.Length} bytes; at most {MaxDataBytes} are accepted.", "data");
        }

        try
        {
            var reader = new Utf8JsonReader(utf8Json, new JsonReaderOptions { MaxDepth = 64 });
            if (!reader.Read())
            {
                throw new ArgumentException("data must be one JSON value; it is empty.", "data");
            }

            reader.Skip();
            if (reader.Read())
            {
                throw new ArgumentException("data must be one JSON value; more follows it.", "data");
            }
        }
        catch (JsonException ex)
        {
            throw new ArgumentException($"data is not valid JSON: {ex.Message}", "data", ex);
        }

        return utf8Json.ToArray();
    }
}
