namespace Broker.Grains;

/// <summary>
/// Grain keys are "{namespace}/{name}". Namespace names never contain '/', so the first '/'
/// separates the two and room or user names may contain anything.
/// </summary>
public static class GrainKeys
{
    public static string Of(string ns, string name) => string.Concat(ns, "/", name);

    public static (string Namespace, string Name) Split(string key)
    {
        var slash = key.IndexOf('/', StringComparison.Ordinal);
        return slash < 0 ? (key, string.Empty) : (key[..slash], key[(slash + 1)..]);
    }
}
