namespace Broker.Streams.Tests;

/// <summary>Silo:Streams:* is validated at start (the silo prints the problems and exits 2).</summary>
public sealed class BrokerStreamOptionsTests
{
    [Fact]
    public void Defaults_AreMemory_AndValid()
    {
        var options = new BrokerStreamOptions();

        Assert.Equal("memory", options.Provider);
        Assert.Equal(8, options.Queues);
        Assert.Equal("any", options.Subscriptions);
        Assert.Empty(options.Validate());
    }

    [Theory]
    [InlineData("nats://127.0.0.1:4222")]
    [InlineData("nats://10.0.0.1:4222,nats://10.0.0.2:4222")]
    [InlineData("tls://nats.example:4222")]
    public void Nats_WithUrl_IsValid(string url) =>
        Assert.Empty(new BrokerStreamOptions { Provider = "nats", Nats = url }.Validate());

    [Theory]
    [InlineData("kafka", null, "broker", 8, "any", "Streams:Provider must be")]
    [InlineData("nats", null, "broker", 8, "any", "needs --nats")]
    [InlineData("nats", "127.0.0.1:4222", "broker", 8, "any", "Streams:Nats must be")]
    [InlineData("nats", "http://127.0.0.1:4222", "broker", 8, "any", "Streams:Nats must be")]
    [InlineData("nats", "nats://127.0.0.1:4222", "a.b", 8, "any", "Streams:NatsStream must be")]
    [InlineData("memory", null, "broker", 0, "any", "Streams:Queues must be")]
    [InlineData("memory", null, "broker", 257, "any", "Streams:Queues must be")]
    [InlineData("memory", null, "broker", 8, "explicit", "Streams:Subscriptions must be")]
    public void Invalid_IsRefused(string provider, string? nats, string natsStream, int queues, string subscriptions, string problem)
    {
        var problems = new BrokerStreamOptions { Provider = provider, Nats = nats, NatsStream = natsStream, Queues = queues, Subscriptions = subscriptions }.Validate().ToList();

        Assert.Contains(problems, p => p.Contains(problem, StringComparison.Ordinal));
    }
}
