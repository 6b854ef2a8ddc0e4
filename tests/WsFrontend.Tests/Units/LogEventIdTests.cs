using System.Reflection;
using Broker.Frontend.Connections;

namespace Broker.Frontend.Tests.Units;

/// <summary>
/// Event ids are what operators filter and alert on (docs/security.md names several: 1400 "no token
/// key", 1401 "JWKS fetch failed"): one id, one meaning, across the front-end.
/// </summary>
public sealed class LogEventIdTests
{
    [Fact]
    public void LoggerMessages_ExplicitEventIds_EachUsedOnce()
    {
        var assembly = typeof(ConnectionHandler).Assembly;
        var ids = assembly.GetTypes()
            .SelectMany(t => t.GetMethods(BindingFlags.Static | BindingFlags.Instance | BindingFlags.Public | BindingFlags.NonPublic | BindingFlags.DeclaredOnly))
            .Select(m => (Method: m, Attribute: m.GetCustomAttribute<LoggerMessageAttribute>()))
            .Where(m => m.Attribute is { EventId: >= 0 })
            .ToList();
        Assert.NotEmpty(ids);

        var reused = ids.GroupBy(m => m.Attribute!.EventId)
            .Where(g => g.Count() > 1)
            .Select(g => $"{g.Key}: {string.Join(", ", g.Select(m => $"{m.Method.DeclaringType!.Name}.{m.Method.Name}"))}")
            .ToList();
        Assert.True(reused.Count == 0, "Event ids used for more than one message: " + string.Join("; ", reused));
    }
}
