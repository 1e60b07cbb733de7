using System.Diagnostics.CodeAnalysis;

namespace Glass;

/// <summary>An inclusive range of router TCP ports, written "61000-61999".</summary>
public readonly record struct PortRange(ushort First, ushort Last)
{
    // Above Linux's stock ephemeral range (32768-60999), so the router's own outgoing
    // connections never take a relay port.
    public static readonly PortRange Default = new(61000, 61999);

    public int Count => Last - First + 1;

    public bool Contains(int port) => port >= First && port <= Last;

    public override string ToString() => $"{First}-{Last}";

    public static bool TryParse(string? text, [NotNullWhen(true)] out PortRange? range, out string? error)
    {
        range = null;
        error = null;
        var parts = (text ?? "").Split('-', StringSplitOptions.TrimEntries);
        if (parts.Length is < 1 or > 2
            || !ushort.TryParse(parts[0], out var first)
            || !ushort.TryParse(parts[^1], out var last))
        {
            error = $"'{text}' is not a port range; write it as FIRST-LAST, e.g. 61000-61999.";
            return false;
        }
        if (first == 0 || last < first)
        {
            error = $"'{text}' is not a port range: the first port must be at least 1 and not above the last.";
            return false;
        }
        range = new PortRange(first, last);
        return true;
    }

    public static PortRange Parse(string text) =>
        TryParse(text, out var r, out var error) ? r.Value : throw new FormatException(error);
}
