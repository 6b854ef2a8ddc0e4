using Broker.Frontend.Connections;
using Broker.Frontend.Hosting;
using Broker.Frontend.Options;
using Broker.Frontend.Protocol;

namespace Broker.Frontend.Tests.Units;

/// <summary>
/// The outbox's accounting, against a socket whose peer reads only when told: frames and bytes
/// queued, the budgets (a push past either closes 1013, a reply waits), the empty-outbox rule.
/// </summary>
public sealed class ClientConnectionOutboxTests
{
    private readonly HeldWebSocket _socket = new();

    [Fact]
    public async Task Send_NothingBeingWritten_GoesStraightToTheSocketUncounted()
    {
        var connection = Connection(outboxBytes: 1000);

        Assert.True(connection.Send(Bytes(100)));

        Assert.Equal(100, (await _socket.NextSentAsync()).Length);
        Assert.Equal(0, connection.QueuedFrames);
        Assert.Equal(0, connection.QueuedBytes);
    }

    [Fact]
    public async Task Send_WhileAWriteIsHeld_EveryQueuedByteCountedAndUncountedAsWritten()
    {
        var connection = Connection(outboxBytes: 1000);
        connection.Send(Bytes(50));
        await _socket.NextSentAsync();

        connection.Send(Bytes(100));
        connection.Send(Bytes(200));
        connection.Send(Bytes(300));

        Assert.Equal(3, connection.QueuedFrames);
        Assert.Equal(600, connection.QueuedBytes);

        _socket.Release(1);
        Assert.Equal(100, (await _socket.NextSentAsync()).Length);
        Assert.Equal(500, connection.QueuedBytes);

        _socket.Release(3);
        Assert.Equal(200, (await _socket.NextSentAsync()).Length);
        Assert.Equal(300, (await _socket.NextSentAsync()).Length);
        Assert.Equal(0, connection.QueuedBytes);
        Assert.Equal(0, connection.QueuedFrames);
        Assert.False(connection.IsClosing);
    }

    [Fact]
    public async Task Send_PastOutboxBytes_Closes1013AndDropsWhatWasQueued()
    {
        var connection = Connection(outboxFrames: 100, outboxBytes: 1000);
        connection.Send(Bytes(10));
        await _socket.NextSentAsync();
        Assert.True(connection.Send(Bytes(600)));

        Assert.False(connection.Send(Bytes(401)));

        Assert.Equal(CloseCodes.TryAgainLater, connection.CloseStatus);
        Assert.Equal(0, connection.QueuedBytes);
        Assert.Equal(0, connection.QueuedFrames);
        _socket.Release(1);
        await connection.WriterFinished.WaitAsync(HeldWebSocket.Timeout);
        Assert.Equal(CloseCodes.TryAgainLater, _socket.SentCloseStatus);
    }

    [Fact]
    public async Task Send_ExactlyOutboxBytes_Fits()
    {
        var connection = Connection(outboxFrames: 100, outboxBytes: 1000);
        connection.Send(Bytes(10));
        await _socket.NextSentAsync();

        Assert.True(connection.Send(Bytes(600)));
        Assert.True(connection.Send(Bytes(400)));

        Assert.Equal(1000, connection.QueuedBytes);
        Assert.False(connection.IsClosing);
    }

    [Fact]
    public async Task Send_PastOutboxFrames_Closes1013WithBytesToSpare()
    {
        var connection = Connection(outboxFrames: 2, outboxBytes: 1_000_000);
        connection.Send(Bytes(10));
        await _socket.NextSentAsync();
        connection.Send(Bytes(10));
        connection.Send(Bytes(10));

        Assert.False(connection.Send(Bytes(10)));

        Assert.Equal(CloseCodes.TryAgainLater, connection.CloseStatus);
    }

    [Fact]
    public async Task Send_FrameLargerThanTheBudgetToAnEmptyOutbox_QueuedAloneAndNothingAfterIt()
    {
        var connection = Connection(outboxBytes: 1000);
        connection.Send(Bytes(10));
        await _socket.NextSentAsync();

        Assert.True(connection.Send(Bytes(5000)));
        Assert.Equal(5000, connection.QueuedBytes);

        Assert.False(connection.Send(Bytes(1)));
        Assert.Equal(CloseCodes.TryAgainLater, connection.CloseStatus);
    }

    [Fact]
    public async Task ReplyAsync_PastOutboxBytes_WaitsUntilTheWriterMakesRoomThenQueues()
    {
        var connection = Connection(outboxBytes: 1000);
        connection.Send(Bytes(10));
        await _socket.NextSentAsync();
        connection.Send(Bytes(600));

        var reply = connection.ReplyAsync(Bytes(600)).AsTask();

        Assert.False(reply.IsCompleted);
        await WaitForAsync(() => connection.IsWaitingForRoom);
        Assert.Equal(600, connection.QueuedBytes);

        // The peer reads the frame being written; the writer takes the queued 600 and the reply fits.
        _socket.Release(1);
        await reply.WaitAsync(HeldWebSocket.Timeout);
        Assert.Equal(600, (await _socket.NextSentAsync()).Length);
        Assert.Equal(600, connection.QueuedBytes);
        Assert.False(connection.IsClosing);
        Assert.False(connection.IsWaitingForRoom);
    }

    [Fact]
    public async Task ReplyAsync_LargerThanTheBudget_WaitsForAnEmptyOutboxThenGoesAlone()
    {
        var connection = Connection(outboxBytes: 1000);
        connection.Send(Bytes(10));
        await _socket.NextSentAsync();
        connection.Send(Bytes(10));

        var reply = connection.ReplyAsync(Bytes(5000)).AsTask();
        Assert.False(reply.IsCompleted);

        _socket.Release(1);
        await reply.WaitAsync(HeldWebSocket.Timeout);
        Assert.Equal(5000, connection.QueuedBytes);
        Assert.False(connection.IsClosing);
    }

    [Fact]
    public async Task ReplyAsync_ConnectionClosesWhileWaiting_ReturnsWithoutQueuing()
    {
        var connection = Connection(outboxBytes: 1000);
        connection.Send(Bytes(10));
        await _socket.NextSentAsync();
        connection.Send(Bytes(900));
        var reply = connection.ReplyAsync(Bytes(900)).AsTask();

        connection.Close(CloseCodes.Normal, string.Empty, dropPending: true);

        await reply.WaitAsync(HeldWebSocket.Timeout);
        Assert.Equal(0, connection.QueuedBytes);
    }

    [Fact]
    public async Task WaitForRoomAsync_BelowBothBudgets_CompletesAtOnce()
    {
        var connection = Connection(outboxBytes: 1000);
        connection.Send(Bytes(10));
        await _socket.NextSentAsync();
        connection.Send(Bytes(999));

        var room = connection.WaitForRoomAsync();

        Assert.True(room.IsCompletedSuccessfully);
        Assert.True(await room);
    }

    [Fact]
    public async Task WaitForRoomAsync_OutboxAtItsByteBudget_WaitsForTheWriter()
    {
        var connection = Connection(outboxBytes: 1000);
        connection.Send(Bytes(10));
        await _socket.NextSentAsync();
        connection.Send(Bytes(1000));

        var room = connection.WaitForRoomAsync().AsTask();

        Assert.False(room.IsCompleted);
        _socket.Release(1);
        Assert.True(await room.WaitAsync(HeldWebSocket.Timeout));
    }

    [Fact]
    public async Task WaitForRoomAsync_ConnectionClosesWhileWaiting_False()
    {
        var connection = Connection(outboxBytes: 1000);
        connection.Send(Bytes(10));
        await _socket.NextSentAsync();
        connection.Send(Bytes(1000));
        var room = connection.WaitForRoomAsync().AsTask();

        connection.Close(CloseCodes.Normal, string.Empty, dropPending: true);

        Assert.False(await room.WaitAsync(HeldWebSocket.Timeout));
    }

    [Fact]
    public async Task WaitForOutboxBelowAsync_FramesQueued_CompletesWhenTheWriterDrainsThem()
    {
        var connection = Connection(outboxBytes: 1000);
        connection.Send(Bytes(10));
        await _socket.NextSentAsync();
        connection.Send(Bytes(10));
        connection.Send(Bytes(10));

        var drained = connection.WaitForOutboxBelowAsync(0);
        Assert.False(drained.IsCompleted);

        _socket.Release(1);
        await _socket.NextSentAsync();
        Assert.False(drained.IsCompleted);
        _socket.Release(2);
        await drained.WaitAsync(HeldWebSocket.Timeout);
        Assert.Equal(0, connection.QueuedFrames);
    }

    [Fact]
    public async Task WaitForOutboxBelowAsync_ConnectionCloses_Completes()
    {
        var connection = Connection(outboxBytes: 1000);
        connection.Send(Bytes(10));
        await _socket.NextSentAsync();
        connection.Send(Bytes(10));
        var drained = connection.WaitForOutboxBelowAsync(0);

        connection.Close(CloseCodes.TryAgainLater, "test", dropPending: true);

        await drained.WaitAsync(HeldWebSocket.Timeout);
    }

    private ClientConnection Connection(int outboxFrames = 1024, long outboxBytes = BrokerOptions.DefaultOutboxBytes) =>
        new("c-test", "user", "chat", new NamespaceOptions(), _socket, outboxFrames, outboxBytes, TimeSpan.FromSeconds(5));

    private static byte[] Bytes(int length) => new byte[length];

    /// <summary>For state that raises no event (a waiter registering), polled within the test timeout.</summary>
    private static async Task WaitForAsync(Func<bool> condition)
    {
        using var timeout = new CancellationTokenSource(HeldWebSocket.Timeout);
        while (!condition())
        {
            await Task.Delay(5, timeout.Token);
        }
    }
}
