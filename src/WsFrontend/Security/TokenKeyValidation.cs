using Broker.Frontend.Options;
using Microsoft.Extensions.Options;

namespace Broker.Frontend.Security;

/// <summary>
/// Start-up validation of <c>Broker:Jwt:PublicKeys</c>: every entry must hold a usable public
/// key, so that a typo in a path or a pasted private key stops the process with a message
/// instead of refusing every token later. (The other Jwt options are checked with the rest, in
/// <see cref="BrokerOptions"/>.)
/// </summary>
internal sealed class TokenKeyValidation : IValidateOptions<BrokerOptions>
{
    public ValidateOptionsResult Validate(string? name, BrokerOptions options)
    {
        var failures = new List<string>();
        var entries = options.Jwt.PublicKeys;
        for (var i = 0; i < entries.Count; i++)
        {
            if (string.IsNullOrWhiteSpace(entries[i]))
            {
                // BrokerOptions.Validate says so.
                continue;
            }

            try
            {
                PublicKeyLoader.Load(entries[i]);
            }
            catch (FormatException e)
            {
                failures.Add($"{BrokerOptions.SectionName}:Jwt:PublicKeys:{i} {e.Message}");
            }
        }

        return failures.Count == 0 ? ValidateOptionsResult.Success : ValidateOptionsResult.Fail(failures);
    }
}
