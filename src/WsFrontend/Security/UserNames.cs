namespace Broker.Frontend.Security;

/// <summary>
/// The user names the broker keeps for itself (protocol.md v1.1 "Identity"): <c>server</c>, the
/// HTTP API's sender; <c>anon-…</c>, the ids it makes up for anonymous connections; and
/// <c>guest:…</c>, where unverified names live once tokens are verified. None can be claimed
/// with <c>?user=</c> (HTTP 400), nor be a token's <c>sub</c> (HTTP 401). Compared without
/// regard to case, so that no claimed name even looks like one of them.
/// </summary>
public static class UserNames
{
    public const string Server = "server";
    public const string AnonymousPrefix = "anon-";
    public const string GuestPrefix = "guest:";

    public static bool IsReserved(string name) =>
        name.Equals(Server, StringComparison.OrdinalIgnoreCase)
        || name.StartsWith(AnonymousPrefix, StringComparison.OrdinalIgnoreCase)
        || name.StartsWith(GuestPrefix, StringComparison.OrdinalIgnoreCase);

    /// <summary>A new anonymous id: "anon-" and 12 random hex digits.</summary>
    public static string NewAnonymous() => AnonymousPrefix + Guid.NewGuid().ToString("N")[..12];

    /// <summary>Where an unverified ?user= name lives beside verified users.</summary>
    public static string Guest(string claimed) => GuestPrefix + claimed;

    /// <summary>The sentence a claim of a reserved name is refused with (the name is not repeated: it could hold a line break).</summary>
    public const string ReservedMessage =
        "That user name is reserved (\"server\" and names starting with \"anon-\" or \"guest:\" belong to the broker); choose another.";
}
