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

    /// <summary>
    /// The rules as iptables arguments after -A/-D/-C: the port range, and "fragmentation needed"
    /// errors so path MTU discovery crosses the splice (errors about other flows are dropped).
    /// No --queue-bypass: without a translator, SYNs are dropped, not reset.
    /// </summary>
    public IReadOnlyList<string[]> Rules => new[]
    {
        new[]
        {
            "INPUT", "-p", "tcp", "--dport", $"{FirstPort}:{LastPort}",
            "-m", "comment", "--comment", $"glass-translator-{Queue}",
            "-j", "NFQUEUE", "--queue-num", Queue.ToString(),
        },
        new[]
        {
            "INPUT", "-p", "icmp", "--icmp-type", "fragmentation-needed",
            "-m", "comment", "--comment", $"glass-translator-{Queue}",
            "-j", "NFQUEUE", "--queue-num", Queue.ToString(),
        },
    };

    public string Describe() => string.Join("; ", Rules.Select(r => "iptables -A " + string.Join(' ', r)));

    public void Install()
    {
        foreach (var rule in Rules)
        {
            if (Run("-C", rule, throwOnError: false) != 0)
                Run("-A", rule, throwOnError: true);
        }
    }

    public void Remove()
    {
        // Remove every copy, in case an earlier run was killed before cleaning up.
        foreach (var rule in Rules)
        {
            for (var i = 0; i < 16 && Run("-C", rule, throwOnError: false) == 0; i++)
                Run("-D", rule, throwOnError: true);
        }
    }

    private int Run(string op, string[] rule, bool throwOnError)
    {
        var psi = new ProcessStartInfo("iptables")
        {
            RedirectStandardError = true,
            RedirectStandardOutput = true,
            UseShellExecute = false,
        };
        psi.ArgumentList.Add("-w");
        psi.ArgumentList.Add(op);
        foreach (var a in rule)
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
