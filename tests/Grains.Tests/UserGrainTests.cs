using System.Collections.Immutable;
using Broker.Grains.Models;
using Broker.Grains.Tests.Infrastructure;

namespace Broker.Grains.Tests;

[Collection(ClusterCollection.Name)]
public sealed class UserGrainTests(ClusterFixture fixture) : GrainTestBase(fixture)
{
    [Fact]
    public async Task Send_NoConnections_ReturnsZero()
    {
        var delivered = await User(NewKey("user")).Send(Message("bob", "{}"));

        Assert.Equal(0, delivered);
    }

    [Fact]
    public async Task Send_ConnectionsOnTwoFrontends_ReturnsCountAndEachFrontendReceivesOnce()
    {
        var key = NewKey("user");
        var user = User(key);
        var a = NewFrontend("a");
        var b = NewFrontend("b");
        await user.Connect(new UserConnection("c1", a.Id, a.Reference));
        await user.Connect(new UserConnection("c2", a.Id, a.Reference));
        await user.Connect(new UserConnection("c3", b.Id, b.Reference));
        var message = new DirectMessage("bob", 1_700_000_000_123, Json("{\"hi\":\"ünïcode\"}"));

        var delivered = await user.Send(message);
        var marker = Message("bob", "{\"marker\":true}");
        await user.Send(marker);
        await a.WaitForDirectAsync(key, 2);
        await b.WaitForDirectAsync(key, 2);

        Assert.Equal(3, delivered);
        foreach (var frontend in new[] { a, b })
        {
            var deliveries = frontend.DirectDeliveries(key);
            Assert.All(deliveries, d =>
            {
                Assert.Equal("chat", d.Namespace);
                Assert.Equal(GrainKeys.Split(key).Name, d.User);
            });
            var messages = frontend.DirectMessages(key);
            Assert.Equal(2, messages.Count);
            Assert.Equal(message.From, messages[0].From);
            Assert.Equal(message.Timestamp, messages[0].Timestamp);
            Assert.Equal(message.Payload, messages[0].Payload);
            Assert.Equal(marker.Payload, messages[1].Payload);
        }
    }

    [Fact]
    public async Task Disconnect_LastConnection_DeactivatesTheUser()
    {
        var key = NewKey("user");
        var user = User(key);
        var a = NewFrontend("a");
        await user.Connect(new UserConnection("c1", a.Id, a.Reference));
        await user.Connect(new UserConnection("c2", a.Id, a.Reference));
        await user.Disconnect("c1");
        Assert.True(await IsActiveAsync(key), "The user still has a connection: its activation must stay.");

        await user.Disconnect("c2");

        // Deactivation follows the turn; wait for it rather than for a fixed time.
        await WaitUntilAsync(async () => !await IsActiveAsync(key), TimeSpan.FromSeconds(10), "the user grain to deactivate after its last connection left");

        // A later activation starts empty and still answers.
        Assert.Equal(0, await user.Send(Message("bob", "{}")));
    }

    [Fact]
    public async Task Disconnect_LastConnectionOnFrontend_NotToldWhenThatFrontendIsLost()
    {
        var gone = NewKey("user");
        var stays = NewKey("user");
        var a = NewFrontend("a");
        await User(gone).Connect(new UserConnection("g1", a.Id, a.Reference));
        await User(stays).Connect(new UserConnection("s1", a.Id, a.Reference));
        await User(gone).Disconnect("g1");
        await WaitUntilAsync(async () => !await IsActiveAsync(gone), TimeSpan.FromSeconds(10), "the user without connections to deactivate");

        // The front-end's lease runs out: the user still on it is told, and drops its connection there.
        await Client.GetGrain<IFrontendRegistryGrain>(IFrontendRegistryGrain.Key).Renew(new FrontendLease(a.Id, a.Reference, TimeSpan.FromMilliseconds(300), KnownFrontends: 0));
        await WaitUntilAsync(async () => await User(stays).Send(Message("bob", "{}")) == 0, TimeSpan.FromSeconds(15), "the watching user to hear that the front-end was lost");

        // The one that unwatched is not: telling it would activate it again.
        var window = DateTime.UtcNow + TimeSpan.FromSeconds(2);
        while (DateTime.UtcNow < window)
        {
            Assert.False(await IsActiveAsync(gone), "The user that had unwatched the front-end was told it was lost (it was activated again).");
            await Task.Delay(100);
        }
    }

    [Fact]
    public async Task CloseConnections_ConnectionsOnTwoFrontendsOneUnknownToTheGrain_AsksEveryLiveFrontendAndSumsTheirCounts()
    {
        var key = NewKey("user");
        var a = await LiveFrontendAsync("a");
        var b = await LiveFrontendAsync("b");
        a.UserConnections[key] = ["c1", "c2"];
        b.UserConnections[key] = ["c3"];

        // The grain was told of one connection on a; b's it never heard of (a generated id, a rebuilt activation).
        await User(key).Connect(new UserConnection("c1", a.Id, a.Reference));
        var closed = await User(key).CloseConnections("Banned for spam.");

        Assert.Equal(3, closed);
        Assert.Contains((key, "Banned for spam."), a.Closings);
        Assert.Contains((key, "Banned for spam."), b.Closings);
    }

    [Fact]
    public async Task CloseConnections_OneFrontendDoesNotAnswer_TheOthersStillCounted()
    {
        var key = NewKey("user");
        var answering = await LiveFrontendAsync("answering");
        answering.UserConnections[key] = ["c1"];
        var registry = Client.GetGrain<IFrontendRegistryGrain>(IFrontendRegistryGrain.Key);
        var silent = new RecordingFrontend($"fe-silent-{Guid.NewGuid():N}");
        silent.Reference = Client.CreateObjectReference<IFrontendObserver>(silent);
        silent.UserConnections[key] = ["c2"];
        await registry.Renew(new FrontendLease(silent.Id, silent.Reference, TimeSpan.FromHours(1), KnownFrontends: 0));

        // Its object is gone, its lease not yet: calls to it fail or time out.
        Client.DeleteObjectReference<IFrontendObserver>(silent.Reference);
        try
        {
            var closed = await User(key).CloseConnections("Bye.");

            Assert.Equal(1, closed);
            Assert.Empty(silent.Closings);
        }
        finally
        {
            await registry.Leave(silent.Id);
        }
    }

    /// <summary>A front-end whose lease the registry holds before the test goes on.</summary>
    private async Task<RecordingFrontend> LiveFrontendAsync(string name)
    {
        var frontend = NewFrontend(name);
        await Client.GetGrain<IFrontendRegistryGrain>(IFrontendRegistryGrain.Key).Renew(new FrontendLease(frontend.Id, frontend.Reference, TimeSpan.FromHours(1), KnownFrontends: 0));
        return frontend;
    }

    private static async Task WaitUntilAsync(Func<Task<bool>> condition, TimeSpan timeout, string what)
    {
        var deadline = DateTime.UtcNow + timeout;
        while (!await condition())
        {
            Assert.True(DateTime.UtcNow < deadline, $"Timed out after {timeout.TotalSeconds:0} s waiting for {what}.");
            await Task.Delay(100);
        }
    }

    private async Task<bool> IsActiveAsync(string key)
    {
        var stats = await Client.GetGrain<IManagementGrain>(0).GetDetailedGrainStatistics();
        return stats.Any(s => s.GrainId.ToString().EndsWith(key, StringComparison.Ordinal));
    }

    [Fact]
    public async Task Disconnect_OneConnection_ReducesCount()
    {
        var user = User(NewKey("user"));
        var a = NewFrontend("a");
        await user.Connect(new UserConnection("c1", a.Id, a.Reference));
        await user.Connect(new UserConnection("c2", a.Id, a.Reference));

        await user.Disconnect("c1");
        var afterOne = await user.Send(Message("bob", "{}"));
        await user.Disconnect("unknown");
        var afterUnknown = await user.Send(Message("bob", "{}"));
        await user.Disconnect("c2");
        var afterAll = await user.Send(Message("bob", "{}"));

        Assert.Equal(1, afterOne);
        Assert.Equal(1, afterUnknown);
        Assert.Equal(0, afterAll);
    }

    [Fact]
    public async Task Disconnect_LastConnectionOnFrontend_FrontendStopsReceiving()
    {
        var key = NewKey("user");
        var user = User(key);
        var a = NewFrontend("a");
        var b = NewFrontend("b");
        await user.Connect(new UserConnection("c1", a.Id, a.Reference));
        await user.Connect(new UserConnection("c2", b.Id, b.Reference));

        await user.Disconnect("c2");
        Assert.Equal(1, await user.Send(Message("bob", "{\"n\":1}")));
        await a.WaitForDirectAsync(key, 1);
        await user.Connect(new UserConnection("c3", b.Id, b.Reference));
        Assert.Equal(2, await user.Send(Message("bob", "{\"n\":2}")));
        await b.WaitForDirectAsync(key, 1);

        Assert.Equal([Json("{\"n\":2}")], b.DirectMessages(key).Select(m => m.Payload));
    }

    [Fact]
    public async Task Connect_SameConnectionTwice_CountedOnce()
    {
        var user = User(NewKey("user"));
        var a = NewFrontend("a");

        await user.Connect(new UserConnection("c1", a.Id, a.Reference));
        await user.Connect(new UserConnection("c1", a.Id, a.Reference));

        Assert.Equal(1, await user.Send(Message("bob", "{}")));
    }

    [Fact]
    public async Task Send_ManyFromOneSender_ArriveInOrder()
    {
        const int count = 200;
        var key = NewKey("user");
        var user = User(key);
        var a = NewFrontend("a");
        var b = NewFrontend("b");
        await user.Connect(new UserConnection("c1", a.Id, a.Reference));
        await user.Connect(new UserConnection("c2", b.Id, b.Reference));

        for (var i = 0; i < count; i++)
        {
            Assert.Equal(2, await user.Send(Message("bob", $"{{\"i\":{i}}}")));
        }

        var expected = Enumerable.Range(0, count).Select(i => Json($"{{\"i\":{i}}}")).ToList();
        foreach (var frontend in new[] { a, b })
        {
            await frontend.WaitForDirectAsync(key, count);
            Assert.Equal(expected, frontend.DirectMessages(key).Select(m => m.Payload));
        }
    }

    [Fact]
    public async Task SyncFrontend_MissingConnections_AddsThemAdditively()
    {
        var key = NewKey("user");
        var user = User(key);
        var a = NewFrontend("a");
        var b = NewFrontend("b");
        await user.Connect(new UserConnection("c1", a.Id, a.Reference));

        await user.SyncFrontend(b.Id, b.Reference, ["c2", "c3"]);
        await user.SyncFrontend(b.Id, b.Reference, ImmutableArray<string>.Empty);
        var delivered = await user.Send(Message("bob", "{\"synced\":true}"));

        Assert.Equal(3, delivered);
        await b.WaitForDirectAsync(key, 1);
        await a.WaitForDirectAsync(key, 1);
    }

    [Fact]
    public async Task SyncFrontend_SnapshotTakenBeforeDisconnect_DoesNotBringTheConnectionBack()
    {
        var key = NewKey("user");
        var user = User(key);
        var a = NewFrontend("a");
        await user.Connect(new UserConnection("c1", a.Id, a.Reference));
        await user.Connect(new UserConnection("c2", a.Id, a.Reference));

        // The heartbeat's restatement listed c1 just before it closed, and arrives after the Disconnect.
        await user.Disconnect("c1");
        await user.SyncFrontend(a.Id, a.Reference, ["c1", "c2"]);

        Assert.Equal(1, await user.Send(Message("bob", "{\"n\":1}")));
    }

    [Fact]
    public async Task Connect_ReconnectWhileOldDeliveryInFlight_MessagesArriveInSenderOrder()
    {
        var key = NewKey("user");
        var user = User(key);
        var release = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        var slow = NewFrontend("slow");
        var first = Json("{\"n\":1}");
        slow.OnDeliverDirect = d => d.Messages.Any(m => m.Payload.SequenceEqual(first)) ? release.Task : Task.CompletedTask;
        await user.Connect(new UserConnection("c1", slow.Id, slow.Reference));
        try
        {
            // n=1 is in flight (held by the front-end), n=2 waits in the user's queue for it.
            await user.Send(new DirectMessage("bob", 1, first));
            await slow.WaitForDirectAsync(key, 1);
            await user.Send(Message("bob", "{\"n\":2}"));

            // The user's only connection there drops and reconnects to the same front-end; bob sends on.
            await user.Disconnect("c1");
            await user.Connect(new UserConnection("c2", slow.Id, slow.Reference));
            Assert.Equal(1, await user.Send(Message("bob", "{\"n\":3}")));
            await user.Disconnect("no-such-connection"); // runs after the turn that sends n=3
        }
        finally
        {
            release.TrySetResult();
        }

        await slow.WaitForDirectAsync(key, 3);
        var order = slow.DirectMessages(key).Select(m => System.Text.Encoding.UTF8.GetString(m.Payload)).ToList();
        Assert.Equal(["{\"n\":1}", "{\"n\":2}", "{\"n\":3}"], order);
    }

    private static DirectMessage Message(string from, string json) =>
        new(from, DateTimeOffset.UtcNow.ToUnixTimeMilliseconds(), Json(json));
}
