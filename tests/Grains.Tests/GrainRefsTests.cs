using Broker.Grains.Tests.Infrastructure;

namespace Broker.Grains.Tests;

[Collection(ClusterCollection.Name)]
public sealed class GrainRefsTests(ClusterFixture fixture) : GrainTestBase(fixture)
{
    [Fact]
    public void Ref_IsTheSameGrainAsGetGrain()
    {
        var key = NewKey();

        var cached = Client.Ref<IRoomGrain>(key);
        var plain = Client.GetGrain<IRoomGrain>(key);

        Assert.Equal(plain.GetGrainId(), cached.GetGrainId());
        Assert.Equal(((GrainReference)plain).InterfaceType, ((GrainReference)cached).InterfaceType);
        Assert.Equal(plain, cached);
    }

    [Fact]
    public async Task Ref_CallsReachTheGrain_ForEachInterface()
    {
        var roomKey = NewKey();
        var userKey = NewKey("user");

        // A room published to through one kind of reference is seen through the other.
        var result = await Client.Ref<IRoomGrain>(roomKey).Publish(PublishOf("alice", "{\"n\":1}"));
        var page = await Room(roomKey).GetHistory(null, 10, int.MaxValue);
        var delivered = await Client.Ref<IUserGrain>(userKey).Send(new Broker.Grains.Models.DirectMessage("bob", 1, Json("{}")));

        Assert.Equal(1, result.Seq);
        Assert.Equal(1, Assert.Single(page.Messages).Seq);
        Assert.Equal(0, delivered);
    }
}
