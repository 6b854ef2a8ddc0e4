using System.Collections.Concurrent;
using System.Net.Sockets;
using System.Text;
using Broker.Frontend.Diagnostics;
using Broker.Frontend.Hosting;
using Broker.Frontend.Options;
using Broker.Frontend.Tests.Infrastructure;
using Broker.Frontend.Tests.Robustness;
using Microsoft.Extensions.Logging.Abstractions;
using Microsoft.Extensions.Options;

namespace Broker.Frontend.Tests.Transport;

/// <summary>
/// What clients cause is counted and logged quietly: no warning or error (let alone a stack
/// trace) per connection for a reset, on the broker's own sockets as on Kestrel's; one
/// Information line per interval with the counts (<see cref="ClientEventLog"/>).
/// </summary>
public sealed class QuietLogTests
{
    [Theory]
    [InlineData("Pipe")]
    [InlineData("PipeOnKestrel")]
    [InlineData("AspNetCore")]
    public async Task Resets_WhileAnsweredOrUpgraded_NoWarningOrError(string transport)
    {
        await using var server = await BrokerServer.StartAsync(WireTests.Servers.Settings(transport));
        var logs = new CapturedLogs();
        server.Services.GetRequiredService<ILoggerFactory>().AddProvider(logs);
        var pipelined = Encoding.ASCII.GetBytes(string.Concat(Enumerable.Repeat(WireConnection.GetRequest(server, "/healthz"), 200)));

        for (var i = 0; i < 20; i++)
        {
            // 200 pipelined requests, reset while the answers are being written.
            using (var http = await WireConnection.ConnectAsync(server))
            {
                await http.WriteAsync(pipelined);
                await http.ReadHttpResponseAsync("the first /healthz answer");
                http.Reset();
            }

            // A WebSocket reset after its welcome, and one reset with a frame just sent.
            var idle = await WireConnection.OpenAsync(server, $"/chat?user=idle-{i}");
            idle.Reset();
            var busy = await WireConnection.OpenAsync(server, $"/chat?user=busy-{i}");
            await busy.WriteAsync(WireFrameBuilder.TextFrame("{\"type\":\"echo\",\"data\":1}"));
            busy.Reset();
        }

        await Eventually.WaitUntilAsync(() => server.Node.ConnectionCount == 0, TimeSpan.FromSeconds(10), "every reset connection to be gone");
        using var health = await WireConnection.ConnectAsync(server);
        await health.WriteAsync(WireConnection.GetRequest(server, "/healthz"));
        Assert.Equal(200, (await health.ReadHttpResponseAsync("the /healthz answer after the resets")).Status);

        Assert.True(logs.Loud.IsEmpty, $"Logged at Warning or above: {string.Join(" | ", logs.Loud.Take(3))}");
    }

    [Fact]
    public void Flush_CountsSinceTheLastLine_OneInformationLineOnlyWhenAny()
    {
        var logs = new CapturedLogs();
        using var factory = LoggerFactory.Create(b => b.AddProvider(logs).SetMinimumLevel(LogLevel.Trace));
        var events = new ClientEventLog(Microsoft.Extensions.Options.Options.Create(new BrokerOptions()), TimeProvider.System, factory.CreateLogger<ClientEventLog>());

        events.Flush();
        Assert.Empty(logs.All);

        events.Count(ClientEvent.HandshakeTimeout);
        events.Count(ClientEvent.HandshakeTimeout);
        events.Count(ClientEvent.RefusedPerIpCap);
        events.Flush();
        events.Flush();

        var line = Assert.Single(logs.All);
        Assert.Equal(LogLevel.Information, line.Level);
        Assert.Contains("HandshakeTimeout 2", line.Message, StringComparison.Ordinal);
        Assert.Contains("RefusedPerIpCap 1", line.Message, StringComparison.Ordinal);
        Assert.Equal(2, events.Total(ClientEvent.HandshakeTimeout));
    }

    [Fact]
    public async Task Resets_OnTheBrokersSockets_CountedAsClientEvents()
    {
        await using var server = await BrokerServer.StartAsync();
        var events = server.Services.GetRequiredService<ClientEventLog>();

        var client = await WireConnection.OpenAsync(server, "/chat?user=resets");
        client.Reset();

        // Counted when the connection's handler has finished, whose clean-up may wait up to twice
        // CloseTimeout (5 s) for the writer: on a loaded machine 10 s was not always enough.
        await Eventually.WaitUntilAsync(() => events.Total(ClientEvent.Reset) == 1, TimeSpan.FromSeconds(30), "the reset to be counted");
    }

    [Fact]
    public async Task Frames_BadAndOverTheRate_CountedAsClientEvents()
    {
        await using var server = await BrokerServer.StartAsync(new Dictionary<string, string?>
        {
            ["Broker:RateLimitPerSecond"] = "1",
            ["Broker:RateLimitBurst"] = "2",
        });
        var events = server.Services.GetRequiredService<ClientEventLog>();
        using var raw = await RawWebSocket.ConnectAsync(server.HttpBase, "/chat?user=counted");
        Assert.Single(await raw.ReadJsonFramesAsync(1, TimeSpan.FromSeconds(10)));

        // Within the burst: one frame that is not JSON; then two over the rate.
        await raw.SendTextFramesAsync(["not json", "{\"type\":\"ping\"}", "{\"type\":\"ping\"}", "{\"type\":\"ping\"}"]);
        var replies = await raw.ReadJsonFramesAsync(4, TimeSpan.FromSeconds(10));

        Assert.Equal(["bad_request", null, "rate_limited", "rate_limited"], replies.Select(Frame.Code));
        Assert.Equal(1, events.Total(ClientEvent.BadRequest));
        Assert.Equal(2, events.Total(ClientEvent.RateLimited));
    }

    private sealed record Entry(LogLevel Level, string Category, string Message, Exception? Exception)
    {
        public override string ToString() => $"{Level} {Category}: {Message} {Exception?.GetType().Name}";
    }

    private sealed class CapturedLogs : ILoggerProvider
    {
        public ConcurrentQueue<Entry> All { get; } = new();

        public ConcurrentQueue<Entry> Loud { get; } = new();

        public ILogger CreateLogger(string categoryName) => new Logger(this, categoryName);

        public void Dispose()
        {
        }

        private sealed class Logger(CapturedLogs logs, string category) : ILogger
        {
            public IDisposable? BeginScope<TState>(TState state)
                where TState : notnull => NullLogger.Instance.BeginScope(state);

            public bool IsEnabled(LogLevel logLevel) => true;

            public void Log<TState>(LogLevel logLevel, EventId eventId, TState state, Exception? exception, Func<TState, Exception?, string> formatter)
            {
                var entry = new Entry(logLevel, category, formatter(state, exception), exception);
                logs.All.Enqueue(entry);

                // Orleans' own start-up chatter is not a client's doing.
                if (logLevel >= LogLevel.Warning && !category.StartsWith("Orleans", StringComparison.Ordinal))
                {
                    logs.Loud.Enqueue(entry);
                }
            }
        }
    }
}
