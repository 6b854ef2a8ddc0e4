using Broker.Grains.Models;
using Broker.Grains.Storage;
using Broker.Grains.Tests.Infrastructure;

namespace Broker.Grains.Tests;

/// <summary>A silo short of memory refuses new rooms and users with an exception every caller reads as "unavailable", and stays healthy.</summary>
public sealed class ActivationSheddingTests(RefusingClusterFixture fixture) : IClassFixture<RefusingClusterFixture>
{
    private static readonly RoomPolicy Policy = new(100, Presence: true);

    [Fact]
    public async Task Join_SiloRefusingActivations_SiloOverloadedExceptionReadAsUnavailable()
    {
        var room = fixture.Client.GetGrain<IRoomGrain>(GrainKeys.Of("chat", "refused-" + Guid.NewGuid().ToString("N")));
        var frontend = fixture.Client.CreateObjectReference<IFrontendObserver>(new RecordingFrontend("fe-refused"));

        var join = await Assert.ThrowsAsync<SiloOverloadedException>(() => room.Join(new JoinRequest("c1", "alice", "fe-refused", frontend, Policy, null, null)));
        var history = await Assert.ThrowsAsync<SiloOverloadedException>(() => room.GetHistory(null, 10, int.MaxValue));
        var publish = await Assert.ThrowsAsync<SiloOverloadedException>(() => room.Publish(new PublishRequest("alice", "1"u8.ToArray(), null, Policy)));

        Assert.All(new Exception[] { join, history, publish }, ex => Assert.True(ClusterErrors.IsClusterUnavailable(ex)));

        // What needs no new state is answered quietly.
        Assert.False(await room.Leave("c1"));
    }

    [Fact]
    public async Task Connect_SiloRefusingActivations_UserRefusedAndRegistryStillServes()
    {
        var user = fixture.Client.GetGrain<IUserGrain>(GrainKeys.Of("chat", "refused-" + Guid.NewGuid().ToString("N")));
        var frontend = fixture.Client.CreateObjectReference<IFrontendObserver>(new RecordingFrontend("fe-refused"));

        var refused = await Assert.ThrowsAsync<SiloOverloadedException>(() => user.Connect(new UserConnection("c1", "fe-refused", frontend)));
        var renewed = await fixture.Client.GetGrain<IFrontendRegistryGrain>(IFrontendRegistryGrain.Key).Renew(new FrontendLease("fe-refused", frontend, TimeSpan.FromMinutes(1), 0));

        Assert.True(ClusterErrors.IsClusterUnavailable(refused));
        Assert.True(renewed.Fresh);
    }

    [Theory]
    [InlineData(typeof(GatewayTooBusyException), true)]
    [InlineData(typeof(SiloUnavailableException), true)]
    [InlineData(typeof(SiloOverloadedException), true)]
    [InlineData(typeof(RoomStoreException), true)]
    [InlineData(typeof(TimeoutException), true)]
    [InlineData(typeof(OperationCanceledException), true)]
    [InlineData(typeof(TaskCanceledException), true)]
    [InlineData(typeof(InvalidOperationException), false)]
    [InlineData(typeof(NullReferenceException), false)]
    public void IsClusterUnavailable_ExceptionType_MappedAsExpected(Type type, bool unavailable)
    {
        var exception = (Exception)Activator.CreateInstance(type)!;

        Assert.Equal(unavailable, ClusterErrors.IsClusterUnavailable(exception));
    }
}
