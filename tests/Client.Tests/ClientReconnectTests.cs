using System.Net.WebSockets;
using System.Security.Claims;
using System.Text;
using Broker.Client.Tests.Infrastructure;
using Broker.Frontend.Tests.Infrastructure;
using Microsoft.IdentityModel.JsonWebTokens;
using Microsoft.IdentityModel.Tokens;

namespace Broker.Client.Tests;

/// <summary>The client against a real broker that drops its sockets, loses a room's state, or wants tokens refreshed.</summary>
public sealed class ClientReconnectTests
{
    private const string Key = "0123456789abcdef0123456789abcdef";

    [Fact]
    public async Task ServerDropsSockets_ClientsReconnect_EveryMessageOnceInOrder_PublishesAckedOnce()
    {
        await using var server = await BrokerServer.StartAsync();
        var room = Names.Unique("drops");
        await using var subscriber = new BrokerClient(server.Ws("chat"), new BrokerClientOptions { User = Names.Unique("sub") });
        await using var publisher = new BrokerClient(server.Ws("chat"), new BrokerClientOptions { User = Names.Unique("pub") });
        var states = new Collector<BrokerStateChangedEventArgs>();
        subscriber.StateChanged += (_, e) => states.Add(e);
        var received = new Collector<RoomMessage>();
        var resets = new Collector<RoomResetEventArgs>();
        var subRoom = subscriber.Room(room);
        subRoom.MessageReceived += (_, m) => received.Add(m);
        subRoom.Reset += (_, r) => resets.Add(r);
        await subRoom.JoinAsync();
        var pubRoom = publisher.Room(room);
        await pubRoom.JoinAsync();

        const int total = 300;
        var acks = new List<PublishAck>();
        using var stop = new CancellationTokenSource(TimeSpan.FromSeconds(60));
        var publishing = Task.Run(async () =>
        {
            for (var i = 1; i <= total; i++)
            {
                acks.Add(await pubRoom.PublishAsync(i, stop.Token));
            }
        });

        // Twice mid-stream: a plain drop (1011), then "node shutting down" (1012).
        await received.WaitCountAsync(50, Limits.Wait, "50 messages before the first drop");
        await server.Node.CloseAllAsync(WebSocketCloseStatus.InternalServerError, "test drop");
        await states.WaitAsync(s => s.Count(x => x.State == BrokerConnectionState.Connected) >= 2, Limits.Wait, "reconnected once");
        var count = received.Items.Count;
        await received.WaitCountAsync(count + 50, Limits.Wait, "50 more messages");
        await server.Node.CloseAllAsync((WebSocketCloseStatus)1012, "test restart");
        await publishing.WaitAsync(TimeSpan.FromSeconds(60));
        var got = await received.WaitCountAsync(total, Limits.Wait, "every message");

        Assert.Equal(Enumerable.Range(1, total), got.Select(m => m.Data.GetInt32()));
        Assert.Equal(Enumerable.Range(1, total).Select(i => (long)i), got.Select(m => m.Seq));
        Assert.Equal(Enumerable.Range(1, total).Select(i => (long)i), acks.Select(a => a.Seq));
        Assert.Empty(resets.Items);
        var disconnects = states.Items.Where(s => s.State == BrokerConnectionState.Disconnected).ToList();
        Assert.Equal(2, disconnects.Count);
        Assert.Equal([1011, 1012], disconnects.Select(d => d.CloseStatus ?? 0));
        await states.WaitAsync(s => s[^1].State == BrokerConnectionState.Connected, Limits.Wait, "connected at the end");
    }

    [Fact]
    public async Task RoomStateLost_ResetRaised_DeliveryGoesOnInTheNewEpoch()
    {
        await using var server = await BrokerServer.StartAsync(new Dictionary<string, string?>
        {
            ["Broker:Namespaces:chat:EmptyRoomTimeout"] = "00:00:00",
        });
        await using var client = new BrokerClient(server.Ws("chat"), new BrokerClientOptions { User = Names.Unique("sub"), OverloadedDelay = TimeSpan.FromSeconds(2) });
        var room = client.Room(Names.Unique("lost"));
        var received = new Collector<RoomMessage>();
        var resets = new Collector<RoomResetEventArgs>();
        room.MessageReceived += (_, m) => received.Add(m);
        room.Reset += (_, r) => resets.Add(r);
        var joined = await room.JoinAsync();
        for (var i = 1; i <= 3; i++)
        {
            await room.PublishAsync(i);
        }

        await received.WaitCountAsync(3, Limits.Wait, "three messages");

        // 1013: the client backs off; meanwhile the room, now without members, is let go with its history.
        await server.Node.CloseAllAsync(WebSocketCloseStatus.InternalServerError + 2, "overloaded");
        var reset = (await resets.WaitCountAsync(1, Limits.Wait, "a reset after the re-join"))[0];
        Assert.Equal(joined.Epoch, reset.PreviousEpoch);
        Assert.Equal(3, reset.PreviousSeq);
        Assert.NotEqual(joined.Epoch, reset.Epoch);
        Assert.Equal(0, reset.Seq);

        var ack = await room.PublishAsync(4);
        Assert.Equal(1, ack.Seq);
        var got = await received.WaitCountAsync(4, Limits.Wait, "the message of the new epoch");
        Assert.Equal([1, 2, 3, 4], got.Select(m => m.Data.GetInt32()));
        Assert.Equal(reset.Epoch, got[3].Epoch);
        Assert.Equal((reset.Epoch, 1L), room.Position!.Value is var p ? (p.Epoch, p.Seq) : default);
    }

    [Fact]
    public async Task GetToken_TokenRefreshedBeforeExpiry_TheConnectionOutlivesItsFirstToken()
    {
        await using var server = await BrokerServer.StartAsync(new Dictionary<string, string?> { ["Broker:Jwt:SigningKey"] = Key });
        var user = Names.Unique("carol");
        var issued = new Collector<DateTimeOffset>();
        var states = new Collector<BrokerConnectionState>();
        await using var client = new BrokerClient(server.Ws("chat"), new BrokerClientOptions
        {
            GetToken = _ =>
            {
                issued.Add(DateTimeOffset.UtcNow);
                return ValueTask.FromResult(Token(user, TimeSpan.FromSeconds(3)));
            },
            RefreshBeforeExpiry = TimeSpan.FromSeconds(1),
        });
        client.StateChanged += (_, e) => states.Add(e.State);
        var room = client.Room(Names.Unique("tok"));
        await room.JoinAsync();
        Assert.Equal(user, client.UserId);
        var connection = client.ConnectionId;

        // The first token expires (at most) 3 s after it was issued: wait for a refresh later than that.
        var tokens = await issued.WaitAsync(t => t.Count >= 2 && t[^1] > t[0] + TimeSpan.FromSeconds(3.5), TimeSpan.FromSeconds(15), "refreshes past the first expiry");
        Assert.True(tokens.Count >= 3);
        Assert.Equal(1, (await room.PublishAsync("still here")).Seq);
        Assert.Equal(connection, client.ConnectionId);
        Assert.DoesNotContain(BrokerConnectionState.Disconnected, states.Items);
    }

    [Fact]
    public async Task StaticTokenExpires_1008_ClientCloses()
    {
        await using var server = await BrokerServer.StartAsync(new Dictionary<string, string?> { ["Broker:Jwt:SigningKey"] = Key });
        await using var client = new BrokerClient(server.Ws("chat"), new BrokerClientOptions { Token = Token(Names.Unique("dave"), TimeSpan.FromSeconds(2)) });
        var states = new Collector<BrokerStateChangedEventArgs>();
        client.StateChanged += (_, e) => states.Add(e);
        await client.ConnectAsync();
        var closed = await states.WaitAsync(s => s.Any(x => x.State == BrokerConnectionState.Closed), Limits.Wait, "closed after expiry");
        Assert.Equal("policy", Assert.IsType<BrokerException>(closed[^1].Error).Code);
    }

    private static string Token(string subject, TimeSpan lifetime)
    {
        var now = DateTime.UtcNow;
        return new JsonWebTokenHandler { SetDefaultTimesOnTokenCreation = false }.CreateToken(new SecurityTokenDescriptor
        {
            Subject = new ClaimsIdentity([new Claim("sub", subject)]),
            IssuedAt = now.AddMinutes(-1),
            NotBefore = now.AddMinutes(-1),
            Expires = now + lifetime,
            SigningCredentials = new SigningCredentials(new SymmetricSecurityKey(Encoding.UTF8.GetBytes(Key)), SecurityAlgorithms.HmacSha256),
        });
    }
}
