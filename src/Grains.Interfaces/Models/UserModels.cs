using System.Collections.Immutable;

namespace Broker.Grains.Models;

[GenerateSerializer, Immutable, Alias("Broker.UserConnection")]
public sealed record UserConnection(
    [property: Id(0)] string ConnectionId,
    [property: Id(1)] string FrontendId,
    [property: Id(2)] IFrontendObserver Frontend);

/// <summary>A direct message; Payload is the raw JSON "data".</summary>
[GenerateSerializer, Immutable, Alias("Broker.DirectMessage")]
public sealed record DirectMessage(
    [property: Id(0)] string From,
    [property: Id(1)] long Timestamp,
    [property: Id(2)] byte[] Payload);

[GenerateSerializer, Immutable, Alias("Broker.DirectDelivery")]
public sealed record DirectDelivery(
    [property: Id(0)] string Namespace,
    [property: Id(1)] string User,
    [property: Id(2)] ImmutableArray<DirectMessage> Messages);
