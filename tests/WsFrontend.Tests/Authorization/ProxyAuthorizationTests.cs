using System.Diagnostics;
using Broker.Frontend.Tests.Infrastructure;
using static Broker.Frontend.Tests.Authorization.AuthTokens;

namespace Broker.Frontend.Tests.Authorization;

/// <summary>A broker whose "app" namespace asks a real authorization backend (Authorize=Proxy).</summary>
public sealed class ProxyBrokerFixture : IAsyncLifetime
{
    public static readonly TimeSpan ProxyTimeout = TimeSpan.FromSeconds(1);

    public BrokerServer Server { get; private set; } = null!;

    public AuthorizationBackend Backend { get; private set; } = null!;

    public async Task InitializeAsync()
    {
        Backend = await AuthorizationBackend.StartAsync();
        Server = await BrokerServer.StartAsync(new Dictionary<string, string?>
        {
            ["Broker:Jwt:SigningKey"] = Key,
            ["Broker:Namespaces:app:Authorize"] = "proxy",
            ["Broker:Namespaces:app:ProxyUrl"] = Backend.Url.ToString(),
            ["Broker:Namespaces:app:ProxyTimeout"] = ProxyTimeout.ToString(),
            ["Broker:Namespaces:app:Anonymous"] = "false",

            // Presence and history without membership: the backend decides them.
            ["Broker:Namespaces:open:Authorize"] = "Proxy",
            ["Broker:Namespaces:open:ProxyUrl"] = Backend.Url.ToString(),
            ["Broker:Namespaces:open:ProxyTimeout"] = ProxyTimeout.ToString(),
            ["Broker:Namespaces:open:Anonymous"] = "false",
            ["Broker:Namespaces:open:PresenceRequiresMembership"] = "false",
            ["Broker:Namespaces:open:HistoryRequiresMembership"] = "false",

            // Nothing listens there: every question fails to connect.
            ["Broker:Namespaces:down:Authorize"] = "Proxy",
            ["Broker:Namespaces:down:ProxyUrl"] = $"http://127.0.0.1:{FreePorts.Next()}/authorize",
            ["Broker:Namespaces:down:Anonymous"] = "false",
        });
    }

    public async Task DisposeAsync()
    {
        await Server.DisposeAsync();
        await Backend.DisposeAsync();
    }
}

/// <summary>Authorize=Proxy: the application answers, the broker remembers, a stalled backend is unavailable.</summary>
public sealed class ProxyAuthorizationTests : IClassFixture<ProxyBrokerFixture>
{
    private readonly BrokerServer _server;
    private readonly AuthorizationBackend _backend;

    public ProxyAuthorizationTests(ProxyBrokerFixture fixture)
    {
        _server = fixture.Server;
        _backend = fixture.Backend;
    }

    private static string Room(string rule) => $"{rule}.{Guid.NewGuid():N}";

    [Fact]
    public async Task Join_Allowed_JoinedAndTheQuestionCarriesEveryField()
    {
        var room = Room("allow");
        await using var client = await _server.ConnectWithTokenAsync("app", Create("ann"));

        AssertType(await client.JoinAsync(room), "joined");

        var question = Assert.Single(_backend.About(room));
        Assert.StartsWith("application/json", question.ContentType, StringComparison.Ordinal);
        Assert.Equal(["namespace", "room", "user", "action", "connection", "verified"], question.Fields);
        Assert.True(question.Verified);
        Assert.Equal("app", question.Namespace);
        Assert.Equal("ann", question.User);
        Assert.Equal("join", question.Action);
        Assert.Equal(client.ConnectionId, question.Connection);
    }

    [Fact]
    public async Task Answers_Remembered_UntilTheConnectionLeavesTheRoom()
    {
        var room = Room("allow");
        await using var client = await _server.ConnectWithTokenAsync("app", Create("bea"));
        AssertType(await client.JoinAsync(room), "joined");

        for (var i = 0; i < 3; i++)
        {
            AssertType(await client.PublishAsync(room, i), "ack");
        }

        // Members ask for presence and history without a question.
        AssertType(await client.Request("presence", room), "presence");
        AssertType(await client.Request("history", room), "history");
        Assert.Equal(1, _backend.Count(room, "publish"));
        Assert.Equal(0, _backend.Count(room, "presence"));
        Assert.Equal(0, _backend.Count(room, "history"));

        AssertType(await client.Request("leave", room), "left");
        AssertType(await client.JoinAsync(room), "joined");
        AssertType(await client.PublishAsync(room, "again"), "ack");

        Assert.Equal(2, _backend.Count(room, "join"));
        Assert.Equal(2, _backend.Count(room, "publish"));
    }

    [Fact]
    public async Task Answers_PerConnection_AnotherConnectionAsksItself()
    {
        var room = Room("allow");
        await using var first = await _server.ConnectWithTokenAsync("app", Create("cy"));
        await using var second = await _server.ConnectWithTokenAsync("app", Create("cy"));

        AssertType(await first.JoinAsync(room), "joined");
        AssertType(await second.JoinAsync(room), "joined");

        var asked = _backend.About(room).Select(q => q.Connection).Order(StringComparer.Ordinal).ToArray();
        Assert.Equal(new[] { first.ConnectionId, second.ConnectionId }.Order(StringComparer.Ordinal).ToArray(), asked);
    }

    [Theory]
    [InlineData("deny")]
    [InlineData("forbid")]
    public async Task Join_Denied_ForbiddenRememberedConnectionWorks(string rule)
    {
        var room = Room(rule);
        await using var client = await _server.ConnectWithTokenAsync("app", Create("dot"));

        AssertError(await client.JoinAsync(room), "forbidden", $"\"{room}\"", "join", "authorization service");
        await client.AssertAliveAsync();
        AssertError(await client.JoinAsync(room), "forbidden");

        Assert.Equal(1, _backend.Count(room, "join"));
    }

    [Theory]
    [InlineData("fail")]
    [InlineData("garbage")]
    [InlineData("big")]
    [InlineData("redirect")]
    public async Task Join_BackendFails_ForbiddenAndAskedAgain(string rule)
    {
        var room = Room(rule);
        await using var client = await _server.ConnectWithTokenAsync("app", Create("ed"));

        AssertError(await client.JoinAsync(room), "forbidden", $"\"{room}\"");
        await client.AssertAliveAsync();
        AssertError(await client.JoinAsync(room), "forbidden");

        Assert.Equal(2, _backend.Count(room, "join"));
    }

    [Fact]
    public async Task Join_BackendStalls_UnavailableWithinTheTimeoutNotRemembered()
    {
        var room = Room("stall");
        await using var client = await _server.ConnectWithTokenAsync("app", Create("flo"));
        var clock = Stopwatch.StartNew();

        AssertError(await client.JoinAsync(room), "unavailable", $"\"{room}\"");

        Assert.True(clock.Elapsed < ProxyBrokerFixture.ProxyTimeout + TimeSpan.FromSeconds(3), $"unavailable after {clock.Elapsed}");
        await client.AssertAliveAsync();
        AssertError(await client.JoinAsync(room), "unavailable");
        Assert.Equal(2, _backend.Count(room, "join"));
    }

    [Fact]
    public async Task Join_BackendUnreachable_Unavailable()
    {
        await using var client = await _server.ConnectWithTokenAsync("down", Create("gil"));

        AssertError(await client.JoinAsync(Room("allow")), "unavailable", "authorization service");
        await client.AssertAliveAsync();
    }

    [Theory]
    [InlineData("presence")]
    [InlineData("history")]
    public async Task PresenceAndHistory_NonMember_NotMemberWithoutAsking(string action)
    {
        await using var client = await _server.ConnectWithTokenAsync("app", Create("hal"));
        var allowed = Room("allow");
        var joinOnly = Room("joinonly");

        // Not a member where the namespace requires membership: not_member, and the backend is
        // not asked (its answer could not change that).
        AssertError(await client.Request(action, allowed), "not_member");
        AssertError(await client.Request(action, joinOnly), "not_member");
        Assert.Equal(0, _backend.Count(allowed, action));
        Assert.Equal(0, _backend.Count(joinOnly, action));

        // A member needs no answer for it.
        AssertType(await client.JoinAsync(joinOnly), "joined");
        AssertType(await client.Request(action, joinOnly), action);
        Assert.Equal(0, _backend.Count(joinOnly, action));
    }

    [Theory]
    [InlineData("presence")]
    [InlineData("history")]
    public async Task PresenceAndHistory_NonMemberWhereNotRequired_AskedOnceThenAnsweredOrForbidden(string action)
    {
        await using var client = await _server.ConnectWithTokenAsync("open", Create("hap"));
        var allowed = Room("allow");
        var joinOnly = Room("joinonly");

        AssertType(await client.Request(action, allowed), action);
        AssertType(await client.Request(action, allowed), action);
        AssertError(await client.Request(action, joinOnly), "forbidden", $"\"{action}\"");
        await client.AssertAliveAsync();

        Assert.Equal(1, _backend.Count(allowed, action));
        Assert.Equal(1, _backend.Count(joinOnly, action));
    }

    [Fact]
    public async Task Join_DeniedThenLeft_AskedAgain()
    {
        // A refused join is remembered; a leave of the room (not_found: never joined) forgets it,
        // so a client can see a permission granted since without reconnecting.
        var room = Room("deny");
        await using var client = await _server.ConnectWithTokenAsync("app", Create("ivy"));
        AssertError(await client.JoinAsync(room), "forbidden");
        AssertError(await client.JoinAsync(room), "forbidden");
        Assert.Equal(1, _backend.Count(room, "join"));

        AssertError(await client.Request("leave", room), "not_found");
        AssertError(await client.JoinAsync(room), "forbidden");
        Assert.Equal(2, _backend.Count(room, "join"));
    }

    [Fact]
    public async Task Publish_JoinAllowedPublishDenied_Forbidden()
    {
        var room = Room("joinonly");
        await using var client = await _server.ConnectWithTokenAsync("app", Create("ike"));
        AssertType(await client.JoinAsync(room), "joined");

        AssertError(await client.PublishAsync(room, 1), "forbidden", "publish");
    }

    [Fact]
    public async Task Refresh_ForgetsTheAnswers()
    {
        var room = Room("allow");
        await using var client = await _server.ConnectWithTokenAsync("app", Create("jan"));
        AssertType(await client.JoinAsync(room), "joined");
        AssertType(await client.PublishAsync(room, 1), "ack");

        AssertType(await client.RefreshAsync(Create("jan", expires: In(TimeSpan.FromHours(2)))), "refreshed");
        AssertType(await client.PublishAsync(room, 2), "ack");

        Assert.Equal(2, _backend.Count(room, "publish"));

        // Proxy namespaces keep their rooms on refresh: the next questions decide.
        Assert.Equal(1, _backend.Count(room, "join"));
    }
}
