using System.Text.Json;
using Broker.Client.Tests.Infrastructure;

namespace Broker.Client.Tests;

/// <summary>Every call of the public API against a real broker.</summary>
public sealed class ClientApiTests(ServerFixture fixture) : IClassFixture<ServerFixture>
{
    [Fact]
    public async Task JoinPublishPresenceHistorySendLeave_EachDoesWhatTheProtocolSays()
    {
        var (aliceName, bobName, lobby) = (Names.Unique("alice"), Names.Unique("bob"), Names.Unique("lobby"));
        await using var alice = new BrokerClient([fixture.Chat], new BrokerClientOptions { User = aliceName });
        await using var bob = new BrokerClient(fixture.Chat, new BrokerClientOptions { User = bobName });
        var states = new Collector<BrokerConnectionState>();
        alice.StateChanged += (_, e) => states.Add(e.State);

        await alice.ConnectAsync();
        Assert.Equal(BrokerConnectionState.Connected, alice.State);
        Assert.Equal([BrokerConnectionState.Connecting, BrokerConnectionState.Connected], states.Items);
        Assert.Equal(aliceName, alice.UserId);
        Assert.StartsWith("c-", alice.ConnectionId, StringComparison.Ordinal);

        var aliceRoom = alice.Room(lobby);
        Assert.Same(aliceRoom, alice.Room(lobby));
        var aliceMessages = new Collector<RoomMessage>();
        var joinedEvents = new Collector<MemberEventArgs>();
        var leftEvents = new Collector<MemberEventArgs>();
        aliceRoom.MessageReceived += (_, m) => aliceMessages.Add(m);
        aliceRoom.MemberJoined += (_, e) => joinedEvents.Add(e);
        aliceRoom.MemberLeft += (_, e) => leftEvents.Add(e);
        var joined = await aliceRoom.JoinAsync();
        Assert.Equal(0, joined.Seq);
        Assert.False(string.IsNullOrEmpty(joined.Epoch));
        Assert.True(aliceRoom.IsJoined);

        // Bob connects lazily with his first call.
        var bobRoom = bob.Room(lobby);
        var bobMessages = new Collector<RoomMessage>();
        bobRoom.MessageReceived += (_, m) => bobMessages.Add(m);
        await bobRoom.JoinAsync();
        await joinedEvents.WaitAsync(e => e.Any(x => x.User == bobName), Limits.Wait, "member_joined of bob");

        var first = await aliceRoom.PublishAsync(new { text = "hi" });
        var second = await bobRoom.PublishAsync(JsonDocument.Parse("[1,2,3]").RootElement);
        Assert.Equal(1, first.Seq);
        Assert.Equal(2, second.Seq);
        Assert.NotEqual(first.MsgId, second.MsgId);

        foreach (var messages in new[] { aliceMessages, bobMessages })
        {
            var got = await messages.WaitCountAsync(2, Limits.Wait, "both messages");
            Assert.Equal([1L, 2L], got.Select(m => m.Seq));
            Assert.Equal("hi", got[0].Data.GetProperty("text").GetString());
            Assert.Equal(aliceName, got[0].From);
            Assert.Equal(bobName, got[1].From);
            Assert.Equal(3, got[1].Data.GetArrayLength());
            Assert.Equal(joined.Epoch, got[0].Epoch);
        }

        var presence = await aliceRoom.PresenceAsync();
        Assert.Equal([aliceName, bobName], presence.Select(p => p.User).Order(StringComparer.Ordinal));
        Assert.All(presence, p => Assert.Equal(1, p.Connections));

        var history = await aliceRoom.HistoryAsync();
        Assert.Equal([1L, 2L], history.Messages.Select(m => m.Seq));
        Assert.Equal(joined.Epoch, history.Epoch);
        Assert.False(history.More);
        var page = await aliceRoom.HistoryAsync(since: 1, limit: 1);
        Assert.Equal([2L], page.Messages.Select(m => m.Seq));

        var directs = new Collector<DirectMessage>();
        bob.DirectReceived += (_, d) => directs.Add(d);
        Assert.Equal(1, await alice.SendAsync(bobName, new { text = "psst" }));
        var direct = (await directs.WaitCountAsync(1, Limits.Wait, "the direct message"))[0];
        Assert.Equal(aliceName, direct.From);
        Assert.Equal("psst", direct.Data.GetProperty("text").GetString());
        Assert.Equal(0, await alice.SendAsync(Names.Unique("nobody"), 42));

        await bobRoom.LeaveAsync();
        Assert.False(bobRoom.IsJoined);
        await leftEvents.WaitAsync(e => e.Any(x => x.User == bobName), Limits.Wait, "member_left of bob");
        var third = await aliceRoom.PublishAsync("after bob left");
        await aliceMessages.WaitCountAsync(3, Limits.Wait, "the third message");
        Assert.Equal(3, third.Seq);
        Assert.Equal(2, bobMessages.Items.Count);
    }

    [Fact]
    public async Task Messages_AsAsyncStream_InOrder()
    {
        await using var client = new BrokerClient(fixture.Chat, new BrokerClientOptions { User = Names.Unique("reader") });
        var room = client.Room(Names.Unique("stream"));
        var stream = room.Messages;
        await room.JoinAsync();
        var acks = new List<PublishAck>();
        var publishes = Enumerable.Range(1, 20).Select(i => room.PublishAsync(i)).ToList();
        foreach (var p in publishes)
        {
            acks.Add(await p);
        }

        // Publishes of one client are ordered as they were called.
        Assert.Equal(Enumerable.Range(1, 20).Select(i => (long)i), acks.Select(a => a.Seq));
        var received = new List<RoomMessage>();
        using var timeout = new CancellationTokenSource(Limits.Wait);
        await foreach (var m in stream.WithCancellation(timeout.Token))
        {
            received.Add(m);
            if (received.Count == 20)
            {
                break;
            }
        }

        Assert.Equal(Enumerable.Range(1, 20), received.Select(m => m.Data.GetInt32()));
    }

    [Fact]
    public async Task Errors_AreBrokerExceptionsWithTheProtocolCode()
    {
        await using var client = new BrokerClient(fixture.Chat, new BrokerClientOptions { User = Names.Unique("err") });
        var notJoined = client.Room(Names.Unique("nj"));
        var error = await Assert.ThrowsAsync<BrokerException>(() => notJoined.PublishAsync("x"));
        Assert.Equal("not_member", error.Code);

        var tooLong = client.Room(new string('r', 1000));
        error = await Assert.ThrowsAsync<BrokerException>(() => tooLong.JoinAsync());
        Assert.Equal("too_large", error.Code);
        Assert.False(tooLong.IsJoined);

        await using var notifications = new BrokerClient(fixture.Server.Ws("notifications"), new BrokerClientOptions { User = Names.Unique("n") });
        var room = notifications.Room("news");
        await room.JoinAsync();
        error = await Assert.ThrowsAsync<BrokerException>(() => room.PublishAsync("x"));
        Assert.Equal("forbidden", error.Code);

        // The client goes on working after errors.
        var ok = client.Room(Names.Unique("ok"));
        await ok.JoinAsync();
        Assert.Equal(1, (await ok.PublishAsync("fine")).Seq);
    }

    [Fact]
    public async Task UnknownNamespace_ConnectFailsWithNotFoundAndTheClientCloses()
    {
        var closed = new Collector<BrokerStateChangedEventArgs>();
        await using var client = new BrokerClient(fixture.Server.Ws("no-such-namespace"), new BrokerClientOptions { User = "x" });
        client.StateChanged += (_, e) => closed.Add(e);
        var error = await Assert.ThrowsAsync<BrokerException>(() => client.ConnectAsync());
        Assert.Equal("not_found", error.Code);
        Assert.Equal(BrokerConnectionState.Closed, client.State);
        Assert.Equal("closed", (await Assert.ThrowsAsync<BrokerException>(() => client.Room("r").PublishAsync(1))).Code);
    }

    [Fact]
    public async Task Cancellation_StopsAWaitingCall()
    {
        // Nothing listens on this port: the client keeps retrying, and the call's token ends the wait.
        var nowhere = new Uri($"ws://127.0.0.1:{Broker.Frontend.Tests.Infrastructure.FreePorts.Next()}/chat");
        await using var client = new BrokerClient(nowhere, new BrokerClientOptions { User = "x" });
        using var cts = new CancellationTokenSource(TimeSpan.FromMilliseconds(300));
        await Assert.ThrowsAnyAsync<OperationCanceledException>(() => client.Room("r").PublishAsync(1, cts.Token));
        using var cts2 = new CancellationTokenSource(TimeSpan.FromMilliseconds(300));
        await Assert.ThrowsAnyAsync<OperationCanceledException>(() => client.ConnectAsync(cts2.Token));
    }

    [Fact]
    public async Task DisposeAsync_ClosesTheConnectionCleanly()
    {
        var name = Names.Unique("leaver");
        var states = new Collector<BrokerConnectionState>();
        var client = new BrokerClient(fixture.Chat, new BrokerClientOptions { User = name });
        client.StateChanged += (_, e) => states.Add(e.State);
        var room = client.Room(Names.Unique("bye"));
        await room.JoinAsync();
        await using var watcher = new BrokerClient(fixture.Chat, new BrokerClientOptions { User = Names.Unique("watcher") });
        var watched = watcher.Room(room.Name);
        var left = new Collector<MemberEventArgs>();
        watched.MemberLeft += (_, e) => left.Add(e);
        await watched.JoinAsync();

        await client.DisposeAsync();
        Assert.Equal(BrokerConnectionState.Closed, client.State);
        Assert.Equal(BrokerConnectionState.Closed, states.Items[^1]);
        Assert.DoesNotContain(BrokerConnectionState.Disconnected, states.Items);
        await left.WaitAsync(e => e.Any(x => x.User == name), Limits.Wait, "member_left after dispose");
        Assert.Equal("closed", (await Assert.ThrowsAsync<BrokerException>(() => room.PublishAsync(1))).Code);
    }
}
