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

    [Fact]
    public void ImplicitSubscriptions_IsValid() =>
        Assert.Empty(new BrokerStreamOptions { Subscriptions = "implicit" }.Validate());

    [Theory]
    [InlineData("nats", 8, "any", "Streams:Provider must be \"memory\"")]
    [InlineData("kafka", 8, "any", "Streams:Provider must be \"memory\"")]
    [InlineData("memory", 0, "any", "Streams:Queues must be")]
    [InlineData("memory", 257, "any", "Streams:Queues must be")]
    [InlineData("memory", 8, "explicit", "Streams:Subscriptions must be")]
    public void Invalid_IsRefused(string provider, int queues, string subscriptions, string problem)
    {
        var problems = new BrokerStreamOptions { Provider = provider, Queues = queues, Subscriptions = subscriptions }.Validate().ToList();

        Assert.Contains(problems, p => p.Contains(problem, StringComparison.Ordinal));
    }
}
