namespace Broker.Grains.Models;

/// <summary>A front-end's claim to be alive until Ttl has passed since the renewal.</summary>
[GenerateSerializer, Immutable, Alias("Broker.FrontendLease")]
public sealed record FrontendLease(
    [property: Id(0)] string FrontendId,
    [property: Id(1)] IFrontendObserver Frontend,
    [property: Id(2)] TimeSpan Ttl);
