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

    /// <summary>Whether this instance (or the translator it took over from) changed <paramref name="name"/>.</summary>
    public bool Changed(string name) => _changed.Exists(c => c.Name == name);

    private const string RunningMark = "# running pid=";

    /// <summary>
    /// Writes what was changed to <paramref name="path"/>: while running (with
    /// <paramref name="runningPid"/>, so a next start knows this one died), and for a translator
    /// that leaves its sessions running. The next one reads it with <see cref="TakeOver"/> and puts
    /// the values back when it stops.
    /// </summary>
    public void Save(string path, int? runningPid)
    {
        var lines = _changed.Select(c => $"{c.Name}={c.Old}");
        if (runningPid is { } pid)
            lines = lines.Prepend(RunningMark + pid.ToString(System.Globalization.CultureInfo.InvariantCulture));
        var temp = path + ".tmp";
        File.WriteAllLines(temp, lines);
        File.Move(temp, path, overwrite: true);
    }

    /// <summary>
    /// Takes over what an earlier translator changed and saved; the file is removed. Returns
    /// whether there was one, and the pid of a translator that was still running when it saved it
    /// (it died), else null.
    /// </summary>
    public (bool Found, int? DiedPid) TakeOver(string path)
    {
        if (!File.Exists(path))
            return (false, null);
        int? died = null;
        foreach (var line in File.ReadAllLines(path))
        {
            if (line.StartsWith(RunningMark, StringComparison.Ordinal))
            {
                died = int.TryParse(line.AsSpan(RunningMark.Length), out var pid) ? pid : 0;
                continue;
            }
            var eq = line.IndexOf('=');
            if (eq > 0 && !Changed(line[..eq]))
                _changed.Add((line[..eq], line[(eq + 1)..]));
        }
        File.Delete(path);
        return (true, died);
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
