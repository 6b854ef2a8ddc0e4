using System.Collections.Concurrent;
using Broker.Frontend.Commands;

namespace Broker.Frontend.Tests.Authorization;

/// <summary>The proxy client on its own, against the real test backend: answers, and a failing backend's log lines.</summary>
public sealed class RoomProxyTests : IAsyncLifetime
{
    private AuthorizationBackend _backend = null!;
    private ServiceProvider _services = null!;

    public async Task InitializeAsync()
    {
        _backend = await AuthorizationBackend.StartAsync();
        var services = new ServiceCollection();
        services.AddHttpClient(RoomProxy.HttpClientName);
        _services = services.BuildServiceProvider();
    }

    public async Task DisposeAsync()
    {
        await _services.DisposeAsync();
        await _backend.DisposeAsync();
    }

    [Theory]
    [InlineData("allow", ProxyVerdict.Allowed)]
    [InlineData("deny", ProxyVerdict.Denied)]
    [InlineData("forbid", ProxyVerdict.Denied)]
    [InlineData("fail", ProxyVerdict.Failed)]
    [InlineData("garbage", ProxyVerdict.Failed)]
    [InlineData("big", ProxyVerdict.Failed)]
    [InlineData("stall", ProxyVerdict.Unavailable)]
    public async Task AskAsync_BackendAnswer_Verdict(string rule, ProxyVerdict verdict)
    {
        var proxy = new RoomProxy(_services.GetRequiredService<IHttpClientFactory>(), TimeProvider.System, new ListLogger<RoomProxy>());

        // Each case has a fresh backend, whose first answer (cold) can take most of a second on
        // a loaded machine: only the stall case waits for the timeout.
        var timeout = rule == "stall" ? TimeSpan.FromMilliseconds(500) : TimeSpan.FromSeconds(10);
        var got = await proxy.AskAsync(_backend.Url, timeout, Question($"{rule}.room"));

        Assert.Equal(verdict, got);
    }

    [Fact]
    public async Task AskAsync_FailingBackend_OneWarningPerInterval()
    {
        var time = new ManualTime();
        var logger = new ListLogger<RoomProxy>();
        var proxy = new RoomProxy(_services.GetRequiredService<IHttpClientFactory>(), time, logger);

        for (var i = 0; i < 5; i++)
        {
            Assert.Equal(ProxyVerdict.Failed, await proxy.AskAsync(_backend.Url, TimeSpan.FromSeconds(5), Question("fail.room")));
        }

        var first = Assert.Single(logger.Warnings);
        Assert.Contains("1 time(s)", first, StringComparison.Ordinal);
        Assert.Contains("HTTP 500", first, StringComparison.Ordinal);
        Assert.Equal(5, logger.Entries.Count(e => e.Level == LogLevel.Debug));

        time.Advance(RoomProxy.FailureLogInterval);
        await proxy.AskAsync(_backend.Url, TimeSpan.FromSeconds(5), Question("fail.room"));

        Assert.Equal(2, logger.Warnings.Count);
        Assert.Contains("5 time(s)", logger.Warnings[1], StringComparison.Ordinal);
    }

    [Fact]
    public async Task AskAsync_NoSuchEndpoint_FailedAndWarnedNotADenial()
    {
        // A ProxyUrl with a typo in its path: the backend answers 404 (and 405 for a GET-only path).
        var logger = new ListLogger<RoomProxy>();
        var proxy = new RoomProxy(_services.GetRequiredService<IHttpClientFactory>(), TimeProvider.System, logger);
        var typo = new Uri(_backend.Url, "/authorise");

        var got = await proxy.AskAsync(typo, TimeSpan.FromSeconds(10), Question("allow.room"));

        Assert.Equal(ProxyVerdict.Failed, got);
        var warning = Assert.Single(logger.Warnings);
        Assert.Contains("HTTP 404", warning, StringComparison.Ordinal);
    }

    [Fact]
    public async Task AskAsync_AnswersAndDenials_NoWarning()
    {
        var logger = new ListLogger<RoomProxy>();
        var proxy = new RoomProxy(_services.GetRequiredService<IHttpClientFactory>(), TimeProvider.System, logger);

        await proxy.AskAsync(_backend.Url, TimeSpan.FromSeconds(5), Question("allow.room"));
        await proxy.AskAsync(_backend.Url, TimeSpan.FromSeconds(5), Question("deny.room"));
        await proxy.AskAsync(_backend.Url, TimeSpan.FromSeconds(5), Question("forbid.room"));

        Assert.Empty(logger.Warnings);
    }

    [Theory]
    [InlineData("{\"allow\":true}", true)]
    [InlineData(" { \"allow\" : false } ", false)]
    [InlineData("{\"reason\":\"x\",\"allow\":true,\"extra\":{\"allow\":false}}", true)]
    [InlineData("{\"nested\":{\"allow\":true}}", null)]
    [InlineData("{\"allow\":\"true\"}", null)]
    [InlineData("{\"allow\":1}", null)]
    [InlineData("{\"Allow\":true}", null)]
    [InlineData("{}", null)]
    [InlineData("[]", null)]
    [InlineData("true", null)]
    [InlineData("", null)]
    [InlineData("{\"allow\":true", null)]
    [InlineData("{\"allow\":true} trailing", null)]
    [InlineData("not json", null)]
    public void Allow_Body_ReadAsDocumented(string body, bool? allow)
    {
        Assert.Equal(allow, RoomProxy.Allow(System.Text.Encoding.UTF8.GetBytes(body)));
    }

    private static ProxyQuestion Question(string room) => new("app", room, "ann", RoomAction.Join, "c-1", Verified: true);

    private sealed class ManualTime : TimeProvider
    {
        private long _ticks;

        public override long TimestampFrequency => TimeSpan.TicksPerSecond;

        public override long GetTimestamp() => Interlocked.Read(ref _ticks);

        public void Advance(TimeSpan span) => Interlocked.Add(ref _ticks, span.Ticks);
    }
}

/// <summary>A logger that keeps what it is given.</summary>
public sealed class ListLogger<T> : ILogger<T>
{
    public ConcurrentQueue<(LogLevel Level, string Message)> Entries { get; } = new();

    public List<string> Warnings => Entries.Where(e => e.Level == LogLevel.Warning).Select(e => e.Message).ToList();

    public IDisposable? BeginScope<TState>(TState state) where TState : notnull => null;

    public bool IsEnabled(LogLevel logLevel) => true;

    public void Log<TState>(LogLevel logLevel, EventId eventId, TState state, Exception? exception, Func<TState, Exception?, string> formatter) =>
        Entries.Enqueue((logLevel, formatter(state, exception)));
}
