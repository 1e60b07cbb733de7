namespace Glass.Interop;

/// <summary>
/// Kernel settings under /proc/sys that the translator changes for offload, each remembered so
/// that stopping puts back what was there.
/// </summary>
internal sealed class Sysctl
{
    // The per-namespace switches offload needs (Documentation/networking/nf_conntrack-sysctl.rst, ip-sysctl.rst).
    public const string ConntrackAccounting = "net/netfilter/nf_conntrack_acct";
    public const string ConntrackMax = "net/netfilter/nf_conntrack_max";
    public const string IpForward = "net/ipv4/ip_forward";

    private readonly List<(string Name, string Old)> _changed = new();

    public static string? Read(string name)
    {
        try
        {
            return File.ReadAllText(Path.Combine("/proc/sys", name)).Trim();
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            return null;
        }
    }

    /// <summary>Sets <paramref name="name"/> unless it already holds <paramref name="value"/>; true when it changed it.</summary>
    public bool Set(string name, string value)
    {
        var old = Read(name) ?? throw new IOException($"/proc/sys/{name} cannot be read.");
        if (old == value)
            return false;
        File.WriteAllText(Path.Combine("/proc/sys", name), value);
        _changed.Add((name, old));
        return true;
    }

    /// <summary>Puts back every value this instance changed, newest first.</summary>
    public void Restore()
    {
        for (var i = _changed.Count - 1; i >= 0; i--)
        {
            try
            {
                File.WriteAllText(Path.Combine("/proc/sys", _changed[i].Name), _changed[i].Old);
            }
            catch (Exception e) when (e is IOException or UnauthorizedAccessException)
            {
            }
        }
        _changed.Clear();
    }
}
