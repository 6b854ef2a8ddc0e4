using System.Diagnostics;
using System.Text.Json;
using Broker.Cluster.Tests.Infrastructure;

namespace Broker.Cluster.Tests;

/// <summary>
/// What the sample bot's silo dying does (docs/streams.md, "Writing and deploying an
/// application grain"): the chat goes on — every room keeps acking and delivering — and a bot
/// process started again answers rolls again. Timings go to the test output.
/// </summary>
public sealed class BotFailureTests(ITestOutputHelper output)
{
    private const string Bot = "server:dice";

    [Fact]
    public async Task BotSilo_Killed_RoomsGoOnAndANewBotProcessAnswersAgain()
    {
        await using var cluster = await BrokerCluster.StartAsync(silos: 1, frontends: 0);
        await cluster.GuardAsync(output, async () =>
        {
            var bot = await cluster.AddBotAsync();
            var frontend = await cluster.AddFrontendAsync(settings: ["--Broker:Namespaces:chat:Stream=true"]);

            // Several rooms, spread over the stream's queues (some of which the bot's silo pulls).
            var rooms = Enumerable.Range(1, 6).Select(i => Names.Unique($"r{i}")).ToArray();
            await using var alice = await WsClient.ConnectAsync(frontend.WsBase, Names.Unique("alice"));
            foreach (var room in rooms)
            {
                await alice.JoinAsync(room);
            }

            await RollEverywhereAsync(alice, rooms, TimeSpan.FromSeconds(30), "with the bot up");

            // SIGKILL: the bot's silo is gone, as when its machine dies.
            bot.Kill();
            var killed = Stopwatch.StartNew();
            foreach (var room in rooms)
            {
                var seq = (await alice.PublishAsync(room, "still here")).GetProperty("seq").GetInt64();
                await alice.WaitForAsync(f => f.Type == "message" && f.Json.GetProperty("room").GetString() == room && f.Seq == seq, what: $"seq {seq} in {room}");
            }

            output.WriteLine($"bot killed: all {rooms.Length} rooms acked and delivered a message within {Ms.Format(killed.Elapsed)}");
            Assert.True(killed.Elapsed < TimeSpan.FromSeconds(5), $"The rooms took {Ms.Format(killed.Elapsed)} to ack and deliver after the bot's silo died.");

            // Rolls said while no bot runs: counted at the end (the memory provider keeps nothing for later).
            var unanswered = new List<(string Room, long Seq)>();
            foreach (var room in rooms)
            {
                unanswered.Add((room, (await alice.PublishAsync(room, "/roll")).GetProperty("seq").GetInt64()));
            }

            await cluster.AddBotAsync();
            output.WriteLine($"a new bot process ready {Ms.Format(killed.Elapsed)} after the kill");
            await RollEverywhereAsync(alice, rooms, TimeSpan.FromSeconds(90), "after the new bot started");
            output.WriteLine($"every room answered again {Ms.Format(killed.Elapsed)} after the kill");
            var late = unanswered.Count(roll => alice.Messages(roll.Room).Any(m => IsReplyTo(m, roll.Room, roll.Seq)));
            output.WriteLine($"rolls said while the bot was down: {late} of {unanswered.Count} answered by then");
        });
    }

    private async Task RollEverywhereAsync(WsClient client, string[] rooms, TimeSpan timeout, string when)
    {
        var clock = Stopwatch.StartNew();
        var rolls = new List<(string Room, long Seq)>();
        foreach (var room in rooms)
        {
            rolls.Add((room, (await client.PublishAsync(room, "/roll")).GetProperty("seq").GetInt64()));
        }

        foreach (var (room, seq) in rolls)
        {
            await client.WaitForAsync(f => IsReplyTo(f, room, seq), timeout, $"the bot's reply to seq {seq} in {room} ({when})");
        }

        output.WriteLine($"{when}: {rooms.Length} rolls answered within {Ms.Format(clock.Elapsed)}");
    }

    private static bool IsReplyTo(Frame frame, string room, long seq) =>
        frame.Type == "message" && frame.Json.GetProperty("room").GetString() == room && frame.Json.GetProperty("from").GetString() == Bot &&
        frame.Json.GetProperty("data") is { ValueKind: JsonValueKind.Object } data && data.GetProperty("replyTo").GetInt64() == seq;
}
