using System.Diagnostics.CodeAnalysis;
using System.Security.Cryptography;
using System.Text;

namespace Glass.Controller;

/// <summary>
/// A channel id: 128 bits written as 32 lowercase hex characters. A binder's id is derived from
/// its secret (<see cref="FromSecret"/>), so the id certifies its owner: claiming it takes the
/// preimage, which no restart, lapsed lease or race hands to anyone else.
/// </summary>
public static class ChannelId
{
    // Domain separation: these hashes are channel ids and nothing else.
    private static readonly byte[] Label = "glass channel id v1\0"u8.ToArray();

    /// <summary>A fresh binder secret: 128 random bits as 32 lowercase hex characters.</summary>
    public static string NewSecret() => Convert.ToHexStringLower(RandomNumberGenerator.GetBytes(16));

    /// <summary>The id <paramref name="secret"/> owns: the first 128 bits of SHA-256(label, secret).</summary>
    public static string FromSecret(string secret)
    {
        Span<byte> input = stackalloc byte[Label.Length + Encoding.ASCII.GetMaxByteCount(secret.Length)];
        Label.CopyTo(input);
        var n = Encoding.ASCII.GetBytes(secret, input[Label.Length..]);
        Span<byte> hash = stackalloc byte[SHA256.HashSizeInBytes];
        SHA256.HashData(input[..(Label.Length + n)], hash);
        return Convert.ToHexStringLower(hash[..16]);
    }

    /// <summary>Whether <paramref name="secret"/> is the preimage of <paramref name="id"/> (a normalized id), in constant time.</summary>
    public static bool IsOwnedBy(string id, string? secret) =>
        secret is { Length: > 0 and <= 256 }
        && CryptographicOperations.FixedTimeEquals(Encoding.ASCII.GetBytes(FromSecret(secret)), Encoding.ASCII.GetBytes(id));

    public static bool TryNormalize(string? text, [NotNullWhen(true)] out string? id)
    {
        id = null;
        if (text is null || text.Length != 32)
            return false;
        foreach (var c in text)
        {
            if (!char.IsAsciiHexDigit(c))
                return false;
        }
        id = text.ToLowerInvariant();
        return true;
    }
}
