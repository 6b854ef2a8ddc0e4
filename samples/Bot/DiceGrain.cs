using System.Text.Json;
using Broker.Grains;
using Broker.Grains.Streams;
using Orleans.Streams;
using Orleans.Streams.Core;

namespace Broker.Samples.Bot;

/// <summary>The dice bot of one /chat room; its key is the room's name.</summary>
public interface IDiceGrain : IGrainWithStringKey;

/// <summary>
/// Answers "/roll" in every room of the /chat namespace (with <c>Stream</c> on). The implicit
/// subscription makes Orleans activate one DiceGrain per room that has items, keyed by the
/// room's name, and hand it the room's items in the room's order: its messages by seq, member
/// joins and leaves between them. It replies into the room through the broker's server API,
/// as "server:dice": the reply is an ordinary message of the room, which every member receives
/// (and which comes back to this grain on the stream, where it is ignored).
/// </summary>
[ImplicitStreamSubscription(StreamNamespace)]
public sealed class DiceGrain(ILogger<DiceGrain> logger) : Grain, IDiceGrain, IStreamSubscriptionObserver, IAsyncObserver<RoomStreamItem>
{
    /// <summary>The broker namespace this grain hears: "chat".</summary>
    public const string Namespace = "chat";

    /// <summary>Its rooms' stream namespace: "broker.chat" (<see cref="BrokerStreams.StreamNamespace"/>).</summary>
    public const string StreamNamespace = BrokerStreams.NamespacePrefix + Namespace;

    /// <summary>Who the replies are from: a server identity, a name no client can claim.</summary>
    public const string Identity = BrokerServerApi.ServerPrefix + "dice";

    // Called when a room's item activates the grain: resume the implicit subscription with this
    // grain as its observer. The type must be the one the rooms produce.
    public Task OnSubscribed(IStreamSubscriptionHandleFactory handleFactory) =>
        handleFactory.Create<RoomStreamItem>().ResumeAsync(this);

    public async Task OnNextAsync(RoomStreamItem item, StreamSequenceToken? token = null)
    {
        if (item.Kind != RoomStreamItemKind.Message || item.User == Identity || !DiceCommand.IsRoll(item.Data))
        {
            return;
        }

        var roll = Random.Shared.Next(1, 7);
        var reply = JsonSerializer.Serialize(new DiceReply($"{item.User} rolled {roll}", roll, item.User, item.Seq), JsonSerializerOptions.Web);

        // The msgId names the message answered (its epoch and seq): if the stream delivers this
        // item again (it retries a delivery that failed), the room answers the retry with the
        // first reply's seq instead of committing a second reply. An exception thrown here is
        // such a failure: Orleans delivers the item again, for up to a minute.
        var result = await GrainFactory.PublishToRoomAsync(item.Namespace, item.Room, Identity, reply, msgId: $"roll:{item.Epoch}:{item.Seq}");
        BotLog.Replied(logger, item.Namespace, item.Room, item.Seq, result.Seq, result.Duplicate);
    }

    public Task OnCompletedAsync() => Task.CompletedTask;

    // The stream gave up on an item (its deliveries kept failing): that /roll goes unanswered.
    public Task OnErrorAsync(Exception ex)
    {
        BotLog.DeliveryFailed(logger, Namespace, this.GetPrimaryKeyString(), ex);
        return Task.CompletedTask;
    }
}

/// <summary>The reply's data: <c>{"text":"alice rolled 4","roll":4,"for":"alice","replyTo":17}</c>.</summary>
/// <param name="Text">What the chat page shows.</param>
/// <param name="Roll">1 to 6.</param>
/// <param name="For">Who asked.</param>
/// <param name="ReplyTo">The seq of the "/roll" message answered.</param>
public sealed record DiceReply(string Text, int Roll, string For, long ReplyTo);
