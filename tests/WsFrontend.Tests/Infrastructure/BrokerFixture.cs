namespace Broker.Frontend.Tests.Infrastructure;

/// <summary>One broker with default settings, shared by the tests of a collection. Tests use unique room names.</summary>
public sealed class BrokerFixture : IAsyncLifetime
{
    public BrokerServer Server { get; private set; } = null!;

    public async Task InitializeAsync() => Server = await BrokerServer.StartAsync();

    public async Task DisposeAsync() => await Server.DisposeAsync();

    /// <summary>A room name no other test uses.</summary>
    public static string UniqueRoom(string prefix = "room") => $"{prefix}-{Guid.NewGuid():N}";
}

[CollectionDefinition(Name)]
public sealed class BrokerCollection : ICollectionFixture<BrokerFixture>
{
    public const string Name = "broker";
}
