using Broker.Frontend.Tests.Infrastructure;

namespace Broker.Client.Tests.Infrastructure;

/// <summary>One in-process broker (real Kestrel on 127.0.0.1:0, embedded silo) shared by a test class.</summary>
public sealed class ServerFixture : IAsyncLifetime
{
    public BrokerServer Server { get; private set; } = null!;

    public Uri Chat => Server.Ws("chat");

    public async Task InitializeAsync() => Server = await BrokerServer.StartAsync();

    public async Task DisposeAsync() => await Server.DisposeAsync();
}

internal static class Names
{
    public static string Unique(string prefix) => prefix + "-" + Guid.NewGuid().ToString("N")[..8];
}

internal static class Limits
{
    public static readonly TimeSpan Wait = TimeSpan.FromSeconds(15);
}
