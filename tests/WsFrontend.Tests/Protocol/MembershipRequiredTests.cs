using Broker.Frontend.Tests.Infrastructure;
using Broker.Grains;

namespace Broker.Frontend.Tests.Protocol;

/// <summary>
/// presence and history require membership by default (protocol.md "Authorization",
/// presenceRequiresMembership / historyRequiresMembership): a non-member gets not_member and
/// no room is asked, so a client cannot make the cluster hold rooms by naming them.
/// </summary>
[Collection(BrokerCollection.Name)]
public sealed class MembershipRequiredTests(BrokerFixture fixture)
{
    private BrokerServer Server => fixture.Server;

    [Theory]
    [InlineData("presence")]
    [InlineData("history")]
    public async Task Request_NotAMember_NotMemberWithASentence(string type)
    {
        var room = BrokerFixture.UniqueRoom(type);
        await using var peer = await Peer.ConnectAsync(Server, "/chat?user=outsider");

        var reply = await peer.RequestAsync(new() { ["type"] = type, ["room"] = room });

        Wire.AssertError(reply, "not_member", reply.GetProperty("id").GetRawText());
        var message = reply.GetProperty("message").GetString()!;
        Assert.Contains($"Join room \"{room}\"", message, StringComparison.Ordinal);
        Assert.Contains(type, message, StringComparison.Ordinal);
    }

    [Fact]
    public async Task Request_NonMemberNamesManyRooms_NoRoomIsActivated()
    {
        var prefix = "named-" + Guid.NewGuid().ToString("N")[..8];
        await using var peer = await Peer.ConnectAsync(Server, "/chat?user=namer");

        for (var i = 0; i < 50; i++)
        {
            var reply = await peer.RequestAsync(new() { ["type"] = i % 2 == 0 ? "history" : "presence", ["room"] = $"{prefix}-{i}" });
            Assert.Equal("not_member", reply.GetProperty("code").GetString());
        }

        var stats = await Server.Services.GetRequiredService<IGrainFactory>().GetGrain<IManagementGrain>(0).GetDetailedGrainStatistics();
        Assert.DoesNotContain(stats, s => s.GrainId.ToString().Contains(GrainKeys.Of("chat", prefix), StringComparison.Ordinal));
    }

    [Theory]
    [InlineData("presence")]
    [InlineData("history")]
    public async Task Request_AfterLeaving_NotMember(string type)
    {
        var room = BrokerFixture.UniqueRoom(type);
        await using var peer = await Peer.ConnectAsync(Server, "/chat?user=leaver");
        await peer.JoinAsync(room);
        Assert.Equal(type, Wire.TypeOf(await peer.RequestAsync(new() { ["type"] = type, ["room"] = room })));

        await peer.LeaveAsync(room);

        var reply = await peer.RequestAsync(new() { ["type"] = type, ["room"] = room });
        Wire.AssertError(reply, "not_member", reply.GetProperty("id").GetRawText());
    }

    [Fact]
    public async Task Presence_PresenceOffAndNotAMember_ForbiddenFirst()
    {
        var room = BrokerFixture.UniqueRoom();
        await using var peer = await Peer.ConnectAsync(Server, "/notifications?user=outsider");

        var reply = await peer.PresenceAsync(room);

        Wire.AssertError(reply, "forbidden", reply.GetProperty("id").GetRawText());
    }
}

/// <summary>The v1 behaviour, restored per namespace: presence and history for any room.</summary>
public sealed class MembershipNotRequiredTests
{
    [Fact]
    public async Task Presence_PresenceRequiresMembershipOff_NonMemberSeesTheMembers()
    {
        await using var server = await BrokerServer.StartAsync(new Dictionary<string, string?> { ["Broker:Namespaces:chat:PresenceRequiresMembership"] = "false" });
        var room = BrokerFixture.UniqueRoom();
        await using var member = await Peer.ConnectAsync(server, "/chat?user=member");
        await using var outsider = await Peer.ConnectAsync(server, "/chat?user=outsider");
        await member.JoinAsync(room);

        var presence = await outsider.PresenceAsync(room);
        var empty = await outsider.PresenceAsync(BrokerFixture.UniqueRoom());
        var history = await outsider.HistoryAsync(room);

        Assert.Equal("presence", Wire.TypeOf(presence));
        Assert.Equal("member", Assert.Single(presence.GetProperty("members").EnumerateArray()).GetProperty("user").GetString());
        Assert.Empty(empty.GetProperty("members").EnumerateArray());
        Wire.AssertError(history, "not_member", history.GetProperty("id").GetRawText());
    }

    [Fact]
    public async Task History_HistoryRequiresMembershipOff_NonMemberReadsIt()
    {
        await using var server = await BrokerServer.StartAsync(new Dictionary<string, string?> { ["Broker:Namespaces:chat:HistoryRequiresMembership"] = "false" });
        var room = BrokerFixture.UniqueRoom();
        await using var member = await Peer.ConnectAsync(server, "/chat?user=member");
        await using var outsider = await Peer.ConnectAsync(server, "/chat?user=outsider");
        await member.JoinAsync(room);
        await member.PublishAsync(room, "kept");

        var history = await outsider.HistoryAsync(room);
        var empty = await outsider.HistoryAsync(BrokerFixture.UniqueRoom());
        var presence = await outsider.PresenceAsync(room);

        Assert.Equal("history", Wire.TypeOf(history));
        Assert.Equal("kept", Assert.Single(history.GetProperty("messages").EnumerateArray()).GetProperty("data").GetString());
        Assert.False(string.IsNullOrEmpty(empty.GetProperty("epoch").GetString()));
        Assert.Empty(empty.GetProperty("messages").EnumerateArray());
        Wire.AssertError(presence, "not_member", presence.GetProperty("id").GetRawText());
    }
}
