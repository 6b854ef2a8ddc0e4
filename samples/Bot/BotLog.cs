namespace Broker.Samples.Bot;

/// <summary>The sample's log lines (event ids 9000-9099: an application's own range, apart from the broker's).</summary>
internal static partial class BotLog
{
    [LoggerMessage(EventId = 9000, Level = LogLevel.Information, Message = "Dice bot silo starting: cluster {ClusterId} (through Redis), advertised {Advertise}, silo port {SiloPort}, gateway port {GatewayPort}, health port {HealthPort}, streams {Provider}; answers /roll in /{Namespace}")]
    public static partial void Starting(ILogger logger, string clusterId, string advertise, int siloPort, int gatewayPort, int healthPort, string provider, string @namespace);

    // Once per roll: never above Debug.
    [LoggerMessage(EventId = 9001, Level = LogLevel.Debug, Message = "Answered /roll (seq {Seq}) in /{Namespace} room {Room} with seq {ReplySeq} (duplicate: {Duplicate})")]
    public static partial void Replied(ILogger logger, string @namespace, string room, long seq, long replySeq, bool duplicate);

    [LoggerMessage(EventId = 9002, Level = LogLevel.Warning, Message = "The stream of /{Namespace} room {Room} gave up delivering an item to the dice bot")]
    public static partial void DeliveryFailed(ILogger logger, string @namespace, string room, Exception exception);
}
