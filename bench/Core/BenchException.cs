namespace Broker.Bench.Core;

/// <summary>A failure the user can act on (bad option, server refused, connections failed): printed without a stack trace.</summary>
public sealed class BenchException(string message) : Exception(message);
