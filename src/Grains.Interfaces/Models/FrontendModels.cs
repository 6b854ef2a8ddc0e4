namespace Broker.Grains.Models;

/// <summary>
/// A front-end's claim to be alive until Ttl has passed since the renewal. KnownFrontends is how
/// many front-ends the registry listed at this front-end's previous renewal (0 at first): a
/// registry that was just rebuilt learns from it how many to wait for. Connections is how many
/// client connections the front-end held at the renewal (for the server API's info); null from
/// a front-end older than v1.1, which does not send it.
/// </summary>
[GenerateSerializer, Immutable, Alias("Broker.FrontendLease")]
public sealed record FrontendLease(
    [property: Id(0)] string FrontendId,
    [property: Id(1)] IFrontendObserver Frontend,
    [property: Id(2)] TimeSpan Ttl,
    [property: Id(3)] int KnownFrontends,
    [property: Id(4)] int? Connections = null);

/// <summary>Fresh: the registry did not know the front-end (it must restate its members). Live: front-ends now listed.</summary>
[GenerateSerializer, Immutable, Alias("Broker.RenewResult")]
public sealed record RenewResult(
    [property: Id(0)] bool Fresh,
    [property: Id(1)] int LiveFrontends);
