using System.Diagnostics;

namespace Glass.Interop;

/// <summary>
/// The one iptables rule the translator needs: queue inbound TCP to the router's port range. The
/// NFQUEUE target is reached through iptables (xt), the form this kernel supports.
/// </summary>
public sealed class NfQueueRule
{
    public NfQueueRule(ushort queue, ushort firstPort, ushort lastPort)
    {
        Queue = queue;
        FirstPort = firstPort;
        LastPort = lastPort;
    }

    public ushort Queue { get; }
    public ushort FirstPort { get; }
    public ushort LastPort { get; }

    /// <summary>The rule as iptables arguments after -A/-D/-C INPUT. No --queue-bypass: without a translator, SYNs are dropped, not reset.</summary>
    public string[] RuleArguments => new[]
    {
        "INPUT", "-p", "tcp", "--dport", $"{FirstPort}:{LastPort}",
        "-m", "comment", "--comment", $"glass-translator-{Queue}",
        "-j", "NFQUEUE", "--queue-num", Queue.ToString(),
    };

    public string Describe() => "iptables -A " + string.Join(' ', RuleArguments);

    public bool Exists() => Run("-C", throwOnError: false) == 0;

    public void Install()
    {
        if (!Exists())
            Run("-A", throwOnError: true);
    }

    public void Remove()
    {
        // Remove every copy, in case an earlier run was killed before cleaning up.
        for (var i = 0; i < 16 && Exists(); i++)
            Run("-D", throwOnError: true);
    }

    private int Run(string op, bool throwOnError)
    {
        var psi = new ProcessStartInfo("iptables")
        {
            RedirectStandardError = true,
            RedirectStandardOutput = true,
            UseShellExecute = false,
        };
        psi.ArgumentList.Add("-w");
        psi.ArgumentList.Add(op);
        foreach (var a in RuleArguments)
            psi.ArgumentList.Add(a);
        Process p;
        try
        {
            p = Process.Start(psi)!;
        }
        catch (System.ComponentModel.Win32Exception e)
        {
            throw new InvalidOperationException($"iptables could not be started ({e.Message}). Install it (apt-get install iptables) or pass -SkipFirewall and add the rule yourself: {Describe()}", e);
        }
        using (p)
        {
            var err = p.StandardError.ReadToEnd();
            p.StandardOutput.ReadToEnd();
            p.WaitForExit();
            if (p.ExitCode != 0 && throwOnError)
                throw new InvalidOperationException($"iptables {op} failed (exit {p.ExitCode}): {err.Trim()}");
            return p.ExitCode;
        }
    }
}
