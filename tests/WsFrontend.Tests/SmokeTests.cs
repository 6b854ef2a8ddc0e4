using Broker.Frontend.Tests.Infrastructure;

namespace Broker.Frontend.Tests;

[Collection(BrokerCollection.Name)]
public sealed class SmokeTests(BrokerFixture fixture)
{
    [Fact]
    public async Task Publish_TwoMembers_BothReceiveMessage()
    {
        var room = BrokerFixture.UniqueRoom();
        await using var alice = await fixture.Server.ConnectAsync("/chat?user=alice");
        await using var bob = await fixture.Server.ConnectAsync("/chat?user=bob");
        await alice.JoinAsync(room);
        await bob.JoinAsync(room);

        var ack = await alice.PublishAsync(room, new { text = "hi" });

        Assert.Equal("ack", ack.GetProperty("type").GetString());
        var atBob = await bob.WaitForTypeAsync("message");
        Assert.Equal(ack.GetProperty("seq").GetInt64(), atBob.GetProperty("seq").GetInt64());
        Assert.Equal("alice", atBob.GetProperty("from").GetString());
        Assert.Equal("hi", atBob.GetProperty("data").GetProperty("text").GetString());
    }
}
