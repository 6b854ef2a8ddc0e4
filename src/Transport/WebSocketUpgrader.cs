using System.Buffers;
using System.Globalization;
using System.IO.Pipelines;
using System.Net;
using System.Net.WebSockets;
using System.Text;
using Microsoft.AspNetCore.Connections;

namespace Broker.Transport;

/// <summary>What the first request of a connection came to.</summary>
public enum HandshakeOutcome
{
    /// <summary>Not an upgrade this transport takes: the HTTP server's, nothing consumed.</summary>
    NotOurs,

    /// <summary>Upgraded (101 sent): run the socket, then end it.</summary>
    Accepted,

    /// <summary>Answered here (a refusal) or timed out: close the connection.</summary>
    Closed,
}

/// <summary>A handshake's result; <see cref="Socket"/> and <see cref="State"/> are set when <see cref="HandshakeOutcome.Accepted"/>.</summary>
public readonly record struct Handshake(HandshakeOutcome Outcome, PipeWebSocket? Socket = null, object? State = null);

/// <summary>
/// Reads the first request off a new connection and, when it is a plain upgrade
/// (<see cref="UpgradeRequest"/>) that the application admits (<see cref="IUpgradeAdmission"/>),
/// answers 101 itself and runs the connection on a <see cref="PipeWebSocket"/>. Called by
/// <see cref="BrokerSocketTransportFactory"/> for every socket it accepts, or as Kestrel
/// connection middleware (<see cref="OnConnectionAsync"/>) in front of Kestrel's HTTP server.
/// The whole request must arrive within <see cref="WebSocketUpgradeOptions.HandshakeTimeout"/>
/// of the start, or the connection is closed unanswered. Every other connection — other
/// requests, what the application leaves to the HTTP server, anything unusual — is handed on
/// with nothing consumed.
/// </summary>
public sealed class WebSocketUpgrader
{
    private readonly WebSocketUpgradeOptions _options;
    private readonly IUpgradeAdmission _admission;

    public WebSocketUpgrader(WebSocketUpgradeOptions options, IUpgradeAdmission admission)
    {
        _options = options;
        _admission = admission;
    }

    /// <summary>As Kestrel connection middleware: runs the connection here, or hands it to <paramref name="next"/>.</summary>
    public async Task OnConnectionAsync(ConnectionContext connection, ConnectionDelegate next)
    {
        var handshake = await AcceptAsync(connection);
        switch (handshake.Outcome)
        {
            case HandshakeOutcome.NotOurs:
                await next(connection);
                return;
            case HandshakeOutcome.Closed:
                connection.Abort();
                return;
        }

        using var socket = handshake.Socket!;
        try
        {
            await RunAsync(handshake);
        }
        finally
        {
            Ended(handshake);
        }
    }

    /// <summary>An accepted socket's life (the application's), from its start to its close. Call <see cref="Ended"/> after it.</summary>
    public Task RunAsync(in Handshake handshake) => _admission.RunAsync(handshake.Socket!, handshake.State!);

    /// <summary>After <see cref="RunAsync"/>: the application releases what the admission took.</summary>
    public void Ended(in Handshake handshake) => _admission.Ended(handshake.Socket!, handshake.State!);

    /// <summary>Tells the application of a connection refused at accept.</summary>
    public void RefusedAtAccept(IPAddress? address) => _admission.RefusedAtAccept(address);

    /// <summary>
    /// The handshake: a socket when the connection's first request is an upgrade this
    /// transport takes and the application admits (101 sent); <see cref="HandshakeOutcome.Closed"/>
    /// when it was refused here or did not arrive in time; <see cref="HandshakeOutcome.NotOurs"/>,
    /// with nothing consumed, otherwise.
    /// </summary>
    public async Task<Handshake> AcceptAsync(ConnectionContext connection)
    {
        var input = connection.Transport.Input;

        // A broker socket's reads fail by themselves when it closes; its own token would be
        // one more object kept for the connection's life.
        var closed = connection is BrokerSocketConnection ? CancellationToken.None : connection.ConnectionClosed;
        var (status, request, head) = await ReadUpgradeAsync(input, closed);
        var address = RemoteAddress(connection);
        if (status == UpgradeRequest.ParseStatus.NeedMore)
        {
            // The deadline passed with the request incomplete: one deadline, not a second one
            // in the HTTP server.
            _admission.HandshakeTimedOut(address);
            return new Handshake(HandshakeOutcome.Closed);
        }

        if (request is null)
        {
            return new Handshake(HandshakeOutcome.NotOurs);
        }

        var decision = await _admission.AdmitAsync(request, address);
        switch (decision.Result)
        {
            case AdmissionResult.NotOurs:
                input.AdvanceTo(head.Start);
                return new Handshake(HandshakeOutcome.NotOurs);
            case AdmissionResult.Refused:
                input.AdvanceTo(head.End);
                await AnswerAsync(connection, Response(decision.Status, decision.Message ?? string.Empty, decision.RetryAfterSeconds));
                return new Handshake(HandshakeOutcome.Closed);
        }

        input.AdvanceTo(head.End);
        var socket = new PipeWebSocket(connection, _options.MaxMessageBytes, _options.KeepAliveInterval, _options.KeepAliveTimeout, _options.DirectWrites);
        try
        {
            await socket.SendHandshakeResponseAsync(Encoding.ASCII.GetBytes(
                "HTTP/1.1 101 Switching Protocols\r\nConnection: Upgrade\r\nUpgrade: websocket\r\nSec-WebSocket-Accept: " + request.AcceptKey() + "\r\n\r\n"));
        }
        catch (WebSocketException)
        {
            // Gone before the answer: nothing to run.
            _admission.Abandoned(decision.State!);
            socket.Dispose();
            return new Handshake(HandshakeOutcome.Closed);
        }

        return new Handshake(HandshakeOutcome.Accepted, socket, decision.State);
    }

    /// <summary>
    /// A complete HTTP/1.1 response for a refusal: the status, Retry-After when given, a
    /// one-line plain-text body, and Connection: close (the connection ends after it).
    /// </summary>
    public static byte[] Response(int status, string message, int? retryAfterSeconds = null)
    {
        var body = message + "\n";
        var reason = status switch
        {
            400 => "Bad Request",
            401 => "Unauthorized",
            403 => "Forbidden",
            404 => "Not Found",
            431 => "Request Header Fields Too Large",
            503 => "Service Unavailable",
            _ => "Refused",
        };
        var retry = retryAfterSeconds is { } seconds ? "Retry-After: " + seconds.ToString(CultureInfo.InvariantCulture) + "\r\n" : string.Empty;
        return Encoding.UTF8.GetBytes(
            $"HTTP/1.1 {status.ToString(CultureInfo.InvariantCulture)} {reason}\r\n{retry}Content-Type: text/plain; charset=utf-8\r\n" +
            $"Content-Length: {Encoding.UTF8.GetByteCount(body).ToString(CultureInfo.InvariantCulture)}\r\nConnection: close\r\n\r\n{body}");
    }

    /// <summary>
    /// Reads until the first request head is complete, within the handshake deadline. Parsed:
    /// the upgrade request and the buffer holding its head, not yet consumed. NotOurs: the input
    /// rewound to where it started. NeedMore: the deadline passed first.
    /// </summary>
    private async Task<(UpgradeRequest.ParseStatus Status, UpgradeRequest? Request, ReadOnlySequence<byte> Head)> ReadUpgradeAsync(PipeReader input, CancellationToken closed)
    {
        using var timeout = CancellationTokenSource.CreateLinkedTokenSource(closed);
        timeout.CancelAfter(_options.HandshakeTimeout);
        long scanned = 0;
        while (true)
        {
            ReadResult result;
            try
            {
                result = await input.ReadAsync(timeout.Token);
            }
            catch (OperationCanceledException) when (!closed.IsCancellationRequested)
            {
                return (UpgradeRequest.ParseStatus.NeedMore, null, default);
            }
            catch (Exception ex) when (ex is OperationCanceledException or IOException or ConnectionAbortedException)
            {
                // Gone: the HTTP server finds the connection ended.
                return (UpgradeRequest.ParseStatus.NotOurs, null, default);
            }

            var buffer = result.Buffer;
            var status = UpgradeRequest.TryParse(buffer, _options.MaxHeadBytes, _options.MaxHeaders, ref scanned, out var request, out var headLength);
            switch (status)
            {
                case UpgradeRequest.ParseStatus.Parsed:
                    // Left unconsumed until admitted: what the application leaves to the HTTP server gets the same bytes.
                    return (status, request, buffer.Slice(0, headLength));
                case UpgradeRequest.ParseStatus.NeedMore when !result.IsCompleted && !result.IsCanceled:
                    input.AdvanceTo(buffer.Start, buffer.End);
                    continue;
                default:
                    input.AdvanceTo(buffer.Start);
                    return (UpgradeRequest.ParseStatus.NotOurs, null, default);
            }
        }
    }

    /// <summary>Writes a complete HTTP response (the connection is closed after it).</summary>
    private static async Task AnswerAsync(ConnectionContext connection, byte[] response)
    {
        try
        {
            using var timeout = new CancellationTokenSource(TimeSpan.FromSeconds(5));
            var output = connection.Transport.Output;
            await output.WriteAsync(response, timeout.Token);
            await output.CompleteAsync();
        }
        catch (Exception ex) when (ex is IOException or OperationCanceledException or InvalidOperationException or ObjectDisposedException)
        {
            // Gone, or not reading: it is closed either way.
        }
    }

    /// <summary>The client's address: read off a broker socket (its accept already made the endpoint) without keeping one more object for the connection.</summary>
    private static IPAddress? RemoteAddress(ConnectionContext connection)
    {
        try
        {
            return ((connection is BrokerSocketConnection broker ? broker.Socket.RemoteEndPoint : connection.RemoteEndPoint) as IPEndPoint)?.Address;
        }
        catch (Exception ex) when (ex is System.Net.Sockets.SocketException or ObjectDisposedException)
        {
            return null;
        }
    }
}
