using System.Buffers;
using System.Net;
using System.Net.Http.Headers;
using System.Text.Json;

namespace Broker.Frontend.Commands;

/// <summary>What the application answered a proxy question with.</summary>
public enum ProxyVerdict
{
    /// <summary>200 with <c>{"allow":true}</c>: allowed, and remembered.</summary>
    Allowed,

    /// <summary>A decision to refuse — 200 with <c>allow</c> not true, or a 4xx status other than 404 and 405: forbidden, and remembered.</summary>
    Denied,

    /// <summary>The application failed — 404 or 405 (no such endpoint), a 5xx or other status, or a 200 whose body is not the JSON object expected: forbidden, asked again next time.</summary>
    Failed,

    /// <summary>No answer within ProxyTimeout, or no connection: unavailable, asked again next time.</summary>
    Unavailable,
}

/// <summary>One question to the authorization proxy: may <c>user</c> (on <c>connection</c>) do <c>action</c> in <c>room</c> of <c>namespace</c>?</summary>
/// <param name="Verified">The user is a token's <c>sub</c>; false for a <c>?user=</c> name or an <c>anon-</c> id.</param>
public readonly record struct ProxyQuestion(string Namespace, string Room, string User, RoomAction Action, string Connection, bool Verified);

/// <summary>
/// Asks the application whether a client may do an action in a room (Authorize=Proxy):
/// <c>POST {ProxyUrl}</c> with <c>{"namespace","room","user","action","connection","verified"}</c>; only a
/// 200 whose body is <c>{"allow":true}</c> allows. Redirects are not followed, an answer's body
/// is read up to <see cref="MaxAnswerBytes"/>, and the whole exchange has ProxyTimeout.
/// A backend that fails or stalls costs the log one Warning line per <see cref="FailureLogInterval"/>
/// (with the count), not one per frame; each call's detail is at Debug.
/// </summary>
public sealed partial class RoomProxy
{
    /// <summary>The named HttpClient (IHttpClientFactory) the questions go out on.</summary>
    public const string HttpClientName = "Broker.RoomProxy";

    /// <summary>
    /// Connections one front-end opens to the application at once: a stalled application holds
    /// at most this many sockets (and descriptors) here, not one per client; questions beyond it
    /// wait their turn within their ProxyTimeout.
    /// </summary>
    public const int MaxConnectionsPerServer = 256;

    /// <summary>The largest answer body read; a longer one is a failed answer.</summary>
    public const int MaxAnswerBytes = 64 * 1024;

    /// <summary>At most one Warning line about a failing proxy per this interval.</summary>
    public static readonly TimeSpan FailureLogInterval = TimeSpan.FromMinutes(1);

    private static readonly MediaTypeHeaderValue Json = new("application/json");
    private readonly IHttpClientFactory _clients;
    private readonly TimeProvider _time;
    private readonly ILogger<RoomProxy> _logger;
    private readonly Lock _failureGate = new();
    private long _lastFailureLine;
    private bool _failureLogged;
    private int _failuresSinceLine;

    public RoomProxy(IHttpClientFactory clients, TimeProvider time, ILogger<RoomProxy> logger)
    {
        _clients = clients;
        _time = time;
        _logger = logger;
    }

    /// <summary>Asks the question; never throws for anything the backend or the network does.</summary>
    public async Task<ProxyVerdict> AskAsync(Uri url, TimeSpan timeout, ProxyQuestion question, CancellationToken cancellationToken = default)
    {
        using var deadline = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken);
        deadline.CancelAfter(timeout);
        try
        {
            using var request = new HttpRequestMessage(HttpMethod.Post, url) { Content = Body(question) };
            using var response = await _clients.CreateClient(HttpClientName)
                .SendAsync(request, HttpCompletionOption.ResponseHeadersRead, deadline.Token).ConfigureAwait(false);
            var status = (int)response.StatusCode;
            if (response.StatusCode != HttpStatusCode.OK)
            {
                // 404 and 405 say the URL or the method is wrong - a ProxyUrl typo, or an
                // application mid-deploy - not that the user may not: a failure (logged, not
                // remembered), lest a misconfiguration refuse everybody without a line in the log.
                if (status is >= 400 and < 500 and not (404 or 405))
                {
                    LogAnswered(_logger, question.Connection, question.Room, RoomGrants.NameOf(question.Action), $"HTTP {status}");
                    return ProxyVerdict.Denied;
                }

                CountFailure(url, question, $"HTTP {status}");
                return ProxyVerdict.Failed;
            }

            var body = await ReadCappedAsync(response.Content, deadline.Token).ConfigureAwait(false);
            if (body is null)
            {
                CountFailure(url, question, $"an answer over {MaxAnswerBytes} bytes");
                return ProxyVerdict.Failed;
            }

            var allow = Allow(body);
            if (allow is null)
            {
                CountFailure(url, question, "a 200 whose body is not a JSON object with a boolean \"allow\"");
                return ProxyVerdict.Failed;
            }

            LogAnswered(_logger, question.Connection, question.Room, RoomGrants.NameOf(question.Action), allow.Value ? "allow" : "deny");
            return allow.Value ? ProxyVerdict.Allowed : ProxyVerdict.Denied;
        }
        catch (OperationCanceledException) when (cancellationToken.IsCancellationRequested)
        {
            // The asker gave up (its connection is closing): nobody to answer, nothing to report.
            return ProxyVerdict.Unavailable;
        }
        catch (OperationCanceledException)
        {
            CountFailure(url, question, $"no answer within {timeout.TotalMilliseconds:0} ms");
            return ProxyVerdict.Unavailable;
        }
        catch (Exception ex) when (ex is HttpRequestException or IOException)
        {
            CountFailure(url, question, $"{ex.GetType().Name}: {ex.Message}");
            return ProxyVerdict.Unavailable;
        }
    }

    private static ByteArrayContent Body(ProxyQuestion question)
    {
        var buffer = new ArrayBufferWriter<byte>(256);
        using (var writer = new Utf8JsonWriter(buffer))
        {
            writer.WriteStartObject();
            writer.WriteString("namespace"u8, question.Namespace);
            writer.WriteString("room"u8, question.Room);
            writer.WriteString("user"u8, question.User);
            writer.WriteString("action"u8, RoomGrants.NameOf(question.Action));
            writer.WriteString("connection"u8, question.Connection);
            writer.WriteBoolean("verified"u8, question.Verified);
            writer.WriteEndObject();
        }

        var content = new ByteArrayContent(buffer.WrittenSpan.ToArray());
        content.Headers.ContentType = Json;
        return content;
    }

    /// <summary>The body, or null when it is longer than <see cref="MaxAnswerBytes"/>.</summary>
    private static async Task<byte[]?> ReadCappedAsync(HttpContent content, CancellationToken cancellationToken)
    {
        if (content.Headers.ContentLength > MaxAnswerBytes)
        {
            return null;
        }

        await using var stream = await content.ReadAsStreamAsync(cancellationToken).ConfigureAwait(false);
        var buffer = new byte[Math.Min(MaxAnswerBytes + 1, (int?)content.Headers.ContentLength + 1 ?? 1024)];
        var count = 0;
        while (true)
        {
            if (count == buffer.Length)
            {
                if (count > MaxAnswerBytes)
                {
                    return null;
                }

                Array.Resize(ref buffer, Math.Min(MaxAnswerBytes + 1, buffer.Length * 2));
            }

            var read = await stream.ReadAsync(buffer.AsMemory(count), cancellationToken).ConfigureAwait(false);
            if (read == 0)
            {
                return count > MaxAnswerBytes ? null : buffer[..count];
            }

            count += read;
        }
    }

    /// <summary>The answer's top-level "allow", or null when the body is not a JSON object holding a boolean "allow".</summary>
    internal static bool? Allow(ReadOnlySpan<byte> body)
    {
        try
        {
            var reader = new Utf8JsonReader(body, new JsonReaderOptions { MaxDepth = 16 });
            if (!reader.Read() || reader.TokenType != JsonTokenType.StartObject)
            {
                return null;
            }

            bool? allow = null;
            while (reader.Read() && reader.TokenType == JsonTokenType.PropertyName)
            {
                var isAllow = reader.ValueTextEquals("allow"u8);
                reader.Read();
                if (isAllow && reader.TokenType is JsonTokenType.True or JsonTokenType.False)
                {
                    allow = reader.TokenType == JsonTokenType.True;
                }

                reader.Skip();
            }

            // The rest must be well-formed: a truncated or trailing-garbage body is not an answer.
            while (reader.Read())
            {
            }

            return allow;
        }
        catch (JsonException)
        {
            return null;
        }
    }

    /// <summary>Counts a failed exchange; one Warning line per <see cref="FailureLogInterval"/> at most.</summary>
    private void CountFailure(Uri url, ProxyQuestion question, string reason)
    {
        LogFailedCall(_logger, question.Connection, question.Room, RoomGrants.NameOf(question.Action), reason);
        int count;
        lock (_failureGate)
        {
            _failuresSinceLine++;
            var now = _time.GetTimestamp();
            if (_failureLogged && _time.GetElapsedTime(_lastFailureLine, now) < FailureLogInterval)
            {
                return;
            }

            _failureLogged = true;
            _lastFailureLine = now;
            count = _failuresSinceLine;
            _failuresSinceLine = 0;
        }

        // Without user info or query: either may hold a secret.
        LogFailing(_logger, $"{url.Scheme}://{url.Authority}{url.AbsolutePath}", count, reason);
    }

    [LoggerMessage(EventId = 1411, Level = LogLevel.Warning, Message = "The authorization proxy {Url} failed {Count} time(s) since the last report, the latest with {Reason}; clients were answered forbidden or unavailable (at most one such line a minute; each call at Debug)")]
    private static partial void LogFailing(ILogger logger, string url, int count, string reason);

    [LoggerMessage(EventId = 1412, Level = LogLevel.Debug, Message = "Authorization proxy call for connection {ConnectionId}, room {Room}, action {Action} failed: {Reason}")]
    private static partial void LogFailedCall(ILogger logger, string connectionId, string room, string action, string reason);

    [LoggerMessage(EventId = 1413, Level = LogLevel.Debug, Message = "Authorization proxy answered connection {ConnectionId}, room {Room}, action {Action}: {Answer}")]
    private static partial void LogAnswered(ILogger logger, string connectionId, string room, string action, string answer);
}
