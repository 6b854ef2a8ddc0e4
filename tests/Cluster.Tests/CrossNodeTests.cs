using Broker.Cluster.Tests.Infrastructure;

namespace Broker.Cluster.Tests;

/// <summary>
/// Clients on two different front-ends share rooms: publish, send, presence, member events and
/// history work across nodes exactly as on one node (fe-1 and fe-2 of the shared cluster).
/// </summary>
[Collection(SharedClusterCollection.Name)]
public sealed class CrossNodeTests(SharedClusterFixture fixture, ITestOutputHelper output)
{
    private BrokerCluster Cluster => fixture.Cluster;

    private Task<WsClient> OnA(string user) => ConnectAsync(Cluster.Frontends[0], user);

    private Task<WsClient> OnB(string user) => ConnectAsync(Cluster.Frontends[1], user);

    [Fact]
    public Task Publish_ClientsOnTwoFrontends_BothReceiveEveryMessageInSeqOrder() => Cluster.GuardAsync(output, async () =>
    {
        var room = Names.Unique("room");
        await using var a = await OnA(Names.Unique("alice"));
        await using var b = await OnB(Names.Unique("bob"));
        Assert.Equal(0, (await a.JoinAsync(room)).GetProperty("seq").GetInt64());
        await b.JoinAsync(room);

        // Both publish at once, each waiting for its acks: 30 messages in one order.
        var fromA = Task.Run(() => PublishAsync(a, room, "a", 15));
        var fromB = Task.Run(() => PublishAsync(b, room, "b", 15));
        var acks = (await fromA).Concat(await fromB).ToDictionary(x => x.Data, x => x.Seq);
        Assert.Equal(Enumerable.Range(1, 30).Select(i => (long)i), acks.Values.Order());

        foreach (var client in new[] { a, b })
        {
            await client.WaitUntilAsync(_ => client.Messages(room).Count >= 30, what: "30 messages");
            var messages = client.Messages(room);
            Assert.Equal(30, messages.Count);
            Assert.Equal(Enumerable.Range(1, 30).Select(i => (long)i), messages.Select(m => m.Seq));
            foreach (var message in messages)
            {
                Assert.Equal(acks[message.DataString], message.Seq);
            }
        }

        var epochs = a.Messages(room).Concat(b.Messages(room)).Select(m => m.Json.GetProperty("epoch").GetString()).Distinct();
        Assert.Single(epochs);

        static async Task<List<(string Data, long Seq)>> PublishAsync(WsClient client, string room, string tag, int count)
        {
            var acks = new List<(string, long)>();
            for (var i = 1; i <= count; i++)
            {
                var data = PublishLoop.Data(tag, i);
                acks.Add((data, (await client.PublishAsync(room, data)).GetProperty("seq").GetInt64()));
            }

            return acks;
        }
    });

    [Fact]
    public Task Send_ToUserOnOtherFrontend_DeliveredOnce() => Cluster.GuardAsync(output, async () =>
    {
        await using var a = await OnA(Names.Unique("alice"));
        await using var b = await OnB(Names.Unique("bob"));

        var ack = await b.SendToAsync(a.User, "hello from fe-2");

        Assert.Equal(1, ack.GetProperty("delivered").GetInt32());
        var direct = await a.WaitForAsync(f => f.Type == "direct", what: "the direct message");
        Assert.Equal(b.User, direct.Json.GetProperty("from").GetString());
        Assert.Equal("hello from fe-2", direct.Json.GetProperty("data").GetString());

        // A user with a connection on each front-end: both get it, and the ack counts both.
        await using var a2 = await OnB(a.User);
        var both = await b.SendToAsync(a.User, "to both");
        Assert.Equal(2, both.GetProperty("delivered").GetInt32());
        await a.WaitForAsync(f => f.Type == "direct" && f.DataString == "to both");
        await a2.WaitForAsync(f => f.Type == "direct" && f.DataString == "to both");
    });

    [Fact]
    public Task Presence_MembersOnTwoFrontends_BothListedFromEither() => Cluster.GuardAsync(output, async () =>
    {
        var room = Names.Unique("room");
        await using var a = await OnA(Names.Unique("alice"));
        await using var b = await OnB(Names.Unique("bob"));
        await a.JoinAsync(room);
        await b.JoinAsync(room);

        string[] expected = [.. new[] { a.User, b.User }.Order(StringComparer.Ordinal)];
        Assert.Equal(expected, await a.PresentUsersAsync(room));
        Assert.Equal(expected, await b.PresentUsersAsync(room));
    });

    [Fact]
    public Task MemberEvents_JoinLeaveAndDisconnectOnOtherFrontend_ReceivedAcrossNodes() => Cluster.GuardAsync(output, async () =>
    {
        var room = Names.Unique("room");
        await using var a = await OnA(Names.Unique("alice"));
        await a.JoinAsync(room);

        var b = await OnB(Names.Unique("bob"));
        await using (b)
        {
            await b.JoinAsync(room);
            await a.WaitForMemberEventAsync("member_joined", room, b.User);
            await b.LeaveAsync(room);
            await a.WaitForMemberEventAsync("member_left", room, b.User);

            // And the other way round: fe-2 hears about fe-1's members.
            await b.JoinAsync(room);
            await using var c = await OnA(Names.Unique("carol"));
            await c.JoinAsync(room);
            await b.WaitForMemberEventAsync("member_joined", room, c.User);
        }

        // bob's socket closed without a leave: his front-end takes him out of the room.
        await a.WaitUntilAsync(
            pushes => pushes.Count(f => f.Type == "member_left" && f.Json.GetProperty("user").GetString() == b.User) >= 2,
            what: "member_left after bob disconnected");
        Assert.DoesNotContain(b.User, await a.PresentUsersAsync(room));
    });

    [Fact]
    public Task History_FromOtherFrontend_ShowsMessagesPublishedOnFirst() => Cluster.GuardAsync(output, async () =>
    {
        var room = Names.Unique("room");
        await using var a = await OnA(Names.Unique("alice"));
        await a.JoinAsync(room);
        for (var i = 1; i <= 3; i++)
        {
            await a.PublishAsync(room, PublishLoop.Data("h", i));
        }

        await using var b = await OnB(Names.Unique("bob"));
        await b.JoinAsync(room); // history is for members (HistoryRequiresMembership)
        var history = await b.HistoryAsync(room);

        var messages = history.GetProperty("messages").EnumerateArray().ToList();
        Assert.Equal(["h#1", "h#2", "h#3"], messages.Select(m => m.GetProperty("data").GetString()));
        Assert.Equal([1L, 2L, 3L], messages.Select(m => m.GetProperty("seq").GetInt64()));
        Assert.All(messages, m =>
        {
            Assert.Equal("message", m.GetProperty("type").GetString());
            Assert.Equal(a.User, m.GetProperty("from").GetString());
            Assert.Equal(room, m.GetProperty("room").GetString());
        });

        // A join from fe-2 with since 1 recovers the two it missed (a connection not yet in the
        // room: a second join of a room already joined replays nothing).
        await using var c = await OnB(Names.Unique("carol"));
        var joined = await c.ExpectAsync("joined", new()
        {
            ["type"] = "join", ["room"] = room, ["since"] = 1, ["epoch"] = history.GetProperty("epoch").GetString(),
        });
        Assert.True(joined.GetProperty("recovered").GetBoolean());
        Assert.Equal(["h#2", "h#3"], c.Messages(room).Select(m => m.DataString));
    });

    private static Task<WsClient> ConnectAsync(FrontendProcess frontend, string user) => WsClient.ConnectAsync(frontend.WsBase, user);
}
