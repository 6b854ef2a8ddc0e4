using System.Text;
using Broker.Frontend.Connections;
using Broker.Frontend.Hosting;
using Broker.Frontend.Options;
using Broker.Frontend.Protocol;

namespace Broker.Frontend.Tests.Units;

/// <summary>
/// One connection in one room: deliveries wait until the join is answered, then exactly those
/// after the join's position are shown once, in order; what waits is bounded by the outbox budgets.
/// </summary>
public sealed class RoomMembershipTests
{
    private const string Activation = "a1";
    private const string Epoch = "e1";
    private readonly HeldWebSocket _socket = new();

    public RoomMembershipTests() => _socket.Release(10_000);

    [Fact]
    public void Offer_BeforeTheJoinIsAnswered_WaitsAndNothingIsSent()
    {
        var (connection, membership) = Member();

        membership.Offer(Activation, Epoch, version: 1, seq: 1, Frame("m1"));

        Assert.Equal(Frame("m1").Length, membership.WaitingBytes);
        Assert.Null(membership.LastSeqIn(Epoch));
        Assert.Equal(0, connection.QueuedFrames);
    }

    [Fact]
    public void TakeDeliverable_AfterPrime_OnlyEventsAfterTheJoinInOrder()
    {
        var (_, membership) = Member();
        membership.Offer(Activation, Epoch, version: 4, seq: 4, Frame("before the join"));
        membership.Offer(Activation, Epoch, version: 5, seq: 5, Frame("at the join"));
        membership.Offer(Activation, Epoch, version: 6, seq: 0, Frame("member event"));
        membership.Offer(Activation, Epoch, version: 7, seq: 6, Frame("m6"));
        membership.Offer("a0", Epoch, version: 9, seq: 7, Frame("an earlier activation"));

        membership.Prime(Activation, Epoch, joinVersion: 5, seq: 5);
        var frames = membership.TakeDeliverable();

        Assert.Equal(["member event", "m6"], Texts(frames!));
        Assert.Null(membership.TakeDeliverable());
        Assert.Equal(6, membership.LastSeqIn(Epoch));
        Assert.Equal(0, membership.WaitingBytes);
    }

    [Fact]
    public async Task Offer_Live_ShownOnceInOrderDuplicatesAndOldVersionsDropped()
    {
        var (_, membership) = Live(joinVersion: 1, seq: 1);

        membership.Offer(Activation, Epoch, version: 2, seq: 2, Frame("m2"));
        membership.Offer(Activation, Epoch, version: 2, seq: 2, Frame("m2 again"));
        membership.Offer(Activation, Epoch, version: 3, seq: 2, Frame("seq 2 once more"));
        membership.Offer(Activation, Epoch, version: 4, seq: 3, Frame("m3"));

        Assert.Equal("m2", Encoding.UTF8.GetString(await _socket.NextSentAsync()));
        Assert.Equal("m3", Encoding.UTF8.GetString(await _socket.NextSentAsync()));
        Assert.Equal(3, membership.LastSeqIn(Epoch));
    }

    [Fact]
    public async Task Offer_LiveNewActivation_VersionsCountAgain()
    {
        var (_, membership) = Live(joinVersion: 10, seq: 3);

        membership.Offer("a2", Epoch, version: 1, seq: 4, Frame("m4 from a new activation"));

        Assert.Equal("m4 from a new activation", Encoding.UTF8.GetString(await _socket.NextSentAsync()));
        Assert.Equal(4, membership.LastSeqIn(Epoch));
    }

    [Fact]
    public async Task Offer_LiveNewEpoch_SeqStartsAgain()
    {
        var (_, membership) = Live(joinVersion: 1, seq: 50);

        membership.Offer(Activation, "e2", version: 2, seq: 1, Frame("m1 of e2"));

        Assert.Equal("m1 of e2", Encoding.UTF8.GetString(await _socket.NextSentAsync()));
        Assert.Null(membership.LastSeqIn(Epoch));
        Assert.Equal(1, membership.LastSeqIn("e2"));
    }

    [Fact]
    public async Task Fill_OnlyTheNextSeqOfTheEpochShown()
    {
        var (_, membership) = Live(joinVersion: 1, seq: 1);

        membership.Fill(Epoch, 3, Frame("m3 out of turn"));
        membership.Fill("e0", 2, Frame("m2 of another epoch"));
        membership.Fill(Epoch, 2, Frame("m2"));

        Assert.Equal("m2", Encoding.UTF8.GetString(await _socket.NextSentAsync()));
        Assert.Equal(2, membership.LastSeqIn(Epoch));
    }

    [Fact]
    public void Fill_WhileJoining_Ignored()
    {
        var (connection, membership) = Member();

        membership.Fill(Epoch, 1, Frame("m1"));

        Assert.Equal(0, connection.QueuedFrames);
        Assert.Equal(0, membership.WaitingBytes);
    }

    [Fact]
    public void Offer_AfterPrimePastOutboxBytes_Closes1013AndLetsGoOfWhatWaited()
    {
        var (connection, membership) = Member(outboxBytes: 1000);
        membership.Prime(Activation, Epoch, joinVersion: 0, seq: 0);
        membership.Offer(Activation, Epoch, 1, 1, new byte[600]);
        membership.Offer(Activation, Epoch, 2, 2, new byte[400]);
        Assert.Equal(1000, membership.WaitingBytes);
        Assert.False(connection.IsClosing);

        membership.Offer(Activation, Epoch, 3, 3, new byte[1]);

        Assert.Equal(CloseCodes.TryAgainLater, connection.CloseStatus);
        Assert.Equal(0, membership.WaitingBytes);
        membership.Offer(Activation, Epoch, 4, 4, new byte[1]);
        Assert.Equal(0, membership.WaitingBytes);
        Assert.Null(membership.TakeDeliverable());
    }

    [Fact]
    public void Offer_AfterPrimeManySmallFramesPastOutboxFrames_StillWaitingWithinTheByteBudget()
    {
        // A client replaying a long gap must not be closed for a room's many small live messages.
        var (connection, membership) = Member(outboxFrames: 2);
        membership.Prime(Activation, Epoch, joinVersion: 0, seq: 0);

        for (var v = 1; v <= 100; v++)
        {
            membership.Offer(Activation, Epoch, v, v, Frame("small"));
        }

        Assert.False(connection.IsClosing);
        Assert.Equal(100, membership.TakeDeliverable()!.Count);
    }

    [Fact]
    public void Offer_OneFrameLargerThanTheBudget_WaitsAlone()
    {
        var (connection, membership) = Member(outboxBytes: 1000);
        membership.Prime(Activation, Epoch, joinVersion: 0, seq: 0);

        membership.Offer(Activation, Epoch, 1, 1, new byte[5000]);

        Assert.Equal(5000, membership.WaitingBytes);
        Assert.False(connection.IsClosing);
    }

    [Fact]
    public void Offer_BeforeTheJoinIsAnswered_NotClosedForTheServersOwnLatencyAndOneBudgetMoreAfter()
    {
        var (connection, membership) = Member(outboxBytes: 1000);
        for (var v = 1; v <= 5; v++)
        {
            membership.Offer(Activation, Epoch, v, v, new byte[600]);
        }

        Assert.Equal(3000, membership.WaitingBytes);
        Assert.False(connection.IsClosing);

        membership.Prime(Activation, Epoch, joinVersion: 0, seq: 0);
        membership.Offer(Activation, Epoch, 6, 6, new byte[1000]);
        Assert.False(connection.IsClosing);
        membership.Offer(Activation, Epoch, 7, 7, new byte[1]);
        Assert.Equal(CloseCodes.TryAgainLater, connection.CloseStatus);
    }

    [Fact]
    public void TakeWaiting_StaysJoiningAndTheBudgetStartsAgain()
    {
        var (connection, membership) = Member(outboxBytes: 1000);
        membership.Prime(Activation, Epoch, joinVersion: 0, seq: 0);
        membership.Offer(Activation, Epoch, 1, 1, new byte[900]);

        Assert.Single(membership.TakeWaiting());
        Assert.Empty(membership.TakeWaiting());
        Assert.Null(membership.LastSeqIn(Epoch));

        membership.Offer(Activation, Epoch, 2, 2, new byte[900]);
        Assert.Equal(900, membership.WaitingBytes);
        Assert.False(connection.IsClosing);
        Assert.Single(membership.TakeDeliverable()!);
        Assert.Null(membership.TakeDeliverable());
        Assert.Equal(2, membership.LastSeqIn(Epoch));
    }

    private (ClientConnection Connection, RoomMembership Membership) Member(int outboxFrames = 1024, long outboxBytes = BrokerOptions.DefaultOutboxBytes)
    {
        var connection = new ClientConnection("c-test", "user", "chat", new NamespaceOptions(), _socket, outboxFrames, outboxBytes, TimeSpan.FromSeconds(5));
        return (connection, new RoomMembership(connection, "room"));
    }

    private (ClientConnection Connection, RoomMembership Membership) Live(long joinVersion, long seq)
    {
        var (connection, membership) = Member();
        membership.Prime(Activation, Epoch, joinVersion, seq);
        Assert.Null(membership.TakeDeliverable());
        return (connection, membership);
    }

    private static byte[] Frame(string text) => Encoding.UTF8.GetBytes(text);

    private static List<string> Texts(List<byte[]> frames) => [.. frames.Select(f => Encoding.UTF8.GetString(f))];
}
