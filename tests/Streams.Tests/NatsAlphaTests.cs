using Broker.Grains.Tests.Infrastructure;
using System.Globalization;
using System.Text;
using System.Text.Json;
using Broker.Grains.Streams;
using Broker.Streams.Tests.Infrastructure;
using Microsoft.Extensions.Configuration;
using NATS.Client.Core;
using Orleans.Hosting;
using Orleans.Streaming.NATS.Hosting;
using Orleans.TestingHost;

namespace Broker.Streams.Tests;

/// <summary>
/// Why the broker offers no NATS provider (docs/streams.md, "Providers"): with
/// Microsoft.Orleans.Streaming.NATS 10.4.2-alpha.1 and Debian's nats-server 2.9.10, a room
/// stream's items are stored in JetStream and never delivered. The provider publishes to
/// "{provider}.{stream namespace}.{key}" and has the server re-map "{provider}.*.*" into
/// partitions ("subject_transform", a NATS 2.10 feature that 2.9 ignores); a room stream's
/// namespace, "broker.{ns}", holds a dot, so its subject has four tokens and would escape that
/// mapping on any server version: no partition consumer's filter ("broker.{partition}.>")
/// matches it. When this test fails, the alpha or the server changed: measure again.
/// </summary>
public sealed class NatsAlphaTests(ITestOutputHelper output)
{
    private const int Items = 20;
    private const string NatsUrlKey = "BrokerStreamsTest:NatsAlphaUrl";

    [Fact]
    public async Task RoomStream_ItemsStoredInJetStream_NoConsumerMatchesThem()
    {
        await using var nats = await NatsServer.StartAsync();
        var builder = new TestClusterBuilder(1) { PortAllocator = new LowPortAllocator() };
        builder.Options.ConnectionTransport = ConnectionTransportType.TcpSocket;
        builder.ConfigureHostConfiguration(c => c.AddInMemoryCollection(new Dictionary<string, string?> { [NatsUrlKey] = nats.Url }));
        builder.AddSiloBuilderConfigurator<SiloConfigurator>();
        builder.AddClientBuilderConfigurator<ClientConfigurator>();
        var cluster = builder.Build();
        await cluster.DeployAsync();
        try
        {
            var room = $"nats-{Guid.NewGuid():N}";
            var stream = cluster.Client.GetStreamProvider(BrokerStreams.ProviderName)
                .GetStream<RoomStreamItem>(BrokerStreams.RoomStream(StreamRecorder.Namespace, room));
            for (var seq = 1; seq <= Items; seq++)
            {
                // Each produce completes: the item was published and acknowledged by JetStream.
                await stream.OnNextAsync(new RoomStreamItem(RoomStreamItemKind.Message, StreamRecorder.Namespace, room, "e1", seq, "server:test", 0, Encoding.UTF8.GetBytes("1")));
            }

            // The server's own view (its monitoring endpoint): the stream holds every item.
            var state = await WaitForStoredAsync(nats, Items, TimeSpan.FromSeconds(30));
            output.WriteLine(state.ToString());
            Assert.Equal(Items, state.Messages);
            Assert.Equal(1, state.Subjects);
            Assert.Equal(8, state.Consumers.Count);
            foreach (var consumer in state.Consumers)
            {
                // Every partition's consumer filters "broker.{partition}.>": none matches
                // "broker.broker.providers.{room}", so none has anything to deliver.
                Assert.Matches(@"^broker\.[0-7]\.>$", consumer.Filter);
                Assert.Equal(0, consumer.Pending);
                Assert.Equal(0, consumer.DeliveredStreamSeq);
            }

            Assert.Empty(StreamRecorder.Room(room));
        }
        finally
        {
            await cluster.StopAllSilosAsync();
            await cluster.DisposeAsync();
        }
    }

    private static async Task<JetStreamState> WaitForStoredAsync(NatsServer nats, int messages, TimeSpan timeout)
    {
        var deadline = DateTime.UtcNow + timeout;
        while (true)
        {
            var state = JetStreamState.Parse(await nats.JetStreamStateAsync());
            if (state.Messages >= messages || DateTime.UtcNow > deadline)
            {
                return state;
            }

            // The server has no event to wait on: ask again shortly.
            await Task.Delay(100);
        }
    }

    private sealed record ConsumerState(string Name, string Filter, long Pending, long DeliveredStreamSeq);

    private sealed record JetStreamState(long Messages, long Subjects, IReadOnlyList<ConsumerState> Consumers)
    {
        public static JetStreamState Parse(string jsz)
        {
            using var document = JsonDocument.Parse(jsz);
            var streams = document.RootElement.TryGetProperty("account_details", out var accounts)
                ? accounts.EnumerateArray().SelectMany(a => a.TryGetProperty("stream_detail", out var s) ? s.EnumerateArray() : Enumerable.Empty<JsonElement>())
                : [];
            foreach (var stream in streams.Where(s => s.GetProperty("name").GetString() == "broker"))
            {
                var state = stream.GetProperty("state");
                var consumers = stream.TryGetProperty("consumer_detail", out var list)
                    ? list.EnumerateArray().Select(c => new ConsumerState(
                        c.GetProperty("name").GetString()!,
                        c.GetProperty("config").GetProperty("filter_subject").GetString()!,
                        c.GetProperty("num_pending").GetInt64(),
                        c.GetProperty("delivered").GetProperty("stream_seq").GetInt64())).ToList()
                    : [];
                return new JetStreamState(
                    state.GetProperty("messages").GetInt64(),
                    state.TryGetProperty("num_subjects", out var subjects) ? subjects.GetInt64() : 0,
                    consumers);
            }

            return new JetStreamState(0, 0, []);
        }

        public override string ToString() =>
            $"stream \"broker\": {Messages.ToString(CultureInfo.InvariantCulture)} messages on {Subjects.ToString(CultureInfo.InvariantCulture)} subject(s); " +
            string.Join("; ", Consumers.Select(c => $"{c.Name} ({c.Filter}): pending {c.Pending}, delivered up to {c.DeliveredStreamSeq}"));
    }

    private static void Configure(Orleans.Streaming.NATS.NatsOptions options, string url)
    {
        options.StreamName = "broker";
        options.NatsClientOptions = NatsOpts.Default with { Url = url };
    }

    public sealed class SiloConfigurator : ISiloConfigurator
    {
        public void Configure(ISiloBuilder siloBuilder)
        {
            var url = siloBuilder.Configuration[NatsUrlKey]!;
            siloBuilder.AddNatsStreams(BrokerStreams.ProviderName, o => NatsAlphaTests.Configure(o, url));
            siloBuilder.AddMemoryGrainStorage(BrokerStreamHosting.PubSubStore);
        }
    }

    public sealed class ClientConfigurator : IClientBuilderConfigurator
    {
        public void Configure(IConfiguration configuration, IClientBuilder clientBuilder) =>
            clientBuilder.AddNatsStreams(BrokerStreams.ProviderName, o => NatsAlphaTests.Configure(o, configuration[NatsUrlKey]!));
    }
}
