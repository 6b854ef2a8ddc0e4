using System.Collections.Concurrent;
using Broker.Frontend.Tests.Infrastructure;

namespace Broker.Frontend.Tests.Robustness;

/// <summary>
/// A JSON string holding a lone surrogate escape ("\ud800") in any field: bad_request, the
/// connection stays open, and the server's log stays quiet (protocol.md "Bounds").
/// </summary>
public sealed class LoneSurrogateTests
{
    private static readonly TimeSpan Timeout = TimeSpan.FromSeconds(10);

    [Fact]
    public async Task Receive_LoneSurrogateInEveryField_BadRequestConnectionOpenNothingLoggedAboveDebug()
    {
        await using var server = await BrokerServer.StartAsync();
        var log = WarningLog.AttachTo(server);
        var room = BrokerFixture.UniqueRoom("surrogate");
        await using var client = await server.ConnectAsync("/chat?user=surrogates");
        await using var member = await server.ConnectAsync("/chat?user=member");
        await member.JoinAsync(room);
        await client.JoinAsync(room);
        string[] frames =
        [
            """{"type":"\ud800","id":1}""",
            """{"type":"join","id":2,"room":"\ud800"}""",
            $$$"""{"type":"join","id":3,"room":"{{{room}}}","epoch":"\udc00","since":1}""",
            $$$"""{"type":"publish","id":4,"room":"{{{room}}}","msgId":"\ud800","data":1}""",
            $$$"""{"type":"publish","id":5,"room":"{{{room}}}","data":{"text":"\ud800"}}""",
            """{"type":"send","id":6,"to":"\ud800","data":1}""",
            """{"type":"echo","id":7,"data":["\udbff"]}""",
            """{"type":"ping","id":8,"\ud800":true}""",
        ];

        for (var n = 0; n < frames.Length; n++)
        {
            await client.SendTextAsync(frames[n]);
            var id = n + 1;
            var reply = await client.WaitForAsync(f => Frame.HasId(f, id), Timeout);
            Assert.Equal("bad_request", Frame.Code(reply));
            Assert.Contains("lone surrogate", reply.GetProperty("message").GetString(), StringComparison.Ordinal);
        }

        // A lone surrogate in the id itself: refused, with no id to echo.
        await client.SendTextAsync("""{"type":"ping","id":"\ud800"}""");
        var anonymous = await client.WaitForAsync(f => Frame.Is(f, "error"), Timeout);
        Assert.Equal("bad_request", Frame.Code(anonymous));
        Assert.False(anonymous.TryGetProperty("id", out _));

        // Still open and in the room: the next publish reaches the other member, and nothing
        // of the refused ones did.
        var ack = await client.PublishAsync(room, "after");
        Assert.Equal("ack", Frame.Type(ack));
        Assert.Equal(1, ack.GetProperty("seq").GetInt64());
        var atMember = await member.CollectUntilAsync(f => Frame.IsMessageIn(f, room), Timeout, "member");
        Assert.Equal("after", atMember[^1].GetProperty("data").GetString());
        Assert.False(client.Closed.IsCompleted);
        Assert.Empty(log.Entries);
    }

    /// <summary>Everything the broker logs at Warning or above while the test runs.</summary>
    private sealed class WarningLog : ILoggerProvider
    {
        public ConcurrentQueue<string> Entries { get; } = new();

        public static WarningLog AttachTo(BrokerServer server)
        {
            var log = new WarningLog();
            server.Services.GetRequiredService<ILoggerFactory>().AddProvider(log);
            return log;
        }

        public ILogger CreateLogger(string categoryName) => new Logger(this, categoryName);

        public void Dispose()
        {
        }

        private sealed class Logger(WarningLog log, string category) : ILogger
        {
            public IDisposable? BeginScope<TState>(TState state)
                where TState : notnull => null;

            public bool IsEnabled(LogLevel logLevel) => logLevel >= LogLevel.Warning;

            public void Log<TState>(LogLevel logLevel, EventId eventId, TState state, Exception? exception, Func<TState, Exception?, string> formatter)
            {
                if (IsEnabled(logLevel) && category.StartsWith("Broker.", StringComparison.Ordinal))
                {
                    log.Entries.Enqueue($"{logLevel} {category}: {formatter(state, exception)} {exception?.GetType().Name}");
                }
            }
        }
    }
}
