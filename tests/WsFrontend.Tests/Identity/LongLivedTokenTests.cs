using Broker.Frontend.Tests.Infrastructure;
using static Broker.Frontend.Tests.Authorization.AuthTokens;

namespace Broker.Frontend.Tests.Identity;

/// <summary>
/// Tokens that expire months or years from now (service tokens, long sessions): a timer cannot
/// be set that far (about 49.7 days at most), and the connection's expiry must not depend on it.
/// </summary>
public sealed class LongLivedTokenTests : IClassFixture<Authorization.TokenBrokerFixture>
{
    private readonly BrokerServer _server;

    public LongLivedTokenTests(Authorization.TokenBrokerFixture fixture) => _server = fixture.Server;

    [Theory]
    [InlineData(60)]
    [InlineData(3650)]
    public async Task Connect_TokenExpiringInDays_WelcomedAndWorking(int days)
    {
        var expires = In(TimeSpan.FromDays(days));
        await using var client = await _server.ConnectWithTokenAsync("open", Create($"far-{days}", expires: expires));

        Assert.Equal($"far-{days}", client.User);
        AssertType(await client.JoinAsync(BrokerFixture.UniqueRoom("far")), "joined");
        await client.AssertAliveAsync();
    }

    [Fact]
    public async Task Refresh_TokenExpiringInAYear_RefreshedAndConnectionWorks()
    {
        await using var client = await _server.ConnectWithTokenAsync("open", Create("far-refresh", expires: In(TimeSpan.FromHours(1))));
        var expires = In(TimeSpan.FromDays(365));

        var reply = await client.RefreshAsync(Create("far-refresh", expires: expires));

        AssertType(reply, "refreshed");
        Assert.Equal(expires.ToUnixTimeSeconds(), reply.GetProperty("expires").GetInt64());
        await client.AssertAliveAsync();
    }
}
