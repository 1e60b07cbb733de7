using System.Diagnostics;

namespace Glass.Interop;

/// <summary>
/// The iptables rules the translator needs: queue inbound TCP to the router's port range (and,
/// with offload, let the kernel's NAT carry established sessions). The NFQUEUE target is reached
/// through iptables (xt), the form this kernel supports.
/// </summary>
public sealed class NfQueueRule
{
    public NfQueueRule(ushort queue, ushort firstPort, ushort lastPort, bool offload = false, uint mark = 0, bool guardForwarding = false, bool failOpen = false)
    {
        FailOpen = failOpen;
        Queue = queue;
        FirstPort = firstPort;
        LastPort = lastPort;
        Offload = offload;
        Mark = mark;
        GuardForwarding = guardForwarding;
    }

    public ushort Queue { get; }
    public ushort FirstPort { get; }
    public ushort LastPort { get; }
    public bool Offload { get; }
    /// <summary>The conntrack mark of the translator's offloaded entries.</summary>
    public uint Mark { get; }
    /// <summary>Forwarding was off before offload turned it on: forward nothing but our entries' flows.</summary>
    public bool GuardForwarding { get; }
    /// <summary>--queue-bypass: with no translator bound to the queue, packets go on to the router's stack (which resets them).</summary>
    public bool FailOpen { get; }

    /// <summary>
    /// The rules, each as its table and the iptables arguments after -A/-D/-C. Without offload:
    /// <list type="bullet">
    /// <item>raw PREROUTING/OUTPUT: the relayed flows are not tracked (no conntrack entry per
    /// flow, no table to fill), yet referring to conntrack turns on the kernel's IPv4
    /// defragmentation in this namespace, so fragments reach the queue reassembled;</item>
    /// <item>raw OUTPUT -o lo: what the router's own processes send to the range (peers on this
    /// host, over 127.0.0.1 or the router's address) is not tracked either. Conntrack would
    /// otherwise confirm an entry for it in POSTROUTING, before it loops back through lo to INPUT,
    /// so it would arrive tracked, miss the UNTRACKED queue rule and meet the router's stack (a
    /// reset); with offload the entry would clash with the translator's. The rule is in both sets;</item>
    /// <item>filter INPUT: queue the port range, and "fragmentation needed" errors so path MTU
    /// discovery crosses the splice (the translator accepts errors about other flows, so the
    /// router's own connections get theirs). Without FailOpen (--queue-bypass), while no
    /// translator listens SYNs are dropped, so connects wait out a restart (and so are those
    /// errors); with it, the router's stack resets them and every live flow.</item>
    /// </list>
    /// With offload, inbound flows are tracked, so the translator's conntrack entries catch their
    /// packets before the queue; what matches no entry reaches INPUT and the queue with an
    /// unconfirmed entry that dies with the dropped packet, so unknown packets leave no state.
    /// <list type="bullet">
    /// <item>raw OUTPUT: the router's own segments from the range (crafted SYN-ACKs, relays before
    /// the hand-off) stay untracked, or their entries would clash with the translator's;</item>
    /// <item>nat PREROUTING/POSTROUTING: empty of effect, but without them the kernel's NAT hooks
    /// are not registered and entries are created that never rewrite;</item>
    /// <item>filter OUTPUT: no ICMP redirects, which would name one peer's address to the other
    /// when the router forwards a flow back out of the interface it came in on;</item>
    /// <item>filter FORWARD (only when forwarding had been off): forward nothing but Glass's flows.</item>
    /// </list>
    /// </summary>
    public IReadOnlyList<(string Table, string[] Rule)> Rules
    {
        get
        {
            var ports = $"{FirstPort}:{LastPort}";
            var comment = new[] { "-m", "comment", "--comment", $"glass-translator-{Queue}" };
            string[] queue = FailOpen
                ? ["-j", "NFQUEUE", "--queue-num", Queue.ToString(), "--queue-bypass"]
                : ["-j", "NFQUEUE", "--queue-num", Queue.ToString()];
            (string, string[]) local = ("raw", ["OUTPUT", "-o", "lo", "-p", "tcp", "--dport", ports, .. comment, "-j", "CT", "--notrack"]);
            if (!Offload)
            {
                return new (string, string[])[]
                {
                    ("raw", ["PREROUTING", "-p", "tcp", "--dport", ports, .. comment, "-j", "CT", "--notrack"]),
                    ("raw", ["OUTPUT", "-p", "tcp", "--sport", ports, .. comment, "-j", "CT", "--notrack"]),
                    local,
                    ("filter", ["INPUT", "-p", "tcp", "--dport", ports, "-m", "conntrack", "--ctstate", "UNTRACKED", .. comment, .. queue]),
                    ("filter", ["INPUT", "-p", "icmp", "--icmp-type", "fragmentation-needed", .. comment, .. queue]),
                };
            }
            // Any Glass translator's entries (the queue is the mark's low half): another one's
            // offloaded flows in this namespace must pass this guard too.
            var marks = $"0x{Mark & 0xFFFF0000:x}/0xffff0000";
            var rules = new List<(string, string[])>
            {
                ("raw", ["OUTPUT", "-p", "tcp", "--sport", ports, .. comment, "-j", "CT", "--notrack"]),
                local,
                ("nat", ["PREROUTING", "-p", "tcp", "--dport", ports, .. comment, "-j", "ACCEPT"]),
                ("nat", ["POSTROUTING", "-p", "tcp", "--sport", ports, .. comment, "-j", "ACCEPT"]),
                ("filter", ["INPUT", "-p", "tcp", "--dport", ports, .. comment, .. queue]),
                ("filter", ["INPUT", "-p", "icmp", "--icmp-type", "fragmentation-needed", "-m", "conntrack", "--ctstate", "INVALID,UNTRACKED", .. comment, .. queue]),
                ("filter", ["OUTPUT", "-p", "icmp", "--icmp-type", "redirect", .. comment, "-j", "DROP"]),
            };
            if (GuardForwarding)
                rules.Add(("filter", ["FORWARD", "-m", "connmark", "!", "--mark", marks, .. comment, "-j", "DROP"]));
            return rules;
        }
    }

    public string Describe() => string.Join("; ", Rules.Select(r => $"iptables -t {r.Table} -A " + string.Join(' ', r.Rule)));

    /// <summary>
    /// Adds the rules that are not in place; returns how many already were (left by a translator
    /// that did not stop). One that fails takes back those appended before it.
    /// </summary>
    /// <param name="ownDevice">This translator's tun device, whose rules (same comment, see TunRules) are not strays.</param>
    public int Install(string? ownDevice = null)
    {
        try
        {
            return Append(ownDevice);
        }
        catch
        {
            try
            {
                Remove(); // checks each rule first, so half an install is fine
            }
            catch (InvalidOperationException)
            {
                // iptables itself is missing or broken: the install's error says so.
            }
            throw;
        }
    }

    private int Append(string? ownDevice)
    {
        var present = 0;
        foreach (var (table, rule) in Rules)
        {
            if (Run(table, "-C", rule, throwOnError: false) == 0)
                present++;
            else
                Run(table, "-A", rule, throwOnError: true);
        }
        // Rules of this queue that are not ours (an earlier translator with another range or
        // -FailOpen that died): removed, all of this queue's with them, and ours put back once.
        var listed = Listed(ownDevice);
        if (listed.Count > Rules.Count)
        {
            foreach (var (table, line) in listed)
                Run(table, "-D", line, throwOnError: false);
            foreach (var (table, rule) in Rules)
                Run(table, "-A", rule, throwOnError: true);
        }
        return present;
    }

    /// <summary>Every rule carrying this queue's comment, as its table and its iptables -S arguments after -A.</summary>
    private List<(string Table, string[] Rule)> Listed(string? ownDevice)
    {
        var comment = $"glass-translator-{Queue}";
        var found = new List<(string, string[])>();
        // Every table any rule set uses: an earlier translator may have had the other set (offload).
        foreach (var table in (ReadOnlySpan<string>)["raw", "nat", "filter"])
        {
            foreach (var line in Output(table, "-S").Split('\n'))
            {
                var words = line.Split(' ', StringSplitOptions.RemoveEmptyEntries);
                var own = ownDevice is not null && words.AsSpan().IndexOf(["-i", ownDevice]) >= 0;
                if (words.Length > 2 && words[0] == "-A" && words.Contains(comment) && !own)
                    found.Add((table, words[1..]));
            }
        }
        return found;
    }

    public void Remove()
    {
        // Remove every copy, in case an earlier run was killed before cleaning up.
        foreach (var (table, rule) in Rules)
        {
            for (var i = 0; i < 16 && Run(table, "-C", rule, throwOnError: false) == 0; i++)
                Run(table, "-D", rule, throwOnError: true);
        }
    }

    private int Run(string table, string op, string[] rule, bool throwOnError) =>
        Exec(table, op, rule, throwOnError).ExitCode;

    private string Output(string table, string op) => Exec(table, op, [], throwOnError: true).Stdout;

    private (int ExitCode, string Stdout) Exec(string table, string op, string[] rule, bool throwOnError)
    {
        var psi = new ProcessStartInfo("iptables")
        {
            RedirectStandardError = true,
            RedirectStandardOutput = true,
            UseShellExecute = false,
        };
        psi.ArgumentList.Add("-w");
        psi.ArgumentList.Add("-t");
        psi.ArgumentList.Add(table);
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
            // Both pipes at once: a long listing must not block on a full stderr pipe, or the reverse.
            var err = p.StandardError.ReadToEndAsync();
            var output = p.StandardOutput.ReadToEnd();
            p.WaitForExit();
            if (p.ExitCode != 0 && throwOnError)
                throw new InvalidOperationException($"iptables {op} failed (exit {p.ExitCode}): {err.Result.Trim()}");
            return (p.ExitCode, output);
        }
    }
}
