using Broker.Frontend.Tests.Infrastructure;

namespace Broker.Frontend.Tests.Robustness;

/// <summary>
/// protocol.md "Bounds": a silo short of memory sheds new activations and the client is told
/// "unavailable" (or 1013 where there is no frame to answer), never a crash or "internal".
/// The embedded silo is told to refuse above a vanishing share of memory, so it refuses every
/// new room and user through the real gate.
/// </summary>
public sealed class ActivationRefusalTests
{
    [Fact]
    public async Task Join_SiloRefusingNewActivations_UnavailableAndConnectionLivesOn()
    {
        await using var server = await BrokerServer.StartAsync(new Dictionary<string, string?> { ["Broker:Embedded:Memory:RefuseActivationsAbovePercent"] = "0.000001" });
        await using var anonymous = await server.ConnectAsync("/chat");

        var joined = await anonymous.RequestAsync(new Dictionary<string, object?> { ["type"] = "join", ["room"] = BrokerFixture.UniqueRoom() });
        var send = await anonymous.RequestAsync(new Dictionary<string, object?> { ["type"] = "send", ["to"] = "somebody-" + BrokerFixture.UniqueRoom(), ["data"] = 1 });
        var pong = await anonymous.RequestAsync(new Dictionary<string, object?> { ["type"] = "ping" });

        Assert.Equal("unavailable", Frame.Code(joined));
        Assert.Equal("unavailable", Frame.Code(send)); // a new user grain: refused too
        Assert.Equal("pong", Frame.Type(pong));
    }

    [Fact]
    public async Task Connect_NamedUserWhileSiloRefusesNewActivations_Closed1013()
    {
        await using var server = await BrokerServer.StartAsync(new Dictionary<string, string?> { ["Broker:Embedded:Memory:RefuseActivationsAbovePercent"] = "0.000001" });
        await using var bob = await server.ConnectAsync("/chat?user=bob", autoRead: false);
        bob.StartReading();

        Assert.Equal(Frame.TryAgainLater, await bob.WaitForCloseAsync(TimeSpan.FromSeconds(15)));
    }
}
