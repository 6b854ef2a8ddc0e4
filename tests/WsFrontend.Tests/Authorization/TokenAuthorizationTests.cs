using Broker.Frontend.Tests.Infrastructure;
using static Broker.Frontend.Tests.Authorization.AuthTokens;

namespace Broker.Frontend.Tests.Authorization;

/// <summary>One broker with Authorize=Token namespaces, shared by the token tests (unique room names each).</summary>
public sealed class TokenBrokerFixture : IAsyncLifetime
{
    public BrokerServer Server { get; private set; } = null!;

    public async Task InitializeAsync() => Server = await BrokerServer.StartAsync(new Dictionary<string, string?>
    {
        ["Broker:Jwt:SigningKey"] = Key,
        ["Broker:Jwt:RequireExpiry"] = "false",

        // Lower case on purpose: the mode binds case-insensitively, and these namespaces exist
        // only in configuration.
        ["Broker:Namespaces:team:Authorize"] = "token",
        ["Broker:Namespaces:team:Anonymous"] = "true",
        ["Broker:Namespaces:open:Authorize"] = "Open",
        ["Broker:Namespaces:open:Anonymous"] = "true",
        ["Broker:Namespaces:loose:Authorize"] = "Token",
        ["Broker:Namespaces:loose:Anonymous"] = "false",
        ["Broker:Namespaces:loose:PresenceRequiresMembership"] = "false",
        ["Broker:Namespaces:loose:HistoryRequiresMembership"] = "false",
    });

    public async Task DisposeAsync() => await Server.DisposeAsync();
}

/// <summary>Authorize=Token: the token's "rooms" claim decides join, publish, presence and history.</summary>
public sealed class TokenAuthorizationTests : IClassFixture<TokenBrokerFixture>
{
    private readonly BrokerServer _server;

    public TokenAuthorizationTests(TokenBrokerFixture fixture) => _server = fixture.Server;

    [Fact]
    public async Task Join_Granted_JoinedAndNotGranted_ForbiddenConnectionWorks()
    {
        var granted = BrokerFixture.UniqueRoom("granted");
        var other = BrokerFixture.UniqueRoom("other");
        await using var client = await _server.ConnectWithTokenAsync("team", Create("ann", Rooms("team", (granted, ["join"]))));

        AssertType(await client.JoinAsync(granted), "joined");
        AssertError(await client.JoinAsync(other), "forbidden", $"\"{other}\"", "\"join\"", "\"rooms\" claim");
        await client.AssertAliveAsync();
        AssertType(await client.JoinAsync(BrokerFixture.UniqueRoom()), "error");
        await client.AssertAliveAsync();
    }

    [Fact]
    public async Task Publish_GrantedOrNot_AckOrForbidden()
    {
        var speak = BrokerFixture.UniqueRoom("speak");
        var listen = BrokerFixture.UniqueRoom("listen");
        await using var client = await _server.ConnectWithTokenAsync("team", Create("bob", Rooms("team", (speak, ["join", "publish"]), (listen, ["join"]))));
        await client.JoinAsync(speak);
        await client.JoinAsync(listen);

        AssertType(await client.PublishAsync(speak, "hello"), "ack");
        AssertError(await client.PublishAsync(listen, "hello"), "forbidden", $"\"{listen}\"", "\"publish\"", "\"rooms\" claim");
        await client.AssertAliveAsync();

        // A publish grant without membership is not enough where membership is required.
        var publishOnly = BrokerFixture.UniqueRoom("publish-only");
        await using var second = await _server.ConnectWithTokenAsync("team", Create("bob2", Rooms("team", (publishOnly, ["publish"]))));
        AssertError(await second.PublishAsync(publishOnly, "x"), "not_member");
    }

    [Theory]
    [InlineData("presence")]
    [InlineData("history")]
    public async Task PresenceAndHistory_GrantOrMembership_ByTheRules(string action)
    {
        var joinedOnly = BrokerFixture.UniqueRoom("joined-only");
        var grantedOnly = BrokerFixture.UniqueRoom("granted-only");
        var nothing = BrokerFixture.UniqueRoom("nothing");
        await using var client = await _server.ConnectWithTokenAsync("team", Create("cat", Rooms("team", (joinedOnly, ["join"]), (grantedOnly, [action]))));

        // A member may ask without the grant.
        await client.JoinAsync(joinedOnly);
        AssertType(await client.Request(action, joinedOnly), action);

        // A non-member, where the namespace requires membership: not_member, granted or not
        // (membership is decided first: nobody is asked for an answer that could not help).
        AssertError(await client.Request(action, nothing), "not_member");
        await client.AssertAliveAsync();
        AssertError(await client.Request(action, grantedOnly), "not_member");
    }

    [Theory]
    [InlineData("presence")]
    [InlineData("history")]
    public async Task PresenceAndHistory_GrantWithoutMembershipWhereNotRequired_Answered(string action)
    {
        var granted = BrokerFixture.UniqueRoom("granted");
        var notGranted = BrokerFixture.UniqueRoom("not-granted");
        await using var client = await _server.ConnectWithTokenAsync("loose", Create("dan", Rooms("loose", (granted, [action]))));

        AssertType(await client.Request(action, granted), action);
        AssertError(await client.Request(action, notGranted), "forbidden", $"\"{notGranted}\"", $"\"{action}\"", "members of the room may ask");
    }

    [Fact]
    public async Task Patterns_ExactPrefixAndStar_MatchAsDocumented()
    {
        var tag = Guid.NewGuid().ToString("N")[..8];
        await using var client = await _server.ConnectWithTokenAsync("team", Create("eve", Rooms("team", ($"exact-{tag}", ["join"]), ($"pre-{tag}-*", ["join"]))));

        AssertType(await client.JoinAsync($"exact-{tag}"), "joined");
        AssertError(await client.JoinAsync($"exact-{tag}x"), "forbidden");
        AssertType(await client.JoinAsync($"pre-{tag}-"), "joined");
        AssertType(await client.JoinAsync($"pre-{tag}-anything"), "joined");
        AssertError(await client.JoinAsync($"pre-{tag}"), "forbidden");

        await using var everything = await _server.ConnectWithTokenAsync("team", Create("eve2", Rooms("team", ("*", ["join", "publish"]))));
        var any = BrokerFixture.UniqueRoom("any");
        AssertType(await everything.JoinAsync(any), "joined");
        AssertType(await everything.PublishAsync(any, 1), "ack");
        AssertError(await everything.Request("history", BrokerFixture.UniqueRoom()), "not_member");
    }

    [Fact]
    public async Task Join_GrantsForAnotherNamespace_DoNotApply()
    {
        await using var client = await _server.ConnectWithTokenAsync("team", Create("fay", Rooms("loose", ("*", All))));

        AssertError(await client.JoinAsync(BrokerFixture.UniqueRoom()), "forbidden", "namespace \"team\"");
    }

    [Fact]
    public async Task Join_NoTokenInTokenNamespace_Forbidden()
    {
        // Anonymous (no ?user=: its meaning changes once a key is set), where the namespace allows it.
        await using var client = await _server.ConnectAsync("/team");

        AssertError(await client.JoinAsync(BrokerFixture.UniqueRoom()), "forbidden", "no token");
        await client.AssertAliveAsync();
    }

    [Fact]
    public async Task Join_RoomsClaimAsJsonString_Granted()
    {
        var room = BrokerFixture.UniqueRoom("stringly");
        await using var client = await _server.ConnectWithTokenAsync("team", Create("gus", Rooms("team", (room, ["join"])), roomsAsString: true));

        AssertType(await client.JoinAsync(room), "joined");
    }

    [Fact]
    public async Task Join_OpenNamespace_TokenWithoutClaimMayDoAnything()
    {
        var room = BrokerFixture.UniqueRoom();
        await using var client = await _server.ConnectWithTokenAsync("open", Create("hal"));

        AssertType(await client.JoinAsync(room), "joined");
        AssertType(await client.PublishAsync(room, 1), "ack");
        AssertType(await client.Request("history", room), "history");
    }

    [Fact]
    public async Task Send_TokenNamespace_NotAuthorizedPerRoom()
    {
        await using var client = await _server.ConnectWithTokenAsync("team", Create("ivy"));

        var ack = await client.RequestAsync(new Dictionary<string, object?> { ["type"] = "send", ["to"] = "nobody-" + Guid.NewGuid().ToString("N"), ["data"] = 1 });

        AssertType(ack, "ack");
    }
}
