using System.Text;
using Broker.Grains.Models;

namespace Broker.Grains;

/// <summary>
/// How application code inside the cluster (any grain, or any Orleans client of it) speaks in
/// rooms and to users (docs/streams.md, "Into rooms: the server API"): a publish is ordered,
/// stored and delivered by the room exactly like a client's, and a direct message reaches the
/// user's connections on every front-end. The sender is a server identity the caller names:
/// <c>server</c> or <c>server:NAME</c>, names no client can claim (protocol.md v1.2).
/// An argument the broker could not deliver as it is throws <see cref="ArgumentException"/>
/// (<see cref="ArgumentNullException"/> for a null) before anything is sent, with a sentence
/// saying what is wrong.
/// </summary>
/// <remarks>
/// The data is JSON, checked by the rules a client frame's <c>data</c> meets: valid UTF-8
/// throughout (inside strings too), one JSON value, at most <see cref="MaxDepth"/> levels deep,
/// no lone surrogate escape (<c>"\ud800"</c>), at most <see cref="MaxDataBytes"/> bytes; the
/// whitespace around it is dropped. Build it with a serializer
/// (<c>JsonSerializer.SerializeToUtf8Bytes(new { text }, JsonSerializerOptions.Web)</c>), never
/// by pasting a user's text into a string: the text could close the string and add fields.
/// There is deliberately no overload taking an object: a <c>string</c> argument would bind to
/// the JSON-text overload and a <c>byte[]</c> to the object one (sent as base64), and the
/// broker cannot know the naming policy the application's clients expect.
/// </remarks>
public static class BrokerServerApi
{
    /// <summary>The server's own identity: the HTTP API's sender.</summary>
    public const string Server = "server";

    /// <summary>Server identities an application names for itself: "server:dice".</summary>
    public const string ServerPrefix = "server:";

    /// <summary>
    /// The largest <c>data</c> accepted, in UTF-8 bytes: 64 KiB, the front-ends' default
    /// <c>MaxFrameBytes</c> and so the largest body the HTTP API and a client's publish take.
    /// Larger messages would make the byte budgets misbehave: one would fill most of a member's
    /// outbox (1 MiB by default, 1013 past it) and a room's history (1 MiB).
    /// </summary>
    public const int MaxDataBytes = 64 * 1024;

    /// <summary>The deepest nesting of the data accepted (as on the socket path).</summary>
    public const int MaxDepth = 64;

    /// <summary>The longest namespace, room, user, sender or msgId (the front-ends' default MaxNameLength).</summary>
    public const int MaxNameLength = 200;

    /// <summary>
    /// Publishes <paramref name="json"/> (one JSON value: the message's <c>data</c>) to a room
    /// and answers once the room has committed it: members receive it as a <c>message</c> with
    /// <c>from</c> = <paramref name="from"/>, in the room's seq order, kept in its history and
    /// recovered like any message. With a <paramref name="msgId"/> the publish is idempotent per
    /// sender: a retry with the same sender and msgId is answered with the first seq
    /// (<see cref="PublishResult.Duplicate"/>) and delivered once, for as long as the room
    /// remembers the msgId (its latest 1024 msgIds or History of them, whichever is more; with
    /// the memory store, within the epoch). Another sender's msgId is another message.
    /// </summary>
    /// <param name="grains">A grain's <c>GrainFactory</c>, or an <c>IClusterClient</c>.</param>
    /// <param name="ns">The namespace, as configured: <c>"chat"</c>; the one served at <c>/</c> is <c>"default"</c>.</param>
    /// <param name="room">The room, 1 to <see cref="MaxNameLength"/> characters.</param>
    /// <param name="from">The sender: <c>"server"</c> or <c>"server:NAME"</c> (<see cref="IsServerIdentity"/>).</param>
    /// <param name="json">The data: one JSON value, such as <c>{"text":"hi"}</c> or <c>"\"hi\""</c>.</param>
    /// <param name="msgId">Optional, 1 to <see cref="MaxNameLength"/> characters: makes retries safe.</param>
    /// <param name="cancellationToken">
    /// Stops the wait, not the publish: once sent, a publish may still be committed and
    /// delivered. Publish again with the same msgId to learn its seq. Already cancelled: nothing is sent.
    /// </param>
    /// <remarks>
    /// The room keeps the namespace options its front-ends last gave it (history, presence,
    /// Stream). A room no front-end has called since it was activated runs with the defaults
    /// (100 messages and 1 MiB of history, presence on, Stream off) until a front-end does: a
    /// client's join or publish, or the heartbeat its front-ends send for rooms with members.
    /// The namespace is not checked against the front-ends' configuration (the cluster does not
    /// know it): a misspelt one is a room no client can join.
    /// Fails like any grain call when the room cannot commit (<see cref="RoomStoreException"/>,
    /// <see cref="SiloOverloadedException"/>) or does not answer in time (<see cref="TimeoutException"/>):
    /// retry with the same msgId.
    /// </remarks>
    public static Task<PublishResult> PublishToRoomAsync(this IGrainFactory grains, string ns, string room, string from, string json, string? msgId = null, CancellationToken cancellationToken = default)
    {
        var key = CheckPublish(grains, ns, room, from, msgId);
        return SendPublish(grains, key, new PublishRequest(from, CheckData(json, nameof(json)), msgId, Policy: null), cancellationToken);
    }

    /// <inheritdoc cref="PublishToRoomAsync(IGrainFactory, string, string, string, string, string?, CancellationToken)"/>
    /// <param name="utf8Json">The data: one JSON value in UTF-8 (what <c>JsonSerializer.SerializeToUtf8Bytes</c> makes).</param>
    public static Task<PublishResult> PublishToRoomAsync(this IGrainFactory grains, string ns, string room, string from, ReadOnlySpan<byte> utf8Json, string? msgId = null, CancellationToken cancellationToken = default)
    {
        var key = CheckPublish(grains, ns, room, from, msgId);
        return SendPublish(grains, key, new PublishRequest(from, CheckData(utf8Json, nameof(utf8Json)), msgId, Policy: null), cancellationToken);
    }

    /// <summary>
    /// Sends <paramref name="json"/> (one JSON value) to every connection of <paramref name="user"/>
    /// in <paramref name="ns"/>, on any front-end, as a <c>direct</c> frame with <c>from</c> =
    /// <paramref name="from"/>; returns how many connections it was queued to (0 is not an
    /// error: the user is not connected, and nothing is kept for later). Not stored, not
    /// numbered, no msgId: a retry is delivered again.
    /// </summary>
    /// <param name="user">
    /// The user as the broker names it: a token's <c>sub</c>, a <c>?user=</c> name (which is
    /// <c>guest:NAME</c> in a namespace that also verifies tokens), or an <c>anon-…</c> id.
    /// </param>
    /// <param name="cancellationToken">Stops the wait, not the send. Already cancelled: nothing is sent.</param>
    /// <inheritdoc cref="PublishToRoomAsync(IGrainFactory, string, string, string, string, string?, CancellationToken)" path="/param[@name='grains' or @name='ns' or @name='from' or @name='json']"/>
    public static Task<int> SendToUserAsync(this IGrainFactory grains, string ns, string user, string from, string json, CancellationToken cancellationToken = default)
    {
        var target = CheckSend(grains, ns, user, from);
        return SendDirect(grains, target, from, CheckData(json, nameof(json)), cancellationToken);
    }

    /// <inheritdoc cref="SendToUserAsync(IGrainFactory, string, string, string, string, CancellationToken)"/>
    /// <param name="utf8Json">The data: one JSON value in UTF-8.</param>
    public static Task<int> SendToUserAsync(this IGrainFactory grains, string ns, string user, string from, ReadOnlySpan<byte> utf8Json, CancellationToken cancellationToken = default)
    {
        var target = CheckSend(grains, ns, user, from);
        return SendDirect(grains, target, from, CheckData(utf8Json, nameof(utf8Json)), cancellationToken);
    }

    /// <summary>
    /// <c>"server"</c>, or <c>"server:"</c> followed by a name of ASCII letters, digits and
    /// <c>- _ . : @</c> (at most <see cref="MaxNameLength"/> characters in all), the prefix in
    /// lower case as written here: such a name reads the same to everybody, in logs and on
    /// every screen, so that no server identity can pass for another.
    /// </summary>
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
            if (!char.IsAsciiLetterOrDigit(c) && c is not ('-' or '_' or '.' or ':' or '@'))
            {
                return false;
            }
        }

        return true;
    }

    /// <summary>
    /// The room's grain key. The request then goes with Policy null: server code does not know
    /// the namespace's options, and the room keeps the ones it has (RoomGrain.ApplyPolicy).
    /// </summary>
    private static string CheckPublish(IGrainFactory grains, string ns, string room, string from, string? msgId)
    {
        ArgumentNullException.ThrowIfNull(grains);
        CheckNamespace(ns);
        CheckName(room, nameof(room), "The room");
        CheckSender(from);
        if (msgId is not null)
        {
            CheckName(msgId, nameof(msgId), "msgId");
        }

        return GrainKeys.Of(ns, room);
    }

    private static string CheckSend(IGrainFactory grains, string ns, string user, string from)
    {
        ArgumentNullException.ThrowIfNull(grains);
        CheckNamespace(ns);
        CheckName(user, nameof(user), "The user");
        CheckSender(from);
        return GrainKeys.Of(ns, user);
    }

    private static Task<PublishResult> SendPublish(IGrainFactory grains, string key, PublishRequest request, CancellationToken cancellationToken)
    {
        if (cancellationToken.IsCancellationRequested)
        {
            return Task.FromCanceled<PublishResult>(cancellationToken);
        }

        var publish = grains.Ref<IRoomGrain>(key).Publish(request);
        return cancellationToken.CanBeCanceled ? publish.WaitAsync(cancellationToken) : publish;
    }

    private static Task<int> SendDirect(IGrainFactory grains, string key, string from, byte[] data, CancellationToken cancellationToken)
    {
        if (cancellationToken.IsCancellationRequested)
        {
            return Task.FromCanceled<int>(cancellationToken);
        }

        var message = new DirectMessage(from, DateTimeOffset.UtcNow.ToUnixTimeMilliseconds(), data);
        var send = grains.Ref<IUserGrain>(key).Send(message);
        return cancellationToken.CanBeCanceled ? send.WaitAsync(cancellationToken) : send;
    }

    private static void CheckNamespace(string ns)
    {
        CheckName(ns, nameof(ns), "The namespace");
        if (ns.Contains('/', StringComparison.Ordinal))
        {
            throw new ArgumentException(
                "A namespace name has no '/': pass \"chat\" for ws://HOST/chat, and \"default\" for the namespace served at /.", nameof(ns));
        }
    }

    private static void CheckName(string name, string parameter, string what)
    {
        ArgumentNullException.ThrowIfNull(name, parameter);
        if (name.Length == 0)
        {
            throw new ArgumentException($"{what} must not be empty.", parameter);
        }

        if (name.Length > MaxNameLength)
        {
            throw new ArgumentException($"{what} is {name.Length} characters long; the limit is {MaxNameLength}.", parameter);
        }

        if (HasLoneSurrogate(name))
        {
            // Not text: no front-end could write it into a frame, no client could read it.
            throw new ArgumentException($"{what} holds a lone surrogate (half of a UTF-16 pair), which is not text.", parameter);
        }
    }

    private static bool HasLoneSurrogate(ReadOnlySpan<char> text)
    {
        for (var i = 0; i < text.Length; i++)
        {
            if (char.IsHighSurrogate(text[i]) && i + 1 < text.Length && char.IsLowSurrogate(text[i + 1]))
            {
                i++;
            }
            else if (char.IsSurrogate(text[i]))
            {
                return true;
            }
        }

        return false;
    }

    private static void CheckSender(string from)
    {
        ArgumentNullException.ThrowIfNull(from);
        if (!IsServerIdentity(from))
        {
            throw new ArgumentException(
                $"from must be a server identity: \"server\", or \"server:\" followed by ASCII letters, digits, '-', '_', '.', ':' or '@' (at most {MaxNameLength} characters in all), such as \"server:dice\"; no client can claim these names.",
                nameof(from));
        }
    }

    private static byte[] CheckData(string json, string parameter)
    {
        ArgumentNullException.ThrowIfNull(json, parameter);
        var trimmed = json.AsSpan().Trim(" \t\r\n");

        // A UTF-16 code unit is at least one UTF-8 byte: longer is too large without encoding it.
        if (trimmed.Length > MaxDataBytes)
        {
            throw TooLarge(trimmed.Length, parameter, "at least ");
        }

        if (HasLoneSurrogate(trimmed))
        {
            throw new ArgumentException("The data holds a lone surrogate (half of a UTF-16 pair), which is not text: no client could read it.", parameter);
        }

        var utf8 = new byte[Encoding.UTF8.GetByteCount(trimmed)];
        Encoding.UTF8.GetBytes(trimmed, utf8);
        Validate(utf8, parameter);
        return utf8;
    }

    private static byte[] CheckData(ReadOnlySpan<byte> utf8Json, string parameter)
    {
        var data = JsonValues.Trim(utf8Json);
        Validate(data, parameter);
        return data.ToArray();
    }

    /// <summary>The rules a client frame's data meets (<see cref="JsonValues"/>), on data without whitespace around it.</summary>
    private static void Validate(ReadOnlySpan<byte> data, string parameter)
    {
        if (data.Length > MaxDataBytes)
        {
            throw TooLarge(data.Length, parameter, string.Empty);
        }

        switch (JsonValues.Check(data, MaxDepth, out var error))
        {
            case JsonValueProblem.Empty:
                throw new ArgumentException("The data is empty; it must be one JSON value (\"null\" for none).", parameter);
            case JsonValueProblem.InvalidUtf8:
                // Invalid bytes would reach clients in text frames, which they must fail (RFC 6455 §8.1).
                throw new ArgumentException("The data is not valid UTF-8.", parameter);
            case JsonValueProblem.LoneSurrogateEscape:
                throw new ArgumentException(
                    "A string in the data holds a lone surrogate escape (like \"\\ud800\"): a \\u escape of a surrogate must be a high one (\\ud800-\\udbff) followed by a low one (\\udc00-\\udfff).",
                    parameter);
            case JsonValueProblem.NotJson:
                throw new ArgumentException(
                    $"The data is not one JSON value ({error!.Message.TrimEnd('.')}). Pass JSON, such as {{\"text\":\"hi\"}}, or \"\\\"hi\\\"\" for a string; at most {MaxDepth} levels deep.",
                    parameter,
                    error);
        }
    }

    private static ArgumentException TooLarge(int length, string parameter, string atLeast) =>
        new($"The data is {atLeast}{length} bytes; at most {MaxDataBytes} ({MaxDataBytes / 1024} KiB) are accepted.", parameter);
}
