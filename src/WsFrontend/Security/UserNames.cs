using System.Globalization;
using System.Text;

namespace Broker.Frontend.Security;

/// <summary>
/// The user names the broker keeps for itself (protocol.md v1.1 "Identity"): <c>server</c>, the
/// HTTP API's sender; <c>anon-…</c>, the ids it makes up for anonymous connections; and
/// <c>guest:…</c>, where unverified names live once tokens are verified. None can be claimed
/// with <c>?user=</c> (HTTP 400), nor be a token's <c>sub</c> (HTTP 401). Compared as a person
/// reads them, so that no claimed name even looks like one of them: in any case, with
/// compatibility forms folded (NFKC: full-width <c>ｓｅｒｖｅｒ</c>, the long s of <c>ſerver</c>,
/// the full-width colon of <c>guest：</c>) and invisible characters ignored (zero-width spaces and
/// joiners, soft hyphens, bidirectional controls, variation selectors, control characters,
/// spaces around the name). Look-alikes from other scripts (Cyrillic <c>ѕ</c>) are not caught:
/// that needs Unicode's confusables table.
/// </summary>
public static class UserNames
{
    public const string Server = "server";
    public const string AnonymousPrefix = "anon-";
    public const string GuestPrefix = "guest:";

    /// <summary>Server identities applications name for themselves (Broker.Grains.BrokerServerApi): "server:dice".</summary>
    public const string ServerPrefix = "server:";

    public static bool IsReserved(string name)
    {
        var read = AsRead(name);
        return read.Equals(Server, StringComparison.Ordinal)
            || read.StartsWith(ServerPrefix, StringComparison.Ordinal)
            || read.StartsWith(AnonymousPrefix, StringComparison.Ordinal)
            || read.StartsWith(GuestPrefix, StringComparison.Ordinal);
    }

    /// <summary>A new anonymous id: "anon-" and 12 random hex digits.</summary>
    public static string NewAnonymous() => AnonymousPrefix + Guid.NewGuid().ToString("N")[..12];

    /// <summary>Where an unverified ?user= name lives beside verified users.</summary>
    public static string Guest(string claimed) => GuestPrefix + claimed;

    /// <summary>The sentence a claim of a reserved name is refused with (the name is not repeated: it could hold a line break).</summary>
    public const string ReservedMessage =
        "That user name is reserved (\"server\" and names starting with \"server:\", \"anon-\" or \"guest:\" belong to the broker, however they are written); choose another.";

    /// <summary>The name as it reads: invisible characters dropped, compatibility forms folded (NFKC), lower case, trimmed.</summary>
    private static string AsRead(string name)
    {
        // Dropped before folding (a lone surrogate becomes U+FFFD, so the normalization cannot
        // throw) and after it (folding can make one: U+FFA0 becomes U+1160).
        var folded = Visible(Visible(name).Normalize(NormalizationForm.FormKC));
        return folded.Trim().ToLowerInvariant();
    }

    private static string Visible(string text)
    {
        var visible = new StringBuilder(text.Length);
        foreach (var rune in text.EnumerateRunes())
        {
            if (!IsInvisible(rune))
            {
                visible.Append(rune.ToString());
            }
        }

        return visible.ToString();
    }

    /// <summary>Format and control characters, and the default-ignorable ones of other categories (Unicode's DerivedCoreProperties).</summary>
    private static bool IsInvisible(Rune rune) =>
        Rune.GetUnicodeCategory(rune) is UnicodeCategory.Format or UnicodeCategory.Control
        || rune.Value is 0x034F or 0x115F or 0x1160 or 0x17B4 or 0x17B5 or 0x3164 or 0xFFA0
        || rune.Value is >= 0x180B and <= 0x180F
        || rune.Value is >= 0xFE00 and <= 0xFE0F
        || rune.Value is >= 0xE0100 and <= 0xE01EF;
}
