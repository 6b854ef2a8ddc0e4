using System.Net.WebSockets;
using System.Text.Json;
using Broker.Frontend.Tests.Infrastructure;
using static Broker.Frontend.Tests.Authorization.AuthTokens;

namespace Broker.Frontend.Tests.Authorization;

/// <summary>The refresh frame: a new token for an open connection (protocol.md v1.1).</summary>
public sealed class RefreshTests : IClassFixture<TokenBrokerFixture>
{
    private static readonly TimeSpan CloseWait = TimeSpan.FromSeconds(60);
    private readonly BrokerServer _server;

    public RefreshTests(TokenBrokerFixture fixture) => _server = fixture.Server;

    [Fact]
    public async Task Refresh_SameSubject_RefreshedWithNewExpiry()
    {
        await using var client = await _server.ConnectWithTokenAsync("open", Create("amy", expires: In(TimeSpan.FromHours(1))));
        var expires = In(TimeSpan.FromHours(2));

        var reply = await client.RefreshAsync(Create("amy", expires: expires));

        AssertType(reply, "refreshed");
        Assert.Equal(expires.ToUnixTimeSeconds(), reply.GetProperty("expires").GetInt64());
        await client.AssertAliveAsync();
    }

    [Fact]
    public async Task Refresh_TokenWithoutExpiry_ExpiresNull()
    {
        // Broker:Jwt:RequireExpiry=false in the fixture.
        await using var client = await _server.ConnectWithTokenAsync("open", Create("ben"));

        var reply = await client.RefreshAsync(Create("ben", noExpiry: true));

        AssertType(reply, "refreshed");
        Assert.Equal(JsonValueKind.Null, reply.GetProperty("expires").ValueKind);
    }

    [Fact]
    public async Task Refresh_AnotherSubject_ForbiddenAndOldExpiryStands()
    {
        // The original token expires first; the other user's long one is refused, so the
        // connection still closes at the first expiry. A second connection with the same
        // token, not refreshed, closes at the same moment (the control).
        var shortLived = Create("cid", expires: In(TimeSpan.FromSeconds(6)));
        await using var client = await _server.ConnectWithTokenAsync("open", shortLived);

        var reply = await client.RefreshAsync(Create("mallory", expires: In(TimeSpan.FromHours(1))));

        AssertError(reply, "forbidden", "\"mallory\"", "\"cid\"", "same \"sub\"");
        await client.AssertAliveAsync();
        Assert.Equal(WebSocketCloseStatus.PolicyViolation, await client.WaitForCloseAsync(CloseWait));
    }

    [Theory]
    [InlineData("wrong-key")]
    [InlineData("expired")]
    [InlineData("garbage")]
    public async Task Refresh_InvalidToken_ForbiddenConnectionOpen(string kind)
    {
        await using var client = await _server.ConnectWithTokenAsync("open", Create("dee"));
        var token = kind switch
        {
            "wrong-key" => Create("dee", key: "another-signing-key-of-32-bytes-or-more"),
            "expired" => Create("dee", expires: In(TimeSpan.FromMinutes(-10))),
            _ => "not.a.token",
        };

        AssertError(await client.RefreshAsync(token), "forbidden", "refused");
        await client.AssertAliveAsync();
    }

    [Fact]
    public async Task Refresh_ConnectionWithoutToken_Forbidden()
    {
        await using var client = await _server.ConnectAsync("/open");

        AssertError(await client.RefreshAsync(Create(client.User)), "forbidden", "without a token");
        await client.AssertAliveAsync();
    }

    [Fact]
    public async Task Refresh_ShortLivedToken_ClosedWith1008AtItsExpiry()
    {
        await using var client = await _server.ConnectWithTokenAsync("open", Create("eli", expires: In(TimeSpan.FromHours(1))));

        AssertType(await client.RefreshAsync(Create("eli", expires: In(TimeSpan.FromSeconds(5)))), "refreshed");

        Assert.Equal(WebSocketCloseStatus.PolicyViolation, await client.WaitForCloseAsync(CloseWait));
    }

    [Fact]
    public async Task Refresh_LongerToken_OutlivesTheFirstExpiry()
    {
        // Both connect with tokens that expire soon; only "refreshed" gets a long one. The
        // control's token expires a second after the refreshed connection's first one, so once
        // the control is closed, the replaced expiry would long have fired.
        var first = In(TimeSpan.FromSeconds(5));
        await using var refreshed = await _server.ConnectWithTokenAsync("open", Create("fox", expires: first));
        await using var control = await _server.ConnectWithTokenAsync("open", Create("fox", expires: first.AddSeconds(1)));

        AssertType(await refreshed.RefreshAsync(Create("fox", expires: In(TimeSpan.FromHours(1)))), "refreshed");

        Assert.Equal(WebSocketCloseStatus.PolicyViolation, await control.WaitForCloseAsync(CloseWait));
        await refreshed.AssertAliveAsync();
    }

    [Fact]
    public async Task Refresh_NewGrants_NewRoomJoinableAndRevokedRoomLeftWithPush()
    {
        var kept = BrokerFixture.UniqueRoom("kept");
        var revoked = BrokerFixture.UniqueRoom("revoked");
        var added = BrokerFixture.UniqueRoom("added");
        await using var client = await _server.ConnectWithTokenAsync("team", Create("gil", Rooms("team", (kept, ["join", "publish"]), (revoked, ["join"]))));
        await using var watcher = await _server.ConnectWithTokenAsync("team", Create("watcher", Rooms("team", (revoked, ["join"]))));
        await watcher.JoinAsync(revoked);
        AssertType(await client.JoinAsync(kept), "joined");
        AssertType(await client.JoinAsync(revoked), "joined");
        await watcher.WaitForAsync(f => f.GetProperty("type").GetString() == "member_joined" && f.GetProperty("user").GetString() == "gil");
        AssertError(await client.JoinAsync(added), "forbidden");

        await client.SendAsync(new { type = "refresh", token = Create("gil", Rooms("team", (kept, ["join", "publish"]), (added, ["join"]))), id = "r1" });

        // The push comes first, without an id, then the reply.
        var push = await client.NextAsync();
        AssertType(push, "left");
        Assert.Equal(revoked, push.GetProperty("room").GetString());
        Assert.False(push.TryGetProperty("id", out _));
        Assert.Contains("no longer grants", push.GetProperty("reason").GetString(), StringComparison.Ordinal);
        var reply = await client.NextAsync();
        AssertType(reply, "refreshed");
        Assert.Equal("r1", reply.GetProperty("id").GetString());

        // The room knows: its other member sees the user go.
        var gone = await watcher.WaitForAsync(f => f.GetProperty("type").GetString() == "member_left");
        Assert.Equal("gil", gone.GetProperty("user").GetString());

        AssertType(await client.JoinAsync(added), "joined");
        AssertError(await client.JoinAsync(revoked), "forbidden", $"\"{revoked}\"");
        AssertError(await client.RequestAsync(new Dictionary<string, object?> { ["type"] = "leave", ["room"] = revoked }), "not_found");
        AssertType(await client.PublishAsync(kept, "still here"), "ack");
    }

    [Fact]
    public async Task Refresh_RefusedToken_GrantsUnchanged()
    {
        var room = BrokerFixture.UniqueRoom();
        await using var client = await _server.ConnectWithTokenAsync("team", Create("hank", Rooms("team", (room, ["join"]))));
        AssertType(await client.JoinAsync(room), "joined");

        AssertError(await client.RefreshAsync(Create("hank", Rooms("team"), key: "another-signing-key-of-32-bytes-or-more")), "forbidden");

        AssertType(await client.JoinAsync(room), "joined");
        AssertType(await client.Request("presence", room), "presence");
    }

    [Theory]
    [InlineData("{\"type\":\"refresh\",\"id\":1}", "bad_request")]
    [InlineData("{\"type\":\"refresh\",\"token\":\"\",\"id\":1}", "bad_request")]
    [InlineData("{\"type\":\"refresh\",\"token\":42,\"id\":1}", "bad_request")]
    public async Task Refresh_BadFrame_ErrorWithId(string text, string code)
    {
        await using var client = await _server.ConnectWithTokenAsync("open", Create("ida"));

        await client.SendTextAsync(text);

        var reply = await client.NextAsync();
        AssertError(reply, code, "\"token\"");
        Assert.Equal(1, reply.GetProperty("id").GetInt32());
    }

    [Fact]
    public async Task Refresh_TokenOverLimit_TooLarge()
    {
        await using var client = await _server.ConnectWithTokenAsync("open", Create("jo"));

        AssertError(await client.RefreshAsync(new string('a', 8 * 1024 + 1)), "too_large", "8192");
        await client.AssertAliveAsync();
    }
}
