using System.Collections.Concurrent;
using Microsoft.Extensions.Logging.Abstractions;

namespace Broker.Frontend.Tests.Identity;

/// <summary>Every log entry of the loggers it provides, with its event id.</summary>
internal sealed class LogCapture : ILoggerProvider
{
    public ConcurrentQueue<(LogLevel Level, int EventId, string Category, string Message)> Entries { get; } = new();

    public ILogger CreateLogger(string categoryName) => new Categorized(this, categoryName);

    public IEnumerable<(LogLevel Level, int EventId, string Category, string Message)> WithEventId(int id) =>
        Entries.Where(e => e.EventId == id);

    /// <summary>A logger for a component built by the test itself.</summary>
    public ILogger<T> LoggerFor<T>() => new Logger<T>(new CapturingFactory(this));

    public void Dispose()
    {
    }

    private sealed class CapturingFactory(LogCapture logs) : ILoggerFactory
    {
        public void AddProvider(ILoggerProvider provider) => throw new NotSupportedException();

        public ILogger CreateLogger(string categoryName) => logs.CreateLogger(categoryName);

        public void Dispose()
        {
        }
    }

    private sealed class Categorized(LogCapture logs, string category) : ILogger
    {
        public IDisposable? BeginScope<TState>(TState state)
            where TState : notnull => NullLogger.Instance.BeginScope(state);

        public bool IsEnabled(LogLevel logLevel) => true;

        public void Log<TState>(LogLevel logLevel, EventId eventId, TState state, Exception? exception, Func<TState, Exception?, string> formatter) =>
            logs.Entries.Enqueue((logLevel, eventId.Id, category, formatter(state, exception)));
    }
}
