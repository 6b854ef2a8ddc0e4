using System.Text;
using System.Text.Json;
using Broker.Frontend.Tests.Infrastructure;
using Broker.Grains;
using Broker.Grains.Models;
using Microsoft.Extensions.Hosting;

namespace Broker.Frontend.Tests;

/// <summary>
/// An application grain of the test, hosted by the broker's embedded silo: it speaks in rooms and
/// to users through <see cref="BrokerServerApi"/>, as a bot or a game server would.
/// </summary>
[Alias("Broker.Tests.IServerApiCallerGrain")]
public interface IServerApiCallerGrain : IGrainWithStringKey
{
    [Alias("Publish")]
    Task<PublishResult> Publish(string ns, string room, string from, string json, string? msgId);

    [Alias("PublishUtf8")]
    Task<PublishResult> PublishUtf8(string ns, string room, string from, byte[] utf8Json, string? msgId);

    [Alias("Send")]
    Task<int> Send(string ns, string user, string from, string json);
}

public sealed class ServerApiCallerGrain : Grain, IServerApiCallerGrain
{
    public Task<PublishResult> Publish(string ns, string room, string from, string json, string? msgId) =>
        GrainFactory.PublishToRoomAsync(ns, room, from, json, msgId);

    public Task<PublishResult> PublishUtf8(string ns, string room, string from, byte[] utf8Json, string? msgId) =>
        GrainFactory.PublishToRoomAsync(ns, room, from, utf8Json, msgId);

    public Task<int> Send(string ns, string user, string from, string json) =>
        GrainFactory.SendToUserAsync(ns, user, from, json);
}

/// <summary>
/// A broker (front-end and embedded silo, real Kestrel) whose silo opens a gateway, and an Orleans
/// client of its own in another host, connected to that gateway over TCP like any application
/// process. Namespace "wide" keeps 10 MiB of history per room (so that what bounds a room only
/// server code has called is the room's own default, not the namespace's).
/// </summary>
public sealed class ServerApiBroker : IAsyncLifetime
{
    private IHost? _clientHost;

    public BrokerServer Server { get; private set; } = null!;

    /// <summary>The silo's own grain factory (what a grain's GrainFactory is).</summary>
    public IGrainFactory Silo => Server.Services.GetRequiredService<IGrainFactory>();

    /// <summary>An outside Orleans client.</summary>
    public IClusterClient Client => _clientHost!.Services.GetRequiredService<IClusterClient>();

    public async Task InitializeAsync()
    {
        var gateway = FreePorts.Next();
        Server = await BrokerServer.StartAsync(new Dictionary<string, string?>
        {
            ["Broker:Embedded:GatewayPort"] = gateway.ToString(System.Globalization.CultureInfo.InvariantCulture),
            ["Broker:Namespaces:wide:HistoryBytes"] = (10 * 1024 * 1024).ToString(System.Globalization.CultureInfo.InvariantCulture),
        });
        _clientHost = new HostBuilder()
            .UseOrleansClient(client => client.UseLocalhostClustering(gateway))
            .ConfigureLogging(logging => logging.SetMinimumLevel(LogLevel.Warning))
            .Build();
        using var timeout = new CancellationTokenSource(TestClient.DefaultTimeout);
        await _clientHost.StartAsync(timeout.Token);
    }

    public async Task DisposeAsync()
    {
        if (_clientHost is not null)
        {
            await _clientHost.StopAsync();
            _clientHost.Dispose();
        }

        await Server.DisposeAsync();
    }
}

/// <summary>
/// BrokerServerApi called from inside the cluster — from a grain, and from an outside Orleans
/// client — reaches real WebSocket clients of a real front-end: a room's <c>message</c> from the
/// server identity, numbered with the room's seq and epoch, recovered like any message,
/// idempotent per (from, msgId); a user's <c>direct</c> on each of its connections. Every
/// invalid argument throws ArgumentException with a sentence, and nothing is sent.
/// </summary>
public sealed class ServerApiGrainTests(ServerApiBroker broker) : IClassFixture<ServerApiBroker>
{
    private IServerApiCallerGrain Caller => broker.Client.GetGrain<IServerApiCallerGrain>("caller-" + Guid.NewGuid().ToString("N"));

    [Fact]
    public async Task FromGrain_Publish_EveryMemberGetsMessageFromServerIdentity_InSeqOrderWithClients()
    {
        // Carol publishes (her replies are read by RequestAsync); alice and bob only read.
        var room = BrokerFixture.UniqueRoom();
        await using var alice = await ConnectAsync("chat", "alice");
        await using var bob = await ConnectAsync("chat", "bob");
        await using var carol = await ConnectAsync("chat", "carol");
        var joined = await alice.JoinAsync(room);
        await bob.JoinAsync(room);
        await carol.JoinAsync(room);

        var first = await carol.PublishAsync(room, new { n = 1 });
        var server = await Caller.Publish("chat", room, "server:dice", "{\"text\":\"rolled 4\"}", null).WaitAsync(TestClient.DefaultTimeout);
        var third = await carol.PublishAsync(room, new { n = 3 });

        Assert.Equal(1, first.GetProperty("seq").GetInt64());
        Assert.Equal(2, server.Seq);
        Assert.False(server.Duplicate);
        Assert.Equal(joined.GetProperty("epoch").GetString(), server.Epoch);
        Assert.Equal(3, third.GetProperty("seq").GetInt64());
        foreach (var member in new[] { alice, bob })
        {
            var seen = await MessagesAsync(member, room, 3);
            Assert.Equal([1L, 2L, 3L], seen.Select(m => m.GetProperty("seq").GetInt64()));
            var message = seen[1];
            Assert.Equal("server:dice", message.GetProperty("from").GetString());
            Assert.Equal(server.Epoch, message.GetProperty("epoch").GetString());
            Assert.Equal("rolled 4", message.GetProperty("data").GetProperty("text").GetString());
            Assert.True(message.GetProperty("ts").GetInt64() > 0);
        }
    }

    [Fact]
    public async Task FromOrleansClient_PublishUtf8AndString_MembersReceiveBoth()
    {
        var room = BrokerFixture.UniqueRoom();
        await using var alice = await ConnectAsync("chat", "alice");
        await alice.JoinAsync(room);

        var utf8 = JsonSerializer.SerializeToUtf8Bytes(new { text = "héllo ✓" }, JsonSerializerOptions.Web);
        var one = await broker.Client.PublishToRoomAsync("chat", room, "server", utf8).WaitAsync(TestClient.DefaultTimeout);
        var two = await broker.Client.PublishToRoomAsync("chat", room, "server:client-app", "  [1, 2.5, null, \"x\"]\n").WaitAsync(TestClient.DefaultTimeout);

        var seen = await MessagesAsync(alice, room, 2);
        Assert.Equal((1L, "server", "héllo ✓"), (seen[0].GetProperty("seq").GetInt64(), seen[0].GetProperty("from").GetString(), seen[0].GetProperty("data").GetProperty("text").GetString()));
        Assert.Equal((2L, "server:client-app"), (seen[1].GetProperty("seq").GetInt64(), seen[1].GetProperty("from").GetString()));
        Assert.Equal("[1,2.5,null,\"x\"]", seen[1].GetProperty("data").GetRawText().Replace(" ", string.Empty, StringComparison.Ordinal));
        Assert.Equal((1L, 2L), (one.Seq, two.Seq));
    }

    [Fact]
    public async Task FromGrain_MessagesMissedWhileAway_RecoveredOnRejoinWithSince()
    {
        var room = BrokerFixture.UniqueRoom();
        long lastSeen;
        string epoch;
        await using (var alice = await ConnectAsync("chat", "alice"))
        {
            epoch = (await alice.JoinAsync(room)).GetProperty("epoch").GetString()!;
            await Caller.Publish("chat", room, "server:dice", "{\"n\":1}", null).WaitAsync(TestClient.DefaultTimeout);
            lastSeen = (await MessagesAsync(alice, room, 1))[0].GetProperty("seq").GetInt64();
        }

        // Away: two more from the server, one from a client.
        await Caller.Publish("chat", room, "server:dice", "{\"n\":2}", "m-2").WaitAsync(TestClient.DefaultTimeout);
        await broker.Client.PublishToRoomAsync("chat", room, "server:other", "{\"n\":3}").WaitAsync(TestClient.DefaultTimeout);
        await using var back = await ConnectAsync("chat", "alice");
        await back.SendAsync(new Dictionary<string, object?> { ["type"] = "join", ["id"] = "rejoin", ["room"] = room, ["since"] = lastSeen, ["epoch"] = epoch });

        var frames = new List<JsonElement>();
        while (frames.Count == 0 || frames[^1].GetProperty("type").GetString() != "joined")
        {
            frames.Add(await back.NextAsync());
        }

        var missed = frames.Where(f => f.GetProperty("type").GetString() == "message").ToList();
        Assert.Equal([2L, 3L], missed.Select(m => m.GetProperty("seq").GetInt64()));
        Assert.Equal(["server:dice", "server:other"], missed.Select(m => m.GetProperty("from").GetString()));
        Assert.All(missed, m => Assert.Equal(epoch, m.GetProperty("epoch").GetString()));
        Assert.True(frames[^1].GetProperty("recovered").GetBoolean());
        Assert.Equal(3, frames[^1].GetProperty("seq").GetInt64());
    }

    [Fact]
    public async Task Publish_RetryWithSameFromAndMsgId_AckedWithFirstSeqAndDeliveredOnce_OtherIdentityIsAnotherMessage()
    {
        var room = BrokerFixture.UniqueRoom();
        await using var alice = await ConnectAsync("chat", "alice");
        await using var carol = await ConnectAsync("chat", "carol");
        await alice.JoinAsync(room);
        await carol.JoinAsync(room);

        var first = await Caller.Publish("chat", room, "server:a", "{\"v\":\"first\"}", "m-1").WaitAsync(TestClient.DefaultTimeout);
        var retry = await broker.Client.PublishToRoomAsync("chat", room, "server:a", "{\"v\":\"retry\"}", "m-1").WaitAsync(TestClient.DefaultTimeout);
        var other = await broker.Silo.PublishToRoomAsync("chat", room, "server:b", "{\"v\":\"other\"}", "m-1").WaitAsync(TestClient.DefaultTimeout);
        var client = await carol.RequestAsync(new Dictionary<string, object?> { ["type"] = "publish", ["room"] = room, ["data"] = "client", ["msgId"] = "m-1" });

        Assert.Equal((1L, false), (first.Seq, first.Duplicate));
        Assert.Equal((1L, true, first.Epoch), (retry.Seq, retry.Duplicate, retry.Epoch));
        Assert.Equal((2L, false), (other.Seq, other.Duplicate));
        Assert.Equal(3, client.GetProperty("seq").GetInt64());

        // Exactly three messages, in order: the retry was not delivered again.
        var seen = await MessagesAsync(alice, room, 3);
        Assert.Equal([1L, 2L, 3L], seen.Select(m => m.GetProperty("seq").GetInt64()));
        Assert.Equal(["first", "other"], seen.Take(2).Select(m => m.GetProperty("data").GetProperty("v").GetString()));
        Assert.Equal(["server:a", "server:b", "carol"], seen.Select(m => m.GetProperty("from").GetString()));
    }

    [Fact]
    public async Task SendToUser_EveryConnectionGetsDirectFromServerIdentity_CountReturned_ZeroWhenNotConnected()
    {
        var user = "user-" + Guid.NewGuid().ToString("N")[..8];
        await using var one = await ConnectAsync("chat", user);
        await using var two = await ConnectAsync("chat", user);
        await using var elsewhere = await ConnectAsync("notifications", user);

        var fromGrain = await Caller.Send("chat", user, "server:mail", "{\"subject\":\"hi\"}").WaitAsync(TestClient.DefaultTimeout);
        var fromClient = await broker.Client.SendToUserAsync("chat", user, "server", "42"u8).WaitAsync(TestClient.DefaultTimeout);
        var nobody = await broker.Client.SendToUserAsync("chat", "nobody-" + Guid.NewGuid().ToString("N"), "server:mail", "{}").WaitAsync(TestClient.DefaultTimeout);

        Assert.Equal(2, fromGrain);
        Assert.Equal(2, fromClient);
        Assert.Equal(0, nobody);
        foreach (var connection in new[] { one, two })
        {
            var first = await connection.WaitForTypeAsync("direct");
            var second = await connection.WaitForTypeAsync("direct");
            Assert.Equal("server:mail", first.GetProperty("from").GetString());
            Assert.Equal("hi", first.GetProperty("data").GetProperty("subject").GetString());
            Assert.True(first.GetProperty("ts").GetInt64() > 0);
            Assert.Equal("server", second.GetProperty("from").GetString());
            Assert.Equal(42, second.GetProperty("data").GetInt32());
        }

        // Another namespace's connection of the same name is another user: its first direct is its own.
        Assert.Equal(1, await broker.Client.SendToUserAsync("notifications", user, "server", "\"marker\"").WaitAsync(TestClient.DefaultTimeout));
        Assert.Equal("marker", (await elsewhere.WaitForTypeAsync("direct")).GetProperty("data").GetString());
    }

    public static readonly TheoryData<string, string, string, string, string?, string> InvalidPublishes = new()
    {
        // ns, room, from, json, msgId, what the sentence must say
        { "", "r", "server", "{}", null, "namespace must not be empty" },
        { "/chat", "r", "server", "{}", null, "no '/'" },
        { new string('n', 201), "r", "server", "{}", null, "limit is 200" },
        { "chat", "", "server", "{}", null, "room must not be empty" },
        { "chat", new string('r', 201), "server", "{}", null, "201 characters" },
        { "chat", "r\uD800", "server", "{}", null, "lone surrogate" },
        { "chat", "r", "alice", "{}", null, "server identity" },
        { "chat", "r", "", "{}", null, "server identity" },
        { "chat", "r", "Server", "{}", null, "server identity" },
        { "chat", "r", "SERVER:dice", "{}", null, "server identity" },
        { "chat", "r", "server:", "{}", null, "server identity" },
        { "chat", "r", "server: dice", "{}", null, "server identity" },
        { "chat", "r", "server:dice\u200B", "{}", null, "server identity" },
        { "chat", "r", "server:ｄｉｃｅ", "{}", null, "server identity" },
        { "chat", "r", "server:dice\n", "{}", null, "server identity" },
        { "chat", "r", "server：dice", "{}", null, "server identity" },
        { "chat", "r", "guest:server", "{}", null, "server identity" },
        { "chat", "r", "server:" + new string('x', 194), "{}", null, "server identity" },
        { "chat", "r", "server", "{}", "", "msgId must not be empty" },
        { "chat", "r", "server", "{}", new string('m', 201), "msgId is 201" },
        { "chat", "r", "server", "", null, "empty" },
        { "chat", "r", "server", " \r\n\t", null, "empty" },
        { "chat", "r", "server", "hello", null, "not one JSON value" },
        { "chat", "r", "server", "{", null, "not one JSON value" },
        { "chat", "r", "server", "{}{}", null, "not one JSON value" },
        { "chat", "r", "server", "1 2", null, "not one JSON value" },
        { "chat", "r", "server", "{\"a\":1,}", null, "not one JSON value" },
        { "chat", "r", "server", "// note\n1", null, "not one JSON value" },
        { "chat", "r", "server", "\"\\ud800\"", null, "lone surrogate escape" },
        { "chat", "r", "server", "{\"\\udc00x\":1}", null, "lone surrogate escape" },
        { "chat", "r", "server", "\"\uD800\"", null, "lone surrogate" },
        { "chat", "r", "server", new string('[', 65) + new string(']', 65), null, "64 levels" },
        { "chat", "r", "server", "\"" + new string('a', BrokerServerApi.MaxDataBytes - 1) + "\"", null, "65537 bytes" },
        { "chat", "r", "server", "\"" + new string('é', BrokerServerApi.MaxDataBytes / 2) + "\"", null, "65538 bytes" },
    };

    [Theory]
    [MemberData(nameof(InvalidPublishes), DisableDiscoveryEnumeration = true)]
    public async Task Publish_InvalidArgument_ArgumentExceptionWithASentence_NothingSent(string ns, string room, string from, string json, string? msgId, string says)
    {
        var realRoom = BrokerFixture.UniqueRoom();
        var target = room == "r" ? realRoom : room;
        await using var alice = await ConnectAsync("chat", "alice");
        await alice.JoinAsync(realRoom);

        var errors = new List<ArgumentException>
        {
            Assert.ThrowsAny<ArgumentException>(() => { _ = broker.Silo.PublishToRoomAsync(ns, target, from, json, msgId); }),
        };

        // A lone surrogate cannot even be carried: UTF-8 (and Orleans' string encoding) turns it into U+FFFD.
        if (!HasLoneSurrogate(ns, target, from, json, msgId))
        {
            errors.Add(Assert.ThrowsAny<ArgumentException>(() => { _ = broker.Client.PublishToRoomAsync(ns, target, from, Encoding.UTF8.GetBytes(json), msgId); }));
            errors.Add(await Assert.ThrowsAnyAsync<ArgumentException>(() => Caller.Publish(ns, target, from, json, msgId)));
        }

        foreach (var error in errors)
        {
            Assert.Contains(says, error.Message, StringComparison.Ordinal);
            Assert.EndsWith(".", error.Message.Split(" (Parameter", StringSplitOptions.None)[0], StringComparison.Ordinal);
        }

        // Nothing reached the room: the next valid publish is its first message.
        var marker = await broker.Silo.PublishToRoomAsync("chat", realRoom, "server", "\"marker\"").WaitAsync(TestClient.DefaultTimeout);
        Assert.Equal(1, marker.Seq);
        var seen = await MessagesAsync(alice, realRoom, 1);
        Assert.Equal("marker", seen[0].GetProperty("data").GetString());
    }

    [Fact]
    public async Task Publish_Utf8_InvalidUtf8InsideAString_Refused_NothingSent()
    {
        var room = BrokerFixture.UniqueRoom();
        var user = "user-" + Guid.NewGuid().ToString("N")[..8];
        await using var alice = await ConnectAsync("chat", user);
        await alice.JoinAsync(room);

        byte[][] invalid =
        [
            [0x22, 0xC3, 0x28, 0x22], // "\xC3(": a lead byte without its continuation
            [0x22, 0xFF, 0x22],
            [0x22, 0xED, 0xA0, 0x80, 0x22], // an encoded surrogate (CESU-8)
            [0x22, 0xC0, 0xAF, 0x22], // an overlong '/'
        ];
        foreach (var bytes in invalid)
        {
            var error = Assert.ThrowsAny<ArgumentException>(() => { _ = broker.Silo.PublishToRoomAsync("chat", room, "server", bytes); });
            Assert.Contains("not valid UTF-8", error.Message, StringComparison.Ordinal);
            await Assert.ThrowsAnyAsync<ArgumentException>(() => Caller.PublishUtf8("chat", room, "server", bytes, null));
            Assert.ThrowsAny<ArgumentException>(() => { _ = broker.Client.SendToUserAsync("chat", user, "server", bytes); });
        }

        Assert.Equal(1, (await broker.Silo.PublishToRoomAsync("chat", room, "server", "0"u8).WaitAsync(TestClient.DefaultTimeout)).Seq);
        Assert.Equal("0", (await MessagesAsync(alice, room, 1))[0].GetProperty("data").GetRawText());
        await AssertFirstDirectIsMarkerAsync(alice, user);
    }

    [Fact]
    public async Task Publish_AtTheLimits_Accepted_AndDeliveredWhole()
    {
        var room = BrokerFixture.UniqueRoom();
        await using var alice = await ConnectAsync("chat", "alice");
        await alice.JoinAsync(room);
        var largest = "\"" + new string('a', BrokerServerApi.MaxDataBytes - 2) + "\"";
        var deepest = new string('[', BrokerServerApi.MaxDepth) + new string(']', BrokerServerApi.MaxDepth);
        var longestFrom = "server:" + new string('x', BrokerServerApi.MaxNameLength - 7);

        await Caller.Publish("chat", room, "server", largest, new string('m', 200)).WaitAsync(TestClient.DefaultTimeout);
        await Caller.Publish("chat", room, longestFrom, deepest, null).WaitAsync(TestClient.DefaultTimeout);
        await Caller.Publish("chat", room, "server:a-b_c.d:e@f", "\"\\ud83d\\ude00 \uD83D\uDE00\"", null).WaitAsync(TestClient.DefaultTimeout);

        var seen = await MessagesAsync(alice, room, 3);
        Assert.Equal(BrokerServerApi.MaxDataBytes - 2, seen[0].GetProperty("data").GetString()!.Length);
        Assert.Equal(longestFrom, seen[1].GetProperty("from").GetString());
        Assert.Equal(deepest, seen[1].GetProperty("data").GetRawText());
        Assert.Equal("server:a-b_c.d:e@f", seen[2].GetProperty("from").GetString());
        Assert.Equal("😀 😀", seen[2].GetProperty("data").GetString());
    }

    [Fact]
    public async Task SendToUser_InvalidArgument_ArgumentException_NothingSent()
    {
        var user = "user-" + Guid.NewGuid().ToString("N")[..8];
        await using var connection = await ConnectAsync("chat", user);

        Assert.Contains("server identity", Assert.ThrowsAny<ArgumentException>(() => { _ = broker.Client.SendToUserAsync("chat", user, user, "{}"); }).Message, StringComparison.Ordinal);
        Assert.Contains("user must not be empty", Assert.ThrowsAny<ArgumentException>(() => { _ = broker.Client.SendToUserAsync("chat", "", "server", "{}"); }).Message, StringComparison.Ordinal);
        Assert.Contains("no '/'", Assert.ThrowsAny<ArgumentException>(() => { _ = broker.Client.SendToUserAsync("/chat", user, "server", "{}"); }).Message, StringComparison.Ordinal);
        Assert.Contains("not one JSON value", Assert.ThrowsAny<ArgumentException>(() => { _ = broker.Client.SendToUserAsync("chat", user, "server", "hi"); }).Message, StringComparison.Ordinal);
        Assert.Contains("bytes", (await Assert.ThrowsAnyAsync<ArgumentException>(() => Caller.Send("chat", user, "server", "\"" + new string('a', BrokerServerApi.MaxDataBytes) + "\""))).Message, StringComparison.Ordinal);
        Assert.Throws<ArgumentNullException>(() => { _ = broker.Client.SendToUserAsync("chat", user, null!, "{}"); });
        Assert.Throws<ArgumentNullException>(() => { _ = broker.Client.SendToUserAsync("chat", user, "server", (string)null!); });
        Assert.Throws<ArgumentNullException>(() => { _ = ((IGrainFactory)null!).SendToUserAsync("chat", user, "server", "{}"); });

        await AssertFirstDirectIsMarkerAsync(connection, user);
    }

    [Fact]
    public async Task AlreadyCancelled_NothingSent_Canceled()
    {
        var room = BrokerFixture.UniqueRoom();
        var user = "user-" + Guid.NewGuid().ToString("N")[..8];
        await using var alice = await ConnectAsync("chat", user);
        await alice.JoinAsync(room);
        using var cancelled = new CancellationTokenSource();
        await cancelled.CancelAsync();

        await Assert.ThrowsAnyAsync<OperationCanceledException>(() => broker.Client.PublishToRoomAsync("chat", room, "server", "1", "m", cancelled.Token));
        await Assert.ThrowsAnyAsync<OperationCanceledException>(() => broker.Client.SendToUserAsync("chat", user, "server", "1", cancelled.Token));

        // The same msgId is new to the room: the cancelled publish never reached it.
        using var live = new CancellationTokenSource(TestClient.DefaultTimeout);
        var result = await broker.Client.PublishToRoomAsync("chat", room, "server", "2", "m", live.Token);
        Assert.Equal((1L, false), (result.Seq, result.Duplicate));
        Assert.Equal("2", (await MessagesAsync(alice, room, 1))[0].GetProperty("data").GetRawText());
        await AssertFirstDirectIsMarkerAsync(alice, user);
    }

    [Fact]
    public async Task RoomOnlyServerCodeCalled_HistoryBoundedByTheDefaultBytes_ThenReadLikeAnyRoom()
    {
        // "wide" keeps 10 MiB of history, but no front-end has told this room so: until one
        // does, the room's defaults (1 MiB) bound what server publishes make it hold.
        var room = BrokerFixture.UniqueRoom();
        var data = "\"" + new string('x', 60 * 1024) + "\"";
        for (var i = 0; i < 20; i++)
        {
            await broker.Client.PublishToRoomAsync("wide", room, "server:feed", data).WaitAsync(TestClient.DefaultTimeout);
        }

        await using var alice = await ConnectAsync("wide", "alice");
        var joined = await alice.JoinAsync(room);
        Assert.Equal(20, joined.GetProperty("seq").GetInt64());
        var held = new List<long>();
        long? since = 0;
        while (since is not null)
        {
            var page = await alice.RequestAsync(new Dictionary<string, object?> { ["type"] = "history", ["room"] = room, ["since"] = since, ["limit"] = 100 });
            var seqs = page.GetProperty("messages").EnumerateArray().Select(m => m.GetProperty("seq").GetInt64()).ToList();
            Assert.All(page.GetProperty("messages").EnumerateArray(), m => Assert.Equal("server:feed", m.GetProperty("from").GetString()));
            held.AddRange(seqs);
            since = page.GetProperty("more").GetBoolean() ? seqs[^1] : null;
        }

        // 1 MiB holds 17 messages of 61,442 bytes and 128 of overhead each: the newest 17, in order.
        Assert.Equal(Enumerable.Range(4, 17).Select(n => (long)n), held);
    }

    private async Task<TestClient> ConnectAsync(string ns, string user) =>
        await TestClient.ConnectAsync(broker.Server.Ws($"/{ns}?user={Uri.EscapeDataString(user)}"));

    /// <summary>
    /// The next <paramref name="count"/> message frames of the room, skipping anything else (read
    /// here, deeper than TestClient's parser goes: data 64 levels deep is 65 in its frame).
    /// </summary>
    private static async Task<List<JsonElement>> MessagesAsync(TestClient client, string room, int count)
    {
        var seen = new List<JsonElement>();
        while (seen.Count < count)
        {
            var raw = await client.NextRawAsync();
            using var frame = JsonDocument.Parse(raw.Text, new JsonDocumentOptions { MaxDepth = 256 });
            if (Frame(frame.RootElement, "message") && frame.RootElement.GetProperty("room").GetString() == room)
            {
                seen.Add(frame.RootElement.Clone());
            }
        }

        return seen;
    }

    /// <summary>Nothing was sent to the user before: the first direct the connection gets is a marker sent now.</summary>
    private async Task AssertFirstDirectIsMarkerAsync(TestClient connection, string user)
    {
        Assert.True(await broker.Client.SendToUserAsync("chat", user, "server", "\"marker\"").WaitAsync(TestClient.DefaultTimeout) >= 1);
        var first = await connection.WaitForTypeAsync("direct");
        Assert.Equal("marker", first.GetProperty("data").GetString());
    }

    private static bool HasLoneSurrogate(params string?[] texts)
    {
        var strict = new UTF8Encoding(encoderShouldEmitUTF8Identifier: false, throwOnInvalidBytes: true);
        foreach (var text in texts)
        {
            try
            {
                _ = strict.GetByteCount(text ?? string.Empty);
            }
            catch (EncoderFallbackException)
            {
                return true;
            }
        }

        return false;
    }

    private static bool Frame(JsonElement frame, string type) =>
        frame.TryGetProperty("type", out var t) && t.GetString() == type;
}
