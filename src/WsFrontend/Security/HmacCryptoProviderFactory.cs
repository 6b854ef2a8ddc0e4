using System.Security.Cryptography;
using Broker.Frontend.Options;
using Microsoft.IdentityModel.Tokens;

namespace Broker.Frontend.Security;

/// <summary>
/// Lets one signing key of at least <see cref="JwtOptions.MinSigningKeyBytes"/> bytes verify
/// HS256, HS384 and HS512 alike. Microsoft.IdentityModel refuses an HMAC key shorter than the
/// hash it is used with (IDX10720 in <see cref="CryptoProviderFactory.CreateKeyedHashAlgorithm"/>:
/// 48 bytes for HS384, 64 for HS512, after RFC 7518 §3.2), so a 32-byte key that verified HS256
/// refused every HS384/HS512 token as "not valid". HMAC itself takes a key of any length (RFC
/// 2104); the broker's floor is 32 bytes for all three, checked at start-up. Every other
/// algorithm and key is the base factory's.
/// </summary>
internal sealed class HmacCryptoProviderFactory : CryptoProviderFactory
{
    public override KeyedHashAlgorithm CreateKeyedHashAlgorithm(byte[] keyBytes, string algorithm)
    {
        if (keyBytes is not null && keyBytes.Length >= JwtOptions.MinSigningKeyBytes)
        {
            switch (algorithm)
            {
                case SecurityAlgorithms.HmacSha256:
                    return new HMACSHA256(keyBytes);
                case SecurityAlgorithms.HmacSha384:
                    return new HMACSHA384(keyBytes);
                case SecurityAlgorithms.HmacSha512:
                    return new HMACSHA512(keyBytes);
            }
        }

        return base.CreateKeyedHashAlgorithm(keyBytes!, algorithm);
    }
}
