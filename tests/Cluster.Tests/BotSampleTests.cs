using System.Diagnostics;
using System.Text.Json;
using Broker.Cluster.Tests.Infrastructure;

namespace Broker.Cluster.Tests;

/// <summary>
/// The sample application silo (samples/Bot) started as docs/streams.md "Quick start" says:
/// Redis, a broker silo, the bot's own process joined to the cluster as a silo, and a
/// front-end with <c>--Broker:Namespaces:chat:Stream=true</c> (fe-1); fe-2 runs with
/// <c>Stream</c> off (the default). Real processes, real WebSocket clients.
/// </summary>
public sealed class BotSampleTests(BotSampleTests.Fixture fixture, ITestOutputHelper output) : IClassFixture<BotSampleTests.Fixture>
{
    private const string Bot = "server:dice";

    // The first item of a room activates its DiceGrain on the bot's silo: allow for that.
    private static readonly TimeSpan ReplyTimeout = TimeSpan.FromSeconds(30);

    private BrokerCluster Cluster => fixture.Cluster;

    [Fact]
    public Task Roll_InAChatRoomWithStreamOn_BotRepliesAsAMessageOfTheRoomToEveryMember() => Cluster.GuardAsync(output, async () =>
    {
        var room = Names.Unique("dice");
        await using var alice = await WsClient.ConnectAsync(fixture.StreamOn.WsBase, Names.Unique("alice"));
        await using var bob = await WsClient.ConnectAsync(fixture.StreamOn.WsBase, Names.Unique("bob"));
        await alice.JoinAsync(room);
        await bob.JoinAsync(room);

        var hello = (await alice.PublishAsync(room, "hello")).GetProperty("seq").GetInt64();
        var clock = Stopwatch.StartNew();
        var roll = (await alice.PublishAsync(room, "/roll")).GetProperty("seq").GetInt64();
        var reply = await alice.WaitForAsync(f => IsReplyTo(f, room, roll), ReplyTimeout, $"the bot's reply to seq {roll}");
        output.WriteLine($"reply {Ms.Format(clock.Elapsed)} after the publish: {reply.Text}");

        // A message of the room like any other, from the bot's server identity, after the roll.
        Assert.Equal(room, reply.Json.GetProperty("room").GetString());
        Assert.Equal(Bot, reply.Json.GetProperty("from").GetString());
        Assert.True(reply.Seq > roll, $"The reply's seq {reply.Seq} is not after the roll's {roll}.");
        var data = reply.Json.GetProperty("data");
        Assert.Equal(alice.User, data.GetProperty("for").GetString());
        Assert.InRange(data.GetProperty("roll").GetInt32(), 1, 6);
        Assert.Equal($"{alice.User} rolled {data.GetProperty("roll").GetInt32()}", data.GetProperty("text").GetString());

        // Every member receives it, with the same seq.
        var toBob = await bob.WaitForAsync(f => IsReplyTo(f, room, roll), ReplyTimeout, $"the bot's reply to seq {roll} at bob");
        Assert.Equal(reply.Seq, toBob.Seq);

        // The chat page's shape, {"text": "/roll"}, is a roll too (case and spaces aside).
        var second = (await bob.PublishAsync(room, new { text = " /Roll " })).GetProperty("seq").GetInt64();
        var secondReply = await alice.WaitForAsync(f => IsReplyTo(f, room, second), ReplyTimeout, $"the bot's reply to seq {second}");
        Assert.Equal(bob.User, secondReply.Json.GetProperty("data").GetProperty("for").GetString());

        // The bot answered the two rolls once each, and neither "hello" nor its own replies; the
        // room's messages arrived in seq order without a gap.
        var messages = alice.Messages(room);
        Assert.Equal([roll, second], messages.Where(m => m.Json.GetProperty("from").GetString() == Bot).Select(ReplyTo));
        Assert.DoesNotContain(messages, m => IsReplyTo(m, room, hello));
        Assert.Equal(Enumerable.Range(1, messages.Count).Select(i => (long)i), messages.Select(m => m.Seq));
    });

    [Fact]
    public Task Roll_InAChatRoomWithStreamOff_GetsNoReply() => Cluster.GuardAsync(output, async () =>
    {
        // carol rolls through fe-2, where Stream is off: the room produces nothing, the bot
        // hears nothing. She leaves, so fe-2 no longer restates the room's options.
        var room = Names.Unique("quiet");
        long unheard;
        await using (var carol = await WsClient.ConnectAsync(fixture.StreamOff.WsBase, Names.Unique("carol")))
        {
            await carol.JoinAsync(room);
            unheard = (await carol.PublishAsync(room, "/roll")).GetProperty("seq").GetInt64();
            await carol.LeaveAsync(room);
        }

        // alice rolls through fe-1 (Stream on): the bot answers her. Had carol's roll been
        // produced, the room's stream would have carried it first and the bot, which takes a
        // room's items in order, would have answered it first.
        await using var alice = await WsClient.ConnectAsync(fixture.StreamOn.WsBase, Names.Unique("alice"));
        await alice.JoinAsync(room);
        var heard = (await alice.PublishAsync(room, "/roll")).GetProperty("seq").GetInt64();
        await alice.WaitForAsync(f => IsReplyTo(f, room, heard), ReplyTimeout, $"the bot's reply to seq {heard}");

        var history = await alice.HistoryAsync(room);
        var fromBot = history.GetProperty("messages").EnumerateArray().Where(m => m.GetProperty("from").GetString() == Bot).ToList();
        Assert.True(heard > unheard);
        Assert.Equal([heard], fromBot.Select(m => m.GetProperty("data").GetProperty("replyTo").GetInt64()));
    });

    private static bool IsReplyTo(Frame frame, string room, long seq) =>
        frame.Type == "message" && frame.Json.GetProperty("room").GetString() == room &&
        frame.Json.GetProperty("from").GetString() == Bot && ReplyTo(frame) == seq;

    private static long ReplyTo(Frame frame) =>
        frame.Json.GetProperty("data") is { ValueKind: JsonValueKind.Object } data && data.TryGetProperty("replyTo", out var seq) ? seq.GetInt64() : -1;

    /// <summary>Redis, one broker silo, the bot, fe-1 with chat's Stream on and fe-2 with it off.</summary>
    public sealed class Fixture : IAsyncLifetime
    {
        public BrokerCluster Cluster { get; private set; } = null!;

        public FrontendProcess StreamOn => Cluster.Frontends[0];

        public FrontendProcess StreamOff => Cluster.Frontends[1];

        public async Task InitializeAsync()
        {
            Cluster = await BrokerCluster.StartAsync(silos: 1, frontends: 0);
            try
            {
                await Cluster.AddBotAsync();
                await Cluster.AddFrontendAsync(settings: ["--Broker:Namespaces:chat:Stream=true"]);
                await Cluster.AddFrontendAsync();
            }
            catch
            {
                Console.Error.WriteLine(Cluster.LogTails());
                await Cluster.DisposeAsync();
                throw;
            }
        }

        public async Task DisposeAsync()
        {
            if (Cluster is not null)
            {
                await Cluster.DisposeAsync();
            }
        }
    }
}
