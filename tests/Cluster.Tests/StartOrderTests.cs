using System.Diagnostics;
using System.Text.Json;
using Broker.Cluster.Tests.Infrastructure;

namespace Broker.Cluster.Tests;

/// <summary>
/// Start order does not matter (docs/streams.md): an application's silo with a gateway, up
/// before any broker silo, is where a front-end first connects; the front-end learns which silos
/// host the broker's grains once a broker silo has joined — within seconds
/// (BrokerHostingExtensions.ManifestRefreshInterval), not Orleans' default minute.
/// </summary>
public sealed class StartOrderTests(ITestOutputHelper output)
{
    /// <summary>Joins and publishes work this soon after the broker silo is ready: measured 11.5 s (the manifest is asked for every 5 s); about 70 s before, with Orleans' one-minute refresh.</summary>
    private static readonly TimeSpan Bound = TimeSpan.FromSeconds(30);

    [Fact]
    public async Task AppSiloWithGatewayFirst_ThenFrontend_ThenBrokerSilo_RoomsWorkWithinSeconds()
    {
        await using var cluster = await BrokerCluster.StartAsync(silos: 0, frontends: 0);
        await cluster.GuardAsync(output, async () =>
        {
            await cluster.AddBotAsync(settings: ["--gateway-port", FreePorts.Next().ToString(System.Globalization.CultureInfo.InvariantCulture)]);
            var frontend = await cluster.AddFrontendAsync(settings: ["--Broker:Namespaces:chat:Stream=true"]);
            await cluster.AddSiloAsync();
            var clock = Stopwatch.StartNew();

            var room = Names.Unique("order");
            var attempts = 0;
            string last = "none";
            while (true)
            {
                attempts++;
                WsClient alice;
                try
                {
                    alice = await WsClient.ConnectAsync(frontend.WsBase, Names.Unique("alice"));
                }
                catch (InvalidOperationException refused)
                {
                    // The front-end closes a connection it could not register in the cluster.
                    last = refused.Message;
                    Assert.True(clock.Elapsed < Bound, $"Connections were still refused {Ms.Format(clock.Elapsed)} after the broker silo was ready ({attempts} attempts): {last}");
                    await Task.Delay(TimeSpan.FromMilliseconds(500)); // pacing between attempts, not synchronisation
                    continue;
                }

                await using var connected = alice;
                var joined = await alice.RequestAsync(new() { ["type"] = "join", ["room"] = room }, TimeSpan.FromSeconds(15));
                if (joined.Type == "joined")
                {
                    var ack = await alice.RequestAsync(new() { ["type"] = "publish", ["room"] = room, ["data"] = "/roll" }, TimeSpan.FromSeconds(15));
                    if (ack.Type == "ack")
                    {
                        var seq = ack.Json.GetProperty("seq").GetInt64();
                        await alice.WaitForAsync(
                            f => f.Type == "message" && f.Json.GetProperty("from").GetString() == "server:dice"
                                && f.Json.GetProperty("data") is { ValueKind: JsonValueKind.Object } data && data.GetProperty("replyTo").GetInt64() == seq,
                            TimeSpan.FromSeconds(30),
                            $"the bot's reply to seq {seq}");
                        break;
                    }

                    last = ack.Text;
                }
                else
                {
                    last = joined.Text;
                }

                Assert.True(clock.Elapsed < Bound, $"Rooms did not work {Ms.Format(clock.Elapsed)} after the broker silo was ready ({attempts} attempts); last reply: {last}");
                await Task.Delay(TimeSpan.FromMilliseconds(500)); // pacing between attempts, not synchronisation
            }

            output.WriteLine($"join, publish and the bot's reply worked {Ms.Format(clock.Elapsed)} after the broker silo was ready ({attempts} attempts; last refusal: {last})");
        });
    }
}
