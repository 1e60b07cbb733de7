using System.Diagnostics.CodeAnalysis;
using System.Security.Cryptography;

namespace Glass.Controller;

/// <summary>A channel id: 128 random bits, written as 32 lowercase hex characters.</summary>
public static class ChannelId
{
    public static string New() => Convert.ToHexStringLower(RandomNumberGenerator.GetBytes(16));

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
