using System.Collections.Immutable;
using System.Diagnostics;
using Broker.Frontend.Diagnostics;
using Broker.Frontend.Tests.Infrastructure;
using Broker.Grains.Diagnostics;
using Broker.Grains.Models;

namespace Broker.Frontend.Tests.Tracing;

/// <summary>
/// Alone in their collection, run after the parallel ones: a listener is process-wide, and one
/// test asserts that there is none.
/// </summary>
[CollectionDefinition(Name, DisableParallelization = true)]
public sealed class TracingCollection
{
    public const string Name = "tracing";
}

/// <summary>
/// The broker's spans (docs/operations.md "Traces") through a real broker (embedded silo):
/// publish → Orleans' call → room.commit → deliver, one trace.
/// </summary>
[Collection(TracingCollection.Name)]
public sealed class TracingTests : IClassFixture<BrokerFixture>
{
    private readonly BrokerFixture _fixture;

    public TracingTests(BrokerFixture fixture) => _fixture = fixture;

    private BrokerServer Server => _fixture.Server;

    [Fact]
    public async Task Publish_WithListener_PublishCommitAndDeliverShareOneTrace()
    {
        using var spans = new SpanRecorder();
        var room = BrokerFixture.UniqueRoom("traced");
        await using var subscriber = await Server.ConnectAsync("/chat?user=reader");
        await using var publisher = await Server.ConnectAsync("/chat?user=writer");
        await subscriber.JoinAsync(room);
        await publisher.JoinAsync(room);

        var ack = await publisher.RequestAsync(new() { ["type"] = "publish", ["room"] = room, ["data"] = "hi", ["msgId"] = "m-1" });
        var seq = ack.GetProperty("seq").GetInt64();
        await subscriber.WaitForAsync(f => f.GetProperty("type").GetString() == "message");

        var publish = await spans.WaitForAsync(BrokerActivity.PublishSpan, room);
        var commit = await spans.WaitForAsync(BrokerActivity.CommitSpan, room);
        var deliver = await spans.WaitForAsync(BrokerActivity.DeliverSpan, room);

        Assert.Equal(ActivityKind.Server, publish.Kind);
        Assert.Equal(default, publish.ParentSpanId);
        Assert.Equal("chat", publish.GetTagItem(BrokerActivity.NamespaceTag));
        Assert.Equal("m-1", publish.GetTagItem(BrokerActivity.MsgIdTag));
        Assert.Equal(seq, publish.GetTagItem(BrokerActivity.SeqTag));
        Assert.Equal(ActivityStatusCode.Unset, publish.Status);

        // The commit descends from the publish through Orleans' spans of the grain call.
        Assert.Equal(publish.TraceId, commit.TraceId);
        Assert.Equal(publish.SpanId, AncestorOnSource(spans, commit, BrokerActivity.SourceName)?.SpanId);
        Assert.Contains(spans.Stopped, a => a.Source.Name == SpanRecorder.OrleansApplicationSource && a.TraceId == publish.TraceId && a.Kind == ActivityKind.Server);
        Assert.Equal("chat", commit.GetTagItem(BrokerActivity.NamespaceTag));
        Assert.Equal("m-1", commit.GetTagItem(BrokerActivity.MsgIdTag));
        Assert.Equal(seq, commit.GetTagItem(BrokerActivity.SeqTag));

        // One delivery call to this front-end for both members, a child of the commit.
        Assert.Equal(publish.TraceId, deliver.TraceId);
        Assert.Equal(commit.SpanId, deliver.ParentSpanId);
        Assert.Equal(ActivityKind.Consumer, deliver.Kind);
        Assert.Equal(seq, deliver.GetTagItem(BrokerActivity.SeqTag));
        Assert.Equal(2, deliver.GetTagItem(BrokerActivity.RecipientsTag));
        Assert.Equal(1, deliver.GetTagItem(BrokerActivity.MessagesTag));
        Assert.Single(spans.Stopped, a => a.OperationName == BrokerActivity.DeliverSpan && Equals(a.GetTagItem(BrokerActivity.RoomTag), room));
    }

    [Fact]
    public async Task Publish_NotAMember_PublishSpanRecordsTheErrorAndNoCommit()
    {
        using var spans = new SpanRecorder();
        var room = BrokerFixture.UniqueRoom("refused");
        await using var outsider = await Server.ConnectAsync("/chat?user=outsider");

        var reply = await outsider.PublishAsync(room, "hi");
        Assert.Equal("not_member", reply.GetProperty("code").GetString());

        var publish = await spans.WaitForAsync(BrokerActivity.PublishSpan, room);
        Assert.Equal(ActivityStatusCode.Error, publish.Status);
        Assert.Equal("not_member", publish.GetTagItem(BrokerActivity.ErrorTypeTag));
        Assert.Null(publish.GetTagItem(BrokerActivity.SeqTag));
        Assert.DoesNotContain(spans.Stopped, a => a.TraceId == publish.TraceId && a.SpanId != publish.SpanId);
    }

    [Fact]
    public async Task Deliver_BatchOfTwoTracedMessages_ParentIsTheLastCommitAndTheOtherALink()
    {
        using var spans = new SpanRecorder();
        var first = ActivityContext.Parse("00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01", null);
        var second = ActivityContext.Parse("00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01", null);
        var room = BrokerFixture.UniqueRoom("batch");
        var delivery = new RoomDelivery("chat", room, "e", ImmutableArray.Create(
            MessageEvent(1, first),
            new RoomEvent(2, RoomEventKind.MemberJoined, "someone", null),
            MessageEvent(3, second)));

        using (FrontendActivity.StartDeliver(delivery, recipients: 7))
        {
        }

        var deliver = await spans.WaitForAsync(BrokerActivity.DeliverSpan, room);
        Assert.Equal(second.TraceId, deliver.TraceId);
        Assert.Equal(second.SpanId, deliver.ParentSpanId);
        var link = Assert.Single(deliver.Links);
        Assert.Equal(first.SpanId, link.Context.SpanId);
        Assert.Equal(2, deliver.GetTagItem(BrokerActivity.MessagesTag));
        Assert.Equal(3L, deliver.GetTagItem(BrokerActivity.SeqTag));
        Assert.Equal(7, deliver.GetTagItem(BrokerActivity.RecipientsTag));

        // Member events alone (or untraced messages) are in no trace: no span.
        var untraced = delivery with { Events = [new RoomEvent(4, RoomEventKind.MemberLeft, "someone", null)] };
        Assert.Null(FrontendActivity.StartDeliver(untraced, recipients: 7));
    }

    [Fact]
    public async Task Publish_NoListener_NothingCreated()
    {
        Assert.False(BrokerActivity.Source.HasListeners(), "another listener on the Broker source is attached");
        var room = BrokerFixture.UniqueRoom("dark");
        await using var client = await Server.ConnectAsync("/chat?user=dark");
        await using var reader = await Server.ConnectAsync("/chat?user=dark-reader");
        await client.JoinAsync(room);
        await reader.JoinAsync(room);
        var ack = await client.PublishAsync(room, "hi");
        Assert.Equal("ack", ack.GetProperty("type").GetString());

        Assert.Null(BrokerActivity.StartRoomCommit("chat", room, "m"));
        var traced = new RoomDelivery("chat", room, "e", [MessageEvent(1, ActivityContext.Parse("00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01", null))]);
        Assert.Null(FrontendActivity.StartDeliver(traced, recipients: 1));

        // A listener that samples nothing: still nothing made; the room, outside any trace,
        // and the delivery of a message whose commit was not traced do not even ask the sampler.
        var asked = new List<string>();
        var started = new List<string>();
        using var sampler = new ActivityListener
        {
            ShouldListenTo = source => source.Name == BrokerActivity.SourceName,
            Sample = (ref ActivityCreationOptions<ActivityContext> options) =>
            {
                lock (asked)
                {
                    asked.Add(options.Name);
                }

                return ActivitySamplingResult.None;
            },
            ActivityStarted = activity =>
            {
                lock (started)
                {
                    started.Add(activity.OperationName);
                }
            },
        };
        ActivitySource.AddActivityListener(sampler);
        Assert.Equal(2, (await client.PublishAsync(room, "again")).GetProperty("seq").GetInt64());
        await reader.WaitForAsync(f => f.GetProperty("type").GetString() == "message" && f.GetProperty("seq").GetInt64() == 2);
        lock (asked)
        {
            Assert.Contains(BrokerActivity.PublishSpan, asked);
            Assert.DoesNotContain(BrokerActivity.CommitSpan, asked);
            Assert.DoesNotContain(BrokerActivity.DeliverSpan, asked);
        }

        lock (started)
        {
            Assert.Empty(started);
        }
    }

    private static RoomEvent MessageEvent(long seq, ActivityContext commit) =>
        new(seq, RoomEventKind.Message, "u", new RoomMessage(seq, "u", 0, new byte[] { (byte)'1' }), TraceParent: $"00-{commit.TraceId}-{commit.SpanId}-01");

    /// <summary>The nearest recorded ancestor of <paramref name="span"/> from the given source, through the recorded spans of its trace.</summary>
    private static Activity? AncestorOnSource(SpanRecorder spans, Activity span, string source)
    {
        var byId = spans.Stopped.Where(a => a.TraceId == span.TraceId).ToDictionary(a => a.SpanId);
        var parent = span.ParentSpanId;
        while (byId.TryGetValue(parent, out var ancestor))
        {
            if (ancestor.Source.Name == source)
            {
                return ancestor;
            }

            parent = ancestor.ParentSpanId;
        }

        return null;
    }
}
