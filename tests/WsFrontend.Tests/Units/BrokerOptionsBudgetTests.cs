using Broker.Frontend.Hosting;
using Broker.Frontend.Options;
using Broker.Frontend.Tests.Infrastructure;
using Microsoft.Extensions.Options;

namespace Broker.Frontend.Tests.Units;

/// <summary>Start-up validation of the outbox byte budget and the membership options' binding.</summary>
public sealed class BrokerOptionsBudgetTests
{
    [Fact]
    public void Validate_Defaults_NoFailure()
    {
        Assert.Empty(new BrokerOptions().Validate());
    }

    [Theory]
    [InlineData(65536, 131072, true)]
    [InlineData(65536, 131071, false)]
    [InlineData(1024 * 1024, 1024 * 1024, false)]
    [InlineData(1024 * 1024, 2 * 1024 * 1024, true)]
    public void Validate_OutboxBytesAgainstMaxFrameBytes_AtLeastTwoFramesFit(int maxFrameBytes, long outboxBytes, bool valid)
    {
        // MaxReplyBytes must hold one frame too (its own rule): kept out of the way here.
        var failures = new BrokerOptions { MaxFrameBytes = maxFrameBytes, OutboxBytes = outboxBytes, MaxReplyBytes = maxFrameBytes + (64 * 1024) }.Validate().ToList();

        if (valid)
        {
            Assert.Empty(failures);
        }
        else
        {
            var failure = Assert.Single(failures);
            Assert.Contains("Broker:OutboxBytes", failure, StringComparison.Ordinal);
            Assert.Contains("Broker:MaxFrameBytes", failure, StringComparison.Ordinal);
        }
    }

    [Fact]
    public async Task StartAsync_OutboxBytesBelowTwoFrames_RefusedAtStartUp()
    {
        var ex = await Assert.ThrowsAsync<OptionsValidationException>(() => BrokerServer.StartAsync(new Dictionary<string, string?>
        {
            ["Broker:OutboxBytes"] = "1000",
        }));

        Assert.Contains("Broker:OutboxBytes", ex.Message, StringComparison.Ordinal);
    }

    [Fact]
    public async Task StartAsync_MembershipOptions_BoundPerNamespaceDefaultTrue()
    {
        await using var server = await BrokerServer.StartAsync(new Dictionary<string, string?>
        {
            ["Broker:Namespaces:chat:PresenceRequiresMembership"] = "false",
            ["Broker:Namespaces:notifications:HistoryRequiresMembership"] = "false",
        });
        var options = server.Services.GetRequiredService<IOptions<BrokerOptions>>().Value;

        Assert.False(options.Namespaces["chat"].PresenceRequiresMembership);
        Assert.True(options.Namespaces["chat"].HistoryRequiresMembership);
        Assert.True(options.Namespaces["notifications"].PresenceRequiresMembership);
        Assert.False(options.Namespaces["notifications"].HistoryRequiresMembership);
        Assert.True(options.Namespaces["default"].PresenceRequiresMembership);
        Assert.True(options.Namespaces["default"].HistoryRequiresMembership);
        Assert.Equal(BrokerOptions.DefaultOutboxBytes, options.OutboxBytes);
    }
}
