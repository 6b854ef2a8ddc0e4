using Broker.Frontend.Tests.Infrastructure;
using Broker.Frontend.Tests.Robustness;
using Broker.Grains;

namespace Broker.Frontend.Tests.Protocol;

/// <summary>
/// A connection without ?user= or a token gets a generated id ("anon-…") that no other
/// connection has: its user grain is not activated at connect, only by a direct message to that
/// id — which still reaches the connection, since the grain asks the front-ends first.
/// </summary>
[Collection(BrokerCollection.Name)]
public sealed class AnonymousUserTests(BrokerFixture fixture)
{
    private BrokerServer Server => fixture.Server;

    [Fact]
    public async Task GeneratedUser_NoUserGrainUntilADirectMessage_WhichArrives()
    {
        await using var anonymous = await Server.ConnectAsync("/chat");
        var user = anonymous.User;
        Assert.StartsWith("anon-", user, StringComparison.Ordinal);
        await using var sender = await Server.ConnectAsync("/chat?user=sender-" + Guid.NewGuid().ToString("N")[..8]);

        // Connected, welcomed, even answered a ping: no activation of its user grain.
        await anonymous.RequestAsync(new Dictionary<string, object?> { ["type"] = "ping" });
        Assert.False(await IsActiveAsync(GrainKeys.Of("chat", user)), $"The user grain of {user} was activated at connect.");

        var ack = await sender.RequestAsync(new Dictionary<string, object?> { ["type"] = "send", ["to"] = user, ["data"] = "hello" });
        Assert.Equal(1, ack.GetProperty("delivered").GetInt32());
        var direct = await anonymous.WaitForAsync(f => Frame.Is(f, "direct"));
        Assert.Equal("hello", direct.GetProperty("data").GetString());
        Assert.True(await IsActiveAsync(GrainKeys.Of("chat", user)), "A direct message reached the user without its grain.");

        // Now the grain knows the connection, it is told when it goes, and deactivates.
        await anonymous.DisposeAsync();
        await Eventually.WaitUntilAsync(
            async () => !await IsActiveAsync(GrainKeys.Of("chat", user)),
            TimeSpan.FromSeconds(10),
            $"the user grain of {user} to deactivate after its only connection closed");
    }

    [Fact]
    public async Task ChosenUser_UserGrainActivatedAtConnect()
    {
        var user = "chosen-" + Guid.NewGuid().ToString("N")[..8];
        await using var client = await Server.ConnectAsync("/chat?user=" + user);

        Assert.True(await IsActiveAsync(GrainKeys.Of("chat", user)), $"The user grain of {user} was not told of its connection.");
    }

    private async Task<bool> IsActiveAsync(string key)
    {
        var stats = await Server.Services.GetRequiredService<IGrainFactory>().GetGrain<IManagementGrain>(0).GetDetailedGrainStatistics();
        return stats.Any(s => s.GrainId.ToString().EndsWith(key, StringComparison.Ordinal));
    }
}
