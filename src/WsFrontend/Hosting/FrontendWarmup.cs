using System.Diagnostics;
using System.Globalization;
using System.Net.WebSockets;
using System.Runtime;
using System.Security.Cryptography;
using System.Text;
using Broker.Frontend.Options;
using Microsoft.AspNetCore.Hosting.Server;
using Microsoft.AspNetCore.Hosting.Server.Features;
using Microsoft.Extensions.Options;

namespace Broker.Frontend.Hosting;

/// <summary>
/// Cluster mode: before a front-end first reports ready, it sends traffic through its own hot
/// path — WebSocket connections to its own listener on loopback, joins, publishes committed by
/// a room on a silo, deliveries fanned out back to those sockets — so that the runtime compiles
/// (and tiers up) that code before clients arrive instead of under their traffic
/// (docs/performance.md, "Cold start"). The connections use a path only this process knows
/// (<c>/$warmup/KEY</c>, a random key per process) into a namespace of their own, admitted while
/// the front-end is not yet ready; nothing else can reach that namespace. Rounds end once one
/// leaves the JIT quiet or at <see cref="WarmupOptions.Timeout"/>; a warm-up that fails (or whose
/// round hangs) is logged as a warning and the front-end becomes ready anyway.
/// </summary>
public sealed partial class FrontendWarmup : BackgroundService
{
    /// <summary>The namespace the warm-up's connections are admitted to (never configurable: '$' is not a namespace name users can reach).</summary>
    public const string Namespace = "$warmup";

    /// <summary>After a round, how long the JIT is watched; fewer than <see cref="QuietMethods"/> compiled then (and during the round) ends the warm-up.</summary>
    private static readonly TimeSpan QuietPeriod = TimeSpan.FromMilliseconds(250);
    private const int QuietMethods = 20;
    private const int MaxRounds = 40;

    /// <summary>How long past <see cref="WarmupOptions.Timeout"/> a round may still run before the warm-up is cut off as failed.</summary>
    private static readonly TimeSpan HangGrace = TimeSpan.FromSeconds(10);

    private readonly WarmupOptions _options;
    private readonly IClusterReadiness _cluster;
    private readonly IServer _server;
    private readonly IHostApplicationLifetime _lifetime;
    private readonly ILogger<FrontendWarmup> _logger;
    private readonly string _path;
    private readonly string _roomPrefix;
    private readonly TaskCompletionSource _done = new(TaskCreationOptions.RunContinuationsAsynchronously);

    public FrontendWarmup(IOptions<BrokerOptions> options, IClusterReadiness cluster, IServer server, IHostApplicationLifetime lifetime, ILogger<FrontendWarmup> logger)
    {
        _options = options.Value.Warmup;
        _cluster = cluster;
        _server = server;
        _lifetime = lifetime;
        _logger = logger;
        var key = Convert.ToHexStringLower(RandomNumberGenerator.GetBytes(16));
        _path = "/" + Namespace + "/" + key;

        // Rooms of this process only: front-ends started together warm up apart.
        _roomPrefix = key[..8] + "-r";
        if (_options.Enabled && cluster is GatewayReadiness gateways)
        {
            gateways.WaitForWarmup(_done.Task);
        }
        else
        {
            // Embedded mode serves at once (its silo is in the process); or turned off.
            _done.TrySetResult();
        }
    }

    /// <summary>Completes when the warm-up is over (done, failed, timed out or off): readiness waits for it.</summary>
    public Task Done => _done.Task;

    /// <summary>The warm-up's namespace options: like a default namespace, Stream off, rooms let go soon after.</summary>
    public static NamespaceOptions NamespaceOptions { get; } = new()
    {
        Stream = false,
        EmptyRoomTimeout = TimeSpan.FromSeconds(1),
        Anonymous = true,
    };

    /// <summary>Whether a connect request's path is this process's warm-up path (constant-time on the key).</summary>
    public bool IsWarmupPath(string path) =>
        !_done.Task.IsCompleted
        && path.Length == _path.Length
        && CryptographicOperations.FixedTimeEquals(Encoding.ASCII.GetBytes(path), Encoding.ASCII.GetBytes(_path));

    protected override async Task ExecuteAsync(CancellationToken stoppingToken)
    {
        if (_done.Task.IsCompleted)
        {
            return;
        }

        try
        {
            await _cluster.Connected.WaitAsync(stoppingToken);
            await WaitStartedAsync(stoppingToken);
            var clock = Stopwatch.StartNew();
            // Rounds stop at Timeout (between two rounds); a round that hangs is cut off after a grace.
            using var timeout = CancellationTokenSource.CreateLinkedTokenSource(stoppingToken);
            timeout.CancelAfter(_options.Timeout + HangGrace);
            try
            {
                var (published, delivered, connections, rounds) = await RunAsync(clock, timeout.Token);

                // What the warm-up allocated would stay resident in a front-end that then idles
                // (nothing allocates, no collection runs): given back now, before any client.
                GC.Collect(2, GCCollectionMode.Aggressive, blocking: true, compacting: true);
                LogWarmedUp(_logger, published, delivered, connections, rounds, clock.Elapsed.TotalSeconds, JitInfo.GetCompiledMethodCount());
            }
            catch (Exception ex) when (!stoppingToken.IsCancellationRequested)
            {
                LogWarmupFailed(_logger, clock.Elapsed.TotalSeconds, ex.GetType().Name, ex.Message);
            }
        }
        catch (OperationCanceledException)
        {
            // Stopping before the cluster was reached.
        }
        finally
        {
            _done.TrySetResult();
        }
    }

    private async Task WaitStartedAsync(CancellationToken cancellationToken)
    {
        // Hosted services start before the server listens: the warm-up connects to the server.
        var started = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        using var registration = _lifetime.ApplicationStarted.Register(() => started.TrySetResult());
        await started.Task.WaitAsync(cancellationToken);
    }

    private async Task<(long Published, long Delivered, int Connections, int Rounds)> RunAsync(Stopwatch clock, CancellationToken cancellationToken)
    {
        var endpoint = LoopbackEndpoint()
            ?? throw new InvalidOperationException("no http:// or https:// address this front-end listens on can be reached on loopback");
        var members = _options.Rooms * _options.MembersPerRoom;
        var sockets = new List<WarmupSocket>(members);
        try
        {
            for (var i = 0; i < members; i++)
            {
                var socket = await WarmupSocket.ConnectAsync(new Uri(endpoint, _path + "?user=w" + i.ToString(CultureInfo.InvariantCulture)), cancellationToken);
                sockets.Add(socket);
                await socket.JoinAsync(_roomPrefix + (i % _options.Rooms).ToString(CultureInfo.InvariantCulture), cancellationToken);
            }

            // Rounds: every member publishes its share into its room, a few at a time (closed
            // loop), until every member has received every message. Then again while the runtime
            // is still compiling what the traffic ran: tiered compilation promotes hot methods in
            // the background, in two steps, each once the process has been quiet of new
            // compilations for a moment; a round that left the JIT quiet is the last.
            var perSocket = Math.Max(1, _options.Publishes / members);
            var published = 0L;
            var rounds = 0;
            long compiled;
            do
            {
                compiled = JitInfo.GetCompiledMethodCount();
                var before = sockets.Select(s => s.Delivered).ToArray();
                await Task.WhenAll(sockets.Select((s, i) => s.PublishAsync(_roomPrefix + (i % _options.Rooms).ToString(CultureInfo.InvariantCulture), perSocket, cancellationToken)));
                var expected = (long)perSocket * _options.MembersPerRoom;
                await Task.WhenAll(sockets.Select((s, i) => s.WaitDeliveredAsync(before[i] + expected, cancellationToken)));
                published += (long)perSocket * members;
                rounds++;
                await Task.Delay(QuietPeriod, cancellationToken);
            }
            while (JitInfo.GetCompiledMethodCount() - compiled > QuietMethods && rounds < MaxRounds && clock.Elapsed < _options.Timeout);

            return (published, sockets.Sum(s => s.Delivered), members, rounds);
        }
        finally
        {
            await Task.WhenAll(sockets.Select(s => s.CloseAsync()));
        }
    }

    /// <summary>Where this process listens, as a loopback ws:// or wss:// URI; null when nowhere usable (a Unix socket only).</summary>
    private Uri? LoopbackEndpoint()
    {
        var addresses = _server.Features.Get<IServerAddressesFeature>()?.Addresses ?? [];
        foreach (var scheme in new[] { "http", "https" })
        {
            foreach (var address in addresses)
            {
                if (!Uri.TryCreate(address.Replace("://+", "://0.0.0.0", StringComparison.Ordinal).Replace("://*", "://0.0.0.0", StringComparison.Ordinal), UriKind.Absolute, out var uri) || uri.Scheme != scheme)
                {
                    continue;
                }

                var host = uri.Host switch
                {
                    "0.0.0.0" or "localhost" => "127.0.0.1",
                    "[::]" or "::" => "[::1]",
                    _ => uri.Host.Contains(':', StringComparison.Ordinal) && !uri.Host.StartsWith('[') ? "[" + uri.Host + "]" : uri.Host,
                };
                return new Uri((scheme == "http" ? "ws" : "wss") + "://" + host + ":" + uri.Port.ToString(CultureInfo.InvariantCulture));
            }
        }

        return null;
    }

    [LoggerMessage(EventId = 1510, Level = LogLevel.Information, Message = "Warmed up before reporting ready: {Published} publishes, {Delivered} deliveries over {Connections} loopback connections in {Rounds} rounds, {Seconds:0.0} s ({Methods} methods compiled since start; the last round left the JIT quiet unless the time was up)")]
    private static partial void LogWarmedUp(ILogger logger, long published, long delivered, int connections, int rounds, double seconds, long methods);

    [LoggerMessage(EventId = 1511, Level = LogLevel.Warning, Message = "Warm-up gave up after {Seconds:0.0} s ({Error}: {Reason}); ready without it (the first seconds of traffic may be slower)")]
    private static partial void LogWarmupFailed(ILogger logger, double seconds, string error, string reason);

    /// <summary>One loopback client of the warm-up: publishes with a few acks outstanding, counts the messages it receives.</summary>
    private sealed class WarmupSocket : IDisposable
    {
        private const int Window = 4;
        private readonly ClientWebSocket _socket;
        private readonly SemaphoreSlim _window = new(Window, Window);
        private readonly SemaphoreSlim _send = new(1, 1);
        private readonly TaskCompletionSource _joined = new(TaskCreationOptions.RunContinuationsAsynchronously);
        private readonly Task _receiving;
        private TaskCompletionSource? _enough;
        private long _enoughAt = long.MaxValue;
        private long _delivered;
        private int _nextId;

        private WarmupSocket(ClientWebSocket socket)
        {
            _socket = socket;
            _receiving = Task.Run(ReceiveLoopAsync);
        }

        public long Delivered => Interlocked.Read(ref _delivered);

        public static async Task<WarmupSocket> ConnectAsync(Uri uri, CancellationToken cancellationToken)
        {
            var socket = new ClientWebSocket();
            if (uri.Scheme == "wss")
            {
                // Our own listener on loopback: its certificate names the public host, not 127.0.0.1.
                socket.Options.RemoteCertificateValidationCallback = (_, _, _, _) => true;
            }

            try
            {
                await socket.ConnectAsync(uri, cancellationToken);
            }
            catch
            {
                socket.Dispose();
                throw;
            }

            return new WarmupSocket(socket);
        }

        public async Task JoinAsync(string room, CancellationToken cancellationToken)
        {
            await SendAsync($"{{\"type\":\"join\",\"id\":0,\"room\":\"{room}\"}}", cancellationToken);
            await _joined.Task.WaitAsync(cancellationToken);
        }

        public async Task PublishAsync(string room, int count, CancellationToken cancellationToken)
        {
            for (var n = 1; n <= count; n++)
            {
                await _window.WaitAsync(cancellationToken);
                var id = Interlocked.Increment(ref _nextId);
                await SendAsync($"{{\"type\":\"publish\",\"id\":{id},\"room\":\"{room}\",\"data\":{{\"n\":{n},\"text\":\"warm-up\"}}}}", cancellationToken);
            }

            // Every ack back, then the window open again for the next round.
            for (var i = 0; i < Window; i++)
            {
                await _window.WaitAsync(cancellationToken);
            }

            _window.Release(Window);
        }

        public Task WaitDeliveredAsync(long count, CancellationToken cancellationToken)
        {
            var enough = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
            Volatile.Write(ref _enough, enough);
            Volatile.Write(ref _enoughAt, count);
            if (Delivered >= count)
            {
                enough.TrySetResult();
            }

            return enough.Task.WaitAsync(cancellationToken);
        }

        public async Task CloseAsync()
        {
            try
            {
                using var timeout = new CancellationTokenSource(TimeSpan.FromSeconds(2));
                await _socket.CloseOutputAsync(WebSocketCloseStatus.NormalClosure, "warm-up done", timeout.Token);
                await _receiving.WaitAsync(timeout.Token);
            }
            catch (Exception ex) when (ex is WebSocketException or OperationCanceledException or ObjectDisposedException or TimeoutException)
            {
                _socket.Abort();
            }
            finally
            {
                Dispose();
            }
        }

        public void Dispose()
        {
            _socket.Dispose();
            _window.Dispose();
            _send.Dispose();
        }

        private async Task SendAsync(string frame, CancellationToken cancellationToken)
        {
            await _send.WaitAsync(cancellationToken);
            try
            {
                await _socket.SendAsync(Encoding.UTF8.GetBytes(frame), WebSocketMessageType.Text, endOfMessage: true, cancellationToken);
            }
            finally
            {
                _send.Release();
            }
        }

        private async Task ReceiveLoopAsync()
        {
            var buffer = new byte[16 * 1024];
            try
            {
                while (true)
                {
                    var count = 0;
                    ValueWebSocketReceiveResult result;
                    do
                    {
                        result = await _socket.ReceiveAsync(buffer.AsMemory(count), CancellationToken.None);
                        count = Math.Min(count + result.Count, buffer.Length - 1);
                    }
                    while (!result.EndOfMessage);

                    if (result.MessageType == WebSocketMessageType.Close)
                    {
                        return;
                    }

                    var frame = buffer.AsSpan(0, count);
                    if (frame.IndexOf("\"type\":\"message\""u8) >= 0)
                    {
                        if (Interlocked.Increment(ref _delivered) >= Volatile.Read(ref _enoughAt))
                        {
                            Volatile.Read(ref _enough)?.TrySetResult();
                        }
                    }
                    else if (frame.IndexOf("\"type\":\"ack\""u8) >= 0)
                    {
                        _window.Release();
                    }
                    else if (frame.IndexOf("\"type\":\"joined\""u8) >= 0)
                    {
                        _joined.TrySetResult();
                    }
                    else if (frame.IndexOf("\"type\":\"error\""u8) >= 0)
                    {
                        var text = Encoding.UTF8.GetString(frame);
                        _joined.TrySetException(new InvalidOperationException("the broker answered the warm-up with " + text));
                        Volatile.Read(ref _enough)?.TrySetException(new InvalidOperationException("the broker answered the warm-up with " + text));
                        if (frame.IndexOf("\"id\":0,"u8) < 0)
                        {
                            // A publish's answer (the join is id 0 and holds no place in the window).
                            _window.Release();
                        }
                    }
                }
            }
            catch (Exception ex) when (ex is WebSocketException or ObjectDisposedException or OperationCanceledException)
            {
                _joined.TrySetException(ex);
                Volatile.Read(ref _enough)?.TrySetException(ex);
            }
        }
    }
}
