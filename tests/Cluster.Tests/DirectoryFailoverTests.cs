using System.Diagnostics;
using Broker.Cluster.Tests.Infrastructure;

namespace Broker.Cluster.Tests;

/// <summary>
/// A silo's death must not reset rooms that live on other silos. Orleans' default grain directory
/// (eventually consistent) deactivates every activation whose directory entry the dead silo held,
/// so with the memory store about 1/N of the rooms on every survivor started a new epoch (seq back
/// to 1, history and remembered msgIds gone) whenever any silo died, an application silo that
/// hosts no room included (issue 17's independent check). Every silo of the broker's cluster now
/// uses Orleans' strongly consistent distributed directory, which rebuilds a dead silo's
/// partitions from the survivors' activations instead (docs/design.md, "The grain directory").
/// </summary>
public sealed class DirectoryFailoverTests(ITestOutputHelper output)
{
    private const int Rooms = 64;

    [Fact]
    public async Task ApplicationSilo_Killed_RoomsOnTheBrokerSiloKeepTheirEpochAndSeq()
    {
        await using var cluster = await BrokerCluster.StartAsync(silos: 1, frontends: 0);
        await cluster.GuardAsync(output, async () =>
        {
            // The bot's silo hosts no room, but it holds a share of the grain directory.
            var bot = await cluster.AddBotAsync();
            var frontend = await cluster.AddFrontendAsync();
            await using var alice = await WsClient.ConnectAsync(frontend.WsBase, Names.Unique("alice"));
            var rooms = Enumerable.Range(1, Rooms).Select(i => Names.Unique($"d{i}")).ToArray();
            var last = new Dictionary<string, long>();
            foreach (var room in rooms)
            {
                await alice.JoinAsync(room);
                last[room] = (await alice.PublishAsync(room, "before")).GetProperty("seq").GetInt64();
            }

            var epochs = new Dictionary<string, string>();
            foreach (var room in rooms)
            {
                epochs[room] = await EpochOfAsync(alice, room, last[room]);
            }

            bot.Kill();
            await MembershipTable.WaitDeclaredDeadAsync(cluster.Redis, bot.SiloPort, TimeSpan.FromSeconds(40));

            // The survivor acts on the death as soon as it has written it (it is the one that
            // declared it): publish in every room for a few seconds after, and every ack must
            // carry on the room's numbering.
            var watch = Stopwatch.StartNew();
            var reset = new List<string>();
            var rounds = 0;
            using var pace = new PeriodicTimer(TimeSpan.FromMilliseconds(250)); // 256 frames/s, under the per-connection rate limit
            while (watch.Elapsed < TimeSpan.FromSeconds(5) && reset.Count == 0 && await pace.WaitForNextTickAsync())
            {
                rounds++;
                foreach (var room in rooms)
                {
                    var seq = (await alice.PublishAsync(room, "after")).GetProperty("seq").GetInt64();
                    if (seq != last[room] + 1)
                    {
                        reset.Add($"{room}: seq {seq} after {last[room]}");
                    }

                    last[room] = seq;
                }
            }

            output.WriteLine($"{rounds} rounds of {Rooms} publishes in the {Ms.Format(watch.Elapsed)} after the bot's silo was declared dead; {reset.Count} rooms reset");
            Assert.True(reset.Count == 0, $"{reset.Count} of {Rooms} rooms on the surviving silo were reset by the application silo's death: {string.Join("; ", reset.Take(5))}");

            foreach (var room in rooms)
            {
                Assert.Equal(epochs[room], await EpochOfAsync(alice, room, last[room]));
            }
        });
    }

    /// <summary>The epoch of the room's message numbered <paramref name="seq"/>, as delivered to the client.</summary>
    private static async Task<string> EpochOfAsync(WsClient client, string room, long seq)
    {
        var frame = await client.WaitForAsync(f => f.Type == "message" && f.Json.GetProperty("room").GetString() == room && f.Seq == seq, what: $"message {seq} in {room}");
        return frame.Json.GetProperty("epoch").GetString()!;
    }
}
