using System.Collections.Immutable;
using Broker.Grains.Models;
using Broker.Grains.Tests.Infrastructure;
using Microsoft.Extensions.DependencyInjection;
using Orleans.TestingHost;

namespace Broker.Grains.Tests;

/// <summary>
/// The silo's lanes to front-ends: deliveries of many rooms due while a call is in flight leave
/// together; failures stay with the call that had them; a front-end that does not know
/// DeliverRooms gets single deliveries. The first tests drive a lane directly (its own
/// concurrency, no Orleans); the last goes through a real one-silo cluster.
/// </summary>
public sealed class FrontendLanesTests(OneSiloClusterFixture fixture) : GrainTestBase(fixture.Client), IClassFixture<OneSiloClusterFixture>
{
    private static readonly TimeSpan s_wait = TimeSpan.FromSeconds(10);

    [Fact]
    public async Task Send_WhileACallIsInFlight_DeliveriesOfOtherRoomsWaitAndLeaveInOneCall()
    {
        var lanes = new FrontendLanes();
        var frontend = new ScriptedFrontend();
        var held = frontend.HoldNextCall();

        var first = lanes.Send("fe", frontend, Delivery("r0"));
        await frontend.CallStarted(1).WaitAsync(s_wait);
        var queued = Enumerable.Range(1, 5).Select(i => lanes.Send("fe", frontend, Delivery($"r{i}"))).ToList();
        Assert.Equal(5, lanes.PendingFor("fe"));
        Assert.All(queued, t => Assert.False(t.IsCompleted));

        held.SetResult();
        await first.WaitAsync(s_wait);
        await Task.WhenAll(queued).WaitAsync(s_wait);

        Assert.Equal(["single r0", "shared r1,r2,r3,r4,r5"], frontend.Calls());
    }

    [Fact]
    public async Task Send_FrontendWithoutDeliverRooms_EachGoesAloneAndTheLaneRemembers()
    {
        var lanes = new FrontendLanes();
        var frontend = new ScriptedFrontend { KnowsDeliverRooms = false };
        var held = frontend.HoldNextCall();

        var first = lanes.Send("old", frontend, Delivery("r0"));
        await frontend.CallStarted(1).WaitAsync(s_wait);
        var queued = Enumerable.Range(1, 3).Select(i => lanes.Send("old", frontend, Delivery($"r{i}"))).ToList();
        held.SetResult();
        await Task.WhenAll(queued.Append(first)).WaitAsync(s_wait);

        // The shared call was refused; each of its deliveries then went through on its own.
        Assert.True(lanes.IsSingleOnly("old"));
        Assert.Equal(["single r0", "refused r1,r2,r3"], frontend.Calls().Take(2));
        Assert.Equal(["single r1", "single r2", "single r3"], frontend.Calls().Skip(2).Order());

        // From then on only single calls, even when deliveries queue up.
        held = frontend.HoldNextCall();
        var next = lanes.Send("old", frontend, Delivery("r4"));
        await frontend.CallStarted(6).WaitAsync(s_wait);
        var more = Enumerable.Range(5, 2).Select(i => lanes.Send("old", frontend, Delivery($"r{i}"))).ToList();
        held.SetResult();
        await Task.WhenAll(more.Append(next)).WaitAsync(s_wait);
        Assert.DoesNotContain(frontend.Calls().Skip(5), c => c.StartsWith("refused", StringComparison.Ordinal) || c.StartsWith("shared", StringComparison.Ordinal));
    }

    [Fact]
    public async Task Send_SharedCallFailsForAnotherReason_EachGoesAgainAlone_TheLaneKeepsSharing()
    {
        var lanes = new FrontendLanes();
        var frontend = new ScriptedFrontend { KnowsDeliverRooms = false, SharedCallError = new InvalidOperationException("one room's delivery failed") };
        var held = frontend.HoldNextCall();

        var first = lanes.Send("fe", frontend, Delivery("r0"));
        await frontend.CallStarted(1).WaitAsync(s_wait);
        var queued = Enumerable.Range(1, 2).Select(i => lanes.Send("fe", frontend, Delivery($"r{i}"))).ToList();
        held.SetResult();
        await Task.WhenAll(queued.Append(first)).WaitAsync(s_wait);

        // Not taken for an older front-end: the error was not that the call is unknown.
        Assert.False(lanes.IsSingleOnly("fe"));
        Assert.Equal(["single r0", "refused r1,r2"], frontend.Calls().Take(2));
        Assert.Equal(["single r1", "single r2"], frontend.Calls().Skip(2).Order());
    }

    [Fact]
    public async Task Send_CallFails_OnlyItsDeliveriesFail_TheNextCallGoes()
    {
        var lanes = new FrontendLanes();
        var frontend = new ScriptedFrontend();
        var held = frontend.HoldNextCall();

        var first = lanes.Send("fe", frontend, Delivery("r0"));
        await frontend.CallStarted(1).WaitAsync(s_wait);
        var queued = lanes.Send("fe", frontend, Delivery("r1"));
        held.SetException(new InvalidOperationException("the front-end failed this call"));

        await Assert.ThrowsAsync<InvalidOperationException>(() => first.WaitAsync(s_wait));
        await queued.WaitAsync(s_wait);
        Assert.Equal(["single r0", "single r1"], frontend.Calls());
        Assert.False(lanes.IsSingleOnly("fe"));
    }

    [Fact]
    public async Task Send_CallNeverAnswered_ItsDeliveriesTimeOut_TheOnesQueuedBehindItGo()
    {
        var lanes = new FrontendLanes(timeout: TimeSpan.FromMilliseconds(300));
        var frontend = new ScriptedFrontend();
        var neverAnswered = frontend.HoldNextCall();

        var first = lanes.Send("fe", frontend, Delivery("r0"));
        await frontend.CallStarted(1).WaitAsync(s_wait);
        var queued = new[] { lanes.Send("fe", frontend, Delivery("r1")), lanes.Send("fe", frontend, Delivery("r2")) };

        await Assert.ThrowsAsync<TimeoutException>(() => first.WaitAsync(s_wait));
        await Task.WhenAll(queued).WaitAsync(s_wait);
        Assert.Equal(["single r0", "shared r1,r2"], frontend.Calls());
        Assert.True(lanes.RoomTimeout > 2 * lanes.Timeout, "a room waits for the call ahead of its own and its own");
        GC.KeepAlive(neverAnswered);
    }

    [Fact]
    public async Task Send_Disabled_EveryDeliveryIsACallOfItsOwn()
    {
        var lanes = new FrontendLanes(enabled: false);
        var frontend = new ScriptedFrontend();
        var held = frontend.HoldNextCall();

        var first = lanes.Send("fe", frontend, Delivery("r0"));
        var second = lanes.Send("fe", frontend, Delivery("r1"));
        await frontend.CallStarted(2).WaitAsync(s_wait);
        held.SetResult();
        await Task.WhenAll(first, second).WaitAsync(s_wait);

        Assert.Equal(["single r0", "single r1"], frontend.Calls());
        Assert.Equal(lanes.Timeout, lanes.RoomTimeout);
    }

    [Fact]
    public async Task Rooms_OnOneSilo_DeliveriesDueBehindAHeldCall_ReachTheFrontendInOneCall_EachInItsRoomsOrder()
    {
        var lanes = ((InProcessSiloHandle)fixture.Cluster.Primary!).SiloHost!.Services.GetRequiredService<FrontendLanes>();
        var frontend = NewFrontend("lanes");
        var keys = Enumerable.Range(0, 8).Select(_ => NewKey()).ToList();
        foreach (var key in keys)
        {
            await Room(key).Join(JoinOf($"c-{key}", "alice", frontend));
        }

        foreach (var key in keys)
        {
            await frontend.WaitForMemberEventAsync(key, RoomEventKind.MemberJoined, "alice");
        }

        var sharedBefore = frontend.SharedCalls().Count;

        // Hold the front-end's next delivery: what the other rooms have for it then waits in the lane.
        var release = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        var holding = 1;
        frontend.OnDeliverRoom = _ => Interlocked.Exchange(ref holding, 0) == 1 ? release.Task : Task.CompletedTask;
        await Room(keys[0]).Publish(PublishOf("bob", "{\"i\":0}"));
        await frontend.WaitForMessagesAsync(keys[0], 1);

        foreach (var key in keys.Skip(1))
        {
            await Room(key).Publish(PublishOf("bob", "{\"i\":1}"));
            await Room(key).Publish(PublishOf("bob", "{\"i\":2}"));
        }

        await WaitUntilAsync(() => lanes.PendingFor(frontend.Id) == keys.Count - 1, "every other room's delivery waiting in the lane");
        release.SetResult();

        foreach (var key in keys.Skip(1))
        {
            await frontend.WaitForMessagesAsync(key, 2);
            Assert.Equal([1L, 2L], frontend.RoomMessages(key).Select(m => m.Seq));
        }

        // The seven rooms' first messages, waiting in the lane, left in one call. Each room's
        // second message waited in the room's own queue (one delivery of a room in flight at a
        // time) and followed in a later call.
        var calls = frontend.SharedCalls().Skip(sharedBefore).ToList();
        Assert.Equal(keys.Skip(1).Order(), calls[0].Order());
    }

    private static async Task WaitUntilAsync(Func<bool> condition, string what)
    {
        var deadline = DateTime.UtcNow + s_wait;
        while (!condition())
        {
            if (DateTime.UtcNow > deadline)
            {
                throw new TimeoutException($"Not seen within {s_wait.TotalSeconds} s: {what}.");
            }

            await Task.Delay(10);
        }
    }

    private static RoomDelivery Delivery(string room) =>
        new("chat", room, "e1", [new RoomEvent(1, RoomEventKind.Position, string.Empty, null, 0)], "a1");

    /// <summary>
    /// A front-end observer called directly (no Orleans): records each call, and can hold its
    /// next call until the test completes (or fails) what <see cref="HoldNextCall"/> returned.
    /// </summary>
    private sealed class ScriptedFrontend : IFrontendObserver
    {
        private readonly Lock _gate = new();
        private readonly List<string> _calls = [];
        private readonly List<(int Count, TaskCompletionSource Done)> _waiters = [];
        private TaskCompletionSource? _hold;

        /// <summary>False: DeliverRooms fails, by default as on a front-end of a version before it.</summary>
        public bool KnowsDeliverRooms { get; init; } = true;

        /// <summary>What a failing DeliverRooms throws instead (e.g. one room's delivery failed).</summary>
        public Exception? SharedCallError { get; init; }

        public TaskCompletionSource HoldNextCall()
        {
            var hold = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
            lock (_gate)
            {
                _hold = hold;
            }

            return hold;
        }

        public Task CallStarted(int count)
        {
            var done = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
            lock (_gate)
            {
                if (_calls.Count >= count)
                {
                    return Task.CompletedTask;
                }

                _waiters.Add((count, done));
            }

            return done.Task;
        }

        public List<string> Calls()
        {
            lock (_gate)
            {
                return [.. _calls];
            }
        }

        public Task DeliverRoom(RoomDelivery delivery) => Called($"single {delivery.Room}");

        public Task DeliverRooms(ImmutableArray<RoomDelivery> deliveries)
        {
            var rooms = string.Join(',', deliveries.Select(d => d.Room));
            return KnowsDeliverRooms
                ? Called($"shared {rooms}")
                : Called($"refused {rooms}", SharedCallError ?? new TypeLoadException("DeliverRooms is unknown here (what a front-end from before it answers)"));
        }

        public Task DeliverDirect(DirectDelivery delivery) => Task.CompletedTask;

        public Task<ImmutableArray<RoomMemberRef>> GetRoomMembers(string ns, string room) => Task.FromResult(ImmutableArray<RoomMemberRef>.Empty);

        public Task<ImmutableArray<string>> GetUserConnections(string ns, string user) => Task.FromResult(ImmutableArray<string>.Empty);

        public Task<int> CloseUserConnections(string ns, string user, string reason) => Task.FromResult(0);

        private Task Called(string call, Exception? refusal = null)
        {
            TaskCompletionSource? hold;
            List<TaskCompletionSource> ready = [];
            lock (_gate)
            {
                _calls.Add(call);
                hold = _hold;
                _hold = null;
                _waiters.RemoveAll(w =>
                {
                    if (_calls.Count < w.Count)
                    {
                        return false;
                    }

                    ready.Add(w.Done);
                    return true;
                });
            }

            ready.ForEach(r => r.TrySetResult());
            if (refusal is not null)
            {
                return Task.FromException(refusal);
            }

            return hold?.Task ?? Task.CompletedTask;
        }
    }
}
