using System.Text;
using Broker.Grains.Models;
using Broker.Grains.Storage;
using Broker.Grains.Tests.Infrastructure;
using Orleans.Core.Internal;

namespace Broker.Grains.Tests;

/// <summary>Rooms whose epoch, seq and history live in a real Redis: what survives an activation.</summary>
[Collection(DurableClusterCollection.Name)]
public sealed class DurableRoomTests(DurableClusterFixture fixture)
{
    private static readonly RoomPolicy Policy = new(HistoryLimit: 50, Presence: true);

    [Fact]
    public async Task Publish_AfterActivationLost_SameEpochAndSeqContinues()
    {
        var key = NewKey();
        var first = await PublishAsync(key, "one");
        await PublishAsync(key, "two");

        await DeactivateAsync(key);
        var third = await PublishAsync(key, "three");

        Assert.Equal(first.Epoch, third.Epoch);
        Assert.Equal(3, third.Seq);
        var page = await Room(key).GetHistory(null, 10, int.MaxValue);
        Assert.Equal(first.Epoch, page.Epoch);
        Assert.Equal([1L, 2, 3], page.Messages.Select(m => m.Seq));
        Assert.Equal("\"two\"", Encoding.UTF8.GetString(page.Messages[1].Payload));
    }

    [Fact]
    public async Task Publish_RetryWithSameMsgIdAfterActivationLost_AckedWithFirstSeqAndStoredOnce()
    {
        var key = NewKey();
        var first = await PublishAsync(key, "payload", msgId: "m-1");
        await DeactivateAsync(key);

        var retry = await PublishAsync(key, "payload", msgId: "m-1");

        Assert.True(retry.Duplicate);
        Assert.Equal(first.Seq, retry.Seq);
        Assert.Single((await Room(key).GetHistory(null, 10, int.MaxValue)).Messages);
    }

    [Fact]
    public async Task Join_SinceAfterActivationLost_RecoversMissedMessages()
    {
        var key = NewKey();
        var start = await PublishAsync(key, "seen");
        await PublishAsync(key, "missed-1");
        await PublishAsync(key, "missed-2");
        await DeactivateAsync(key);
        var frontend = new RecordingFrontend("fe-durable-" + Guid.NewGuid().ToString("N"));
        var reference = fixture.Client.CreateObjectReference<IFrontendObserver>(frontend);
        await fixture.Client.GetGrain<IFrontendRegistryGrain>(IFrontendRegistryGrain.Key).Renew(new FrontendLease(frontend.Id, reference, TimeSpan.FromHours(1), 0));

        var join = await Room(key).Join(new JoinRequest("c1", "alice", frontend.Id, reference, Policy, Since: start.Seq, Epoch: start.Epoch));

        Assert.True(join.Recovered);
        Assert.Equal([2L, 3], join.Missed.Select(m => m.Seq));
        await fixture.Client.GetGrain<IFrontendRegistryGrain>(IFrontendRegistryGrain.Key).Leave(frontend.Id);
    }

    [Fact]
    public async Task Leave_LastMemberAfterEmptyRoomTimeout_DeactivatesAndKeepsEpochAndHistory()
    {
        var key = NewKey();
        var policy = Policy with { EmptyRoomTimeout = TimeSpan.FromMilliseconds(300) };
        var frontend = new RecordingFrontend("fe-durable-" + Guid.NewGuid().ToString("N"));
        var reference = fixture.Client.CreateObjectReference<IFrontendObserver>(frontend);
        var first = await Room(key).Join(new JoinRequest("c1", "alice", frontend.Id, reference, policy, null, null));
        await PublishAsync(key, "one", policy: policy);
        await PublishAsync(key, "two", policy: policy);

        await Room(key).Leave("c1");
        await Activations.WaitUntilGoneAsync(fixture.Client, Room(key), "the emptied durable room");
        var back = await Room(key).Join(new JoinRequest("c2", "alice", frontend.Id, reference, policy, Since: 1, Epoch: first.Epoch));

        Assert.True(back.Recovered);
        Assert.Equal(first.Epoch, back.Epoch);
        Assert.Equal([2L], back.Missed.Select(m => m.Seq));
        fixture.Client.DeleteObjectReference<IFrontendObserver>(reference);
    }

    [Fact]
    public async Task Publish_ManyConcurrent_CommittedInFewerBatchesThanMessages()
    {
        var key = NewKey();
        await PublishAsync(key, "warm-up");
        var execsBefore = await fixture.Redis.CommitCountAsync();

        var results = await Task.WhenAll(Enumerable.Range(0, 200).Select(i => PublishAsync(key, i.ToString(System.Globalization.CultureInfo.InvariantCulture))));

        var execs = await fixture.Redis.CommitCountAsync() - execsBefore;
        Assert.Equal(Enumerable.Range(2, 200).Select(i => (long)i), results.Select(r => r.Seq).Order());
        Assert.InRange(execs, 1, 199);
        Assert.Equal(Enumerable.Range(152, 50).Select(i => (long)i), (await Room(key).GetHistory(null, 500, int.MaxValue)).Messages.Select(m => m.Seq));
    }

    [Fact]
    public async Task PublishBatch_WithDuplicates_OneCommitConsecutiveSeqsAndTheFirstSeqForRepeats()
    {
        var key = NewKey();
        await PublishAsync(key, "warm-up", msgId: "w");
        var execsBefore = await fixture.Redis.CommitCountAsync();

        var results = await Room(key).PublishBatch(new PublishBatchRequest(
            "alice",
            [Batched("a", "a"), Batched("b", "b"), Batched("a again", "a"), Batched("w again", "w"), Batched("c", null)],
            Policy));

        Assert.Equal(1, await fixture.Redis.CommitCountAsync() - execsBefore);
        Assert.Equal([2L, 3, 2, 1, 4], results.Select(r => r.Seq));
        Assert.Equal([false, false, true, true, false], results.Select(r => r.Duplicate));

        // Across the activation: the stored msgIds still answer with their first seq.
        await DeactivateAsync(key);
        var later = await Room(key).PublishBatch(new PublishBatchRequest("alice", [Batched("b", "b"), Batched("d", "d")], Policy));
        Assert.Equal([3L, 5], later.Select(r => r.Seq));
        Assert.Equal(["\"warm-up\"", "\"a\"", "\"b\"", "\"c\"", "\"d\""], (await Room(key).GetHistory(null, 10, int.MaxValue)).Messages.Select(m => Encoding.UTF8.GetString(m.Payload)));
    }

    [Fact]
    public async Task PublishBatch_StoreUnreachable_FailsAsAWholeAndNoSeqIsReused()
    {
        var key = NewKey();
        var before = await PublishAsync(key, "before");
        fixture.Redis.Pause();
        Exception? failure = null;
        try
        {
            await Room(key).PublishBatch(new PublishBatchRequest("alice", [Batched("during-1", null), Batched("during-2", "d")], Policy)).WaitAsync(TimeSpan.FromSeconds(30));
        }
        catch (Exception ex)
        {
            failure = ex;
        }
        finally
        {
            fixture.Redis.Resume();
        }

        Assert.True(failure is RoomStoreException, $"Expected RoomStoreException, got {failure}");
        var after = await Room(key).PublishBatch(new PublishBatchRequest("alice", [Batched("after", "d")], Policy));
        var page = await Room(key).GetHistory(null, 10, int.MaxValue);
        var payloads = page.Messages.Select(m => Encoding.UTF8.GetString(m.Payload)).ToList();
        Assert.Equal(Enumerable.Range(1, payloads.Count).Select(i => (long)i), page.Messages.Select(m => m.Seq));
        if (payloads.Count == 3)
        {
            // The timed-out commit ran once Redis went on (see the test above): the whole batch,
            // and the retry of msgId "d" is its duplicate.
            Assert.Equal(["\"before\"", "\"during-1\"", "\"during-2\""], payloads);
            Assert.Equal((before.Seq + 2, true), (after[0].Seq, after[0].Duplicate));
        }
        else
        {
            // None of it: "after" is ordered next.
            Assert.Equal(["\"before\"", "\"after\""], payloads);
            Assert.Equal((before.Seq + 1, false), (after[0].Seq, after[0].Duplicate));
        }
    }

    private static BatchedPublish Batched(string text, string? msgId) => new(Encoding.UTF8.GetBytes($"\"{text}\""), msgId);

    [Fact]
    public async Task Publish_BeyondHistoryBytes_StoreKeepsWhatTheWindowKeeps()
    {
        var key = NewKey();
        var text = new string('x', 1000);
        var perMessage = Encoding.UTF8.GetByteCount($"\"{text}\"") + HistoryWindow.MessageOverheadBytes;
        var policy = Policy with { HistoryBytes = 4 * perMessage };
        for (var i = 0; i < 6; i++)
        {
            await PublishAsync(key, text, policy: policy);
        }

        // Concurrent publishes commit as one batch, bigger than the window.
        await Task.WhenAll(Enumerable.Range(0, 10).Select(_ => PublishAsync(key, text, policy: policy)));
        var before = await Room(key).GetHistory(null, 100, int.MaxValue);
        await DeactivateAsync(key);
        var after = await Room(key).GetHistory(null, 100, int.MaxValue);

        Assert.Equal([13L, 14, 15, 16], before.Messages.Select(m => m.Seq));
        Assert.Equal(before.Messages.Select(m => m.Seq), after.Messages.Select(m => m.Seq));
        Assert.Equal(4, await fixture.Redis.Connection.GetDatabase().ListLengthAsync($"broker:tests:room:{key}:log"));
    }

    [Fact]
    public async Task Publish_StoreUnreachable_FailsWithoutAckThenContinuesWithoutReusingSeq()
    {
        var key = NewKey();
        var before = await PublishAsync(key, "before");
        fixture.Redis.Pause();
        Exception? failure = null;
        try
        {
            await PublishAsync(key, "during").WaitAsync(TimeSpan.FromSeconds(30));
        }
        catch (Exception ex)
        {
            failure = ex;
        }
        finally
        {
            fixture.Redis.Resume();
        }

        Assert.True(failure is RoomStoreException, $"Expected RoomStoreException, got {failure}");
        var after = await PublishAsync(key, "after");
        Assert.Equal(before.Epoch, after.Epoch);

        // The commit that timed out was sent: Redis may run it once it goes on, before the next
        // activation loads. "unavailable" means "may or may not have been ordered"; either way
        // it is there once, in order, and no seq is reused.
        var page = await Room(key).GetHistory(null, 10, int.MaxValue);
        var payloads = page.Messages.Select(m => Encoding.UTF8.GetString(m.Payload)).ToList();
        string[] expected = payloads.Contains("\"during\"") ? ["\"before\"", "\"during\"", "\"after\""] : ["\"before\"", "\"after\""];
        Assert.Equal(expected, payloads);
        Assert.Equal(Enumerable.Range(1, payloads.Count).Select(i => (long)i), page.Messages.Select(m => m.Seq));
        Assert.Equal(page.Messages[^1].Seq, after.Seq);
    }

    private static string NewKey() => GrainKeys.Of("chat", "durable-" + Guid.NewGuid().ToString("N"));

    private IRoomGrain Room(string key) => fixture.Client.GetGrain<IRoomGrain>(key);

    private Task<PublishResult> PublishAsync(string key, string text, string? msgId = null, RoomPolicy? policy = null) =>
        Room(key).Publish(new PublishRequest("alice", Encoding.UTF8.GetBytes($"\"{text}\""), msgId, policy ?? Policy));

    private async Task DeactivateAsync(string key)
    {
        var before = (await Room(key).GetHistory(null, 0, int.MaxValue)).Epoch;
        await Room(key).Cast<IGrainManagementExtension>().DeactivateOnIdle();

        // The next call lands on a new activation, which loaded the stored state.
        Assert.Equal(before, (await Room(key).GetHistory(null, 0, int.MaxValue)).Epoch);
    }
}
