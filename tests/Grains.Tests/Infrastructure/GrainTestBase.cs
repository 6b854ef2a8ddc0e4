using System.Text;
using Broker.Grains.Models;

namespace Broker.Grains.Tests.Infrastructure;

/// <summary>Helpers shared by grain tests: unique keys, front-ends that live as long as the test, request builders.</summary>
public abstract class GrainTestBase : IAsyncLifetime
{
    private readonly List<RecordingFrontend> _frontends = [];

    protected GrainTestBase(ClusterFixture fixture)
        : this(fixture.Client)
    {
    }

    protected GrainTestBase(IClusterClient client) => Client = client;

    protected IClusterClient Client { get; }

    protected static RoomPolicy Policy(int history = 100, bool presence = true, long historyBytes = RoomPolicy.DefaultHistoryBytes, TimeSpan? emptyRoomTimeout = null) =>
        new(history, presence, historyBytes, emptyRoomTimeout);

    protected static string NewKey(string prefix = "room") => GrainKeys.Of("chat", $"{prefix}-{Guid.NewGuid():N}");

    protected static byte[] Json(string json) => Encoding.UTF8.GetBytes(json);

    protected IRoomGrain Room(string key) => Client.GetGrain<IRoomGrain>(key);

    protected IUserGrain User(string key) => Client.GetGrain<IUserGrain>(key);

    /// <summary>A front-end observer registered with the client and kept referenced until the test ends.</summary>
    protected RecordingFrontend NewFrontend(string name)
    {
        var frontend = new RecordingFrontend($"fe-{name}-{Guid.NewGuid():N}");
        frontend.Reference = Client.CreateObjectReference<IFrontendObserver>(frontend);

        // A live front-end holds a lease; these hold one for longer than any test runs.
        _ = Client.GetGrain<IFrontendRegistryGrain>(IFrontendRegistryGrain.Key).Renew(new FrontendLease(frontend.Id, frontend.Reference, TimeSpan.FromHours(1), KnownFrontends: 0));
        lock (_frontends)
        {
            _frontends.Add(frontend);
        }

        return frontend;
    }

    protected static JoinRequest JoinOf(string connectionId, string user, RecordingFrontend frontend, RoomPolicy? policy = null, long? since = null, string? epoch = null) =>
        new(connectionId, user, frontend.Id, frontend.Reference, policy ?? Policy(), since, epoch);

    protected static PublishRequest PublishOf(string user, string json, RoomPolicy? policy = null, string? msgId = null) =>
        new(user, Json(json), msgId, policy ?? Policy());

    /// <summary>
    /// Publishes a marker message and waits until every given front-end has it. Deliveries to a
    /// front-end are ordered, so afterwards each front-end has received everything queued
    /// before the marker: "nothing else arrived" can then be asserted without sleeping.
    /// </summary>
    protected static async Task<long> BarrierAsync(IRoomGrain room, string roomKey, RoomPolicy policy, params RecordingFrontend[] frontends)
    {
        var result = await room.Publish(PublishOf("barrier", $"{{\"barrier\":\"{Guid.NewGuid():N}\"}}", policy));
        foreach (var frontend in frontends)
        {
            await frontend.WaitForSeqAsync(roomKey, result.Seq);
        }

        return result.Seq;
    }

    public Task InitializeAsync() => Task.CompletedTask;

    /// <summary>The test's front-ends leave the registry, so later room activations do not ask them.</summary>
    public async Task DisposeAsync()
    {
        RecordingFrontend[] frontends;
        lock (_frontends)
        {
            frontends = [.. _frontends];
            _frontends.Clear();
        }

        var registry = Client.GetGrain<IFrontendRegistryGrain>(IFrontendRegistryGrain.Key);
        foreach (var frontend in frontends)
        {
            await registry.Leave(frontend.Id);
            Client.DeleteObjectReference<IFrontendObserver>(frontend.Reference);
        }
    }
}
