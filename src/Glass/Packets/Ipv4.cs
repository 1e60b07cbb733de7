namespace Glass.Packets;

/// <summary>
/// Dotted-quad text for addresses held as host-order <see cref="uint"/> (203.0.113.1 == 0xCB007101).
/// Not for hot paths.
/// </summary>
public static class Ipv4
{
    /// <summary>Parses "a.b.c.d"; throws <see cref="FormatException"/> otherwise.</summary>
    public static uint Parse(string dotted) =>
        TryParse(dotted, out uint addr) ? addr : throw new FormatException($"Not a dotted-quad IPv4 address: '{dotted}'.");

    /// <summary>
    /// Strict dotted quad: four decimal parts 0..255, no signs, spaces or leading zeros. The shorthand forms
    /// inet_aton and IPAddress accept ("10.1", "0x7f.1", "010.0.0.1") are refused because they read ambiguously.
    /// </summary>
    public static bool TryParse(string? s, out uint addr)
    {
        addr = 0;
        if (s is null)
            return false;
        uint result = 0;
        int parts = 0;
        int i = 0;
        while (true)
        {
            int start = i;
            int value = 0;
            while (i < s.Length && i - start < 4 && char.IsAsciiDigit(s[i]))
            {
                value = value * 10 + (s[i] - '0');
                i++;
            }
            int digits = i - start;
            if (digits == 0 || digits > 3 || value > 255 || (digits > 1 && s[start] == '0'))
                return false;
            result = (result << 8) | (uint)value;
            parts++;
            if (parts == 4)
                break;
            if (i >= s.Length || s[i] != '.')
                return false;
            i++;
        }
        if (i != s.Length)
            return false;
        addr = result;
        return true;
    }

    public static string Format(uint addr) =>
        $"{addr >> 24}.{(addr >> 16) & 0xFF}.{(addr >> 8) & 0xFF}.{addr & 0xFF}";
}
