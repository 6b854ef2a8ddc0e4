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

            // Every room must answer again soon. A roll said just as the new silo joins may be lost
            // (the memory provider drops what a pulling agent had taken and not delivered when its
            // queue moves: the join moves queues, and every silo restarts its agents when the bot's
            // grain type comes back, docs/streams.md "When a silo fails"), so a room that does not
            // answer within 5 s is asked again. A room whose stream an agent had registered without
            // the bot (the stall this test found) answers no roll for 30 minutes: 30 s catches it.
            var ready = Stopwatch.StartNew();
            var rollsNeeded = await RollUntilAnsweredAsync(alice, rooms, ready, TimeSpan.FromSeconds(30));
            output.WriteLine($"after the new bot started: every room answered within {Ms.Format(ready.Elapsed)} ({rollsNeeded.Sum()} rolls for {rooms.Length} rooms; a second roll in {rollsNeeded.Count(n => n > 1)})");
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

    /// <summary>
    /// Rolls in every room not answered yet, then waits up to 5 s for the answers, until every room
    /// has answered one of its rolls; at most <paramref name="limit"/> since <paramref name="clock"/>
    /// started. Returns how many rolls each room took.
    /// </summary>
    private static async Task<int[]> RollUntilAnsweredAsync(WsClient client, string[] rooms, Stopwatch clock, TimeSpan limit)
    {
        var asked = rooms.ToDictionary(room => room, _ => new List<long>());
        bool Answered(IReadOnlyList<Frame> pushes, string room) => pushes.Any(f => asked[room].Any(seq => IsReplyTo(f, room, seq)));
        while (true)
        {
            foreach (var room in rooms.Where(room => !Answered(client.Messages(room), room)))
            {
                asked[room].Add((await client.PublishAsync(room, "/roll")).GetProperty("seq").GetInt64());
            }

            var left = limit - clock.Elapsed;
            var last = left <= TimeSpan.FromSeconds(5);
            try
            {
                await client.WaitUntilAsync(
                    pushes => rooms.All(room => Answered(pushes, room)),
                    last ? left : TimeSpan.FromSeconds(5),
                    "the bot's reply to a roll in every room (after the new bot started): unanswered " +
                        string.Join(", ", rooms.Where(room => !Answered(client.Messages(room), room)).Select(room => $"{room} (seqs {string.Join(" ", asked[room])})")));
                return [.. rooms.Select(room => asked[room].Count)];
            }
            catch (TimeoutException) when (!last)
            {
                // Asked again above.
            }
        }
    }

    private static bool IsReplyTo(Frame frame, string room, long seq) =>
        frame.Type == "message" && frame.Json.GetProperty("room").GetString() == room && frame.Json.GetProperty("from").GetString() == Bot &&
        frame.Json.GetProperty("data") is { ValueKind: JsonValueKind.Object } data && data.GetProperty("replyTo").GetInt64() == seq;
}
