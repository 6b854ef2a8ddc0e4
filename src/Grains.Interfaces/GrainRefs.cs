namespace Broker.Grains;

/// <summary>
/// Grain references by string key without Orleans' per-call type resolution:
/// <c>IGrainFactory.GetGrain&lt;T&gt;(string)</c> resolves the interface's grain interface type by
/// reflection (custom attributes, type-name formatting) on every call, ~40 µs measured on this
/// machine, which was paid once per publish. The grain type and interface type of each
/// interface are resolved once here; they depend only on the code, not on the cluster.
/// </summary>
public static class GrainRefs
{
    public static TGrain Ref<TGrain>(this IGrainFactory grains, string key)
        where TGrain : class, IGrainWithStringKey
    {
        var types = Types<TGrain>.Resolved ??= Resolve<TGrain>(grains); // a race resolves twice, to the same value
        return (TGrain)grains.GetGrain(GrainId.Create(types.Grain, key), types.Interface);
    }

    private static ResolvedTypes Resolve<TGrain>(IGrainFactory grains)
        where TGrain : class, IGrainWithStringKey
    {
        var sample = (GrainReference)(object)grains.GetGrain<TGrain>("type-resolution");
        return new ResolvedTypes(sample.GrainId.Type, sample.InterfaceType);
    }

    private sealed record ResolvedTypes(GrainType Grain, GrainInterfaceType Interface);

    private static class Types<TGrain>
    {
        public static ResolvedTypes? Resolved;
    }
}
