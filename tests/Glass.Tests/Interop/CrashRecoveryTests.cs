using Glass.Interop;

namespace Glass.Tests.Interop;

/// <summary>What a translator leaves for the next one: its rules' shape and its saved settings.</summary>
public class CrashRecoveryTests
{
    [Fact]
    public void FailOpenQueuesWithBypassAndOnlyThen()
    {
        foreach (var offload in new[] { false, true })
        {
            var closed = new NfQueueRule(6, 61000, 61999, offload, 0x474c0006);
            var open = new NfQueueRule(6, 61000, 61999, offload, 0x474c0006, failOpen: true);
            var queued = open.Rules.Where(r => r.Rule.Contains("NFQUEUE")).ToList();
            Assert.NotEmpty(queued);
            Assert.All(queued, r => Assert.Equal("--queue-bypass", r.Rule[^1]));
            Assert.DoesNotContain(closed.Rules, r => r.Rule.Contains("--queue-bypass"));
            Assert.Equal(closed.Rules.Count, open.Rules.Count);
        }
    }

    [Fact]
    public void TheRoutersOwnPacketsToTheRangeAreUntrackedInBothRuleSetsAndRemovedWithThem()
    {
        foreach (var offload in new[] { false, true })
        {
            var rule = new NfQueueRule(6, 61000, 61999, offload, 0x474c0006);
            // Tracked, a local SYN's entry is confirmed before it loops back through lo: it would
            // miss the UNTRACKED queue rule (a reset) or clash with the translator's entries.
            var local = Assert.Single(rule.Rules, r => r.Rule.AsSpan().IndexOf(["-o", "lo"]) >= 0);
            Assert.Equal("raw", local.Table);
            Assert.Equal(["OUTPUT", "-o", "lo", "-p", "tcp", "--dport", "61000:61999"], local.Rule[..7]);
            Assert.Equal(["-j", "CT", "--notrack"], local.Rule[^3..]);
            // Same comment as the rest, so Install finds a dead translator's copy and Remove takes it.
            Assert.Contains("glass-translator-6", local.Rule);
            Assert.Contains("iptables -t raw -A OUTPUT -o lo -p tcp --dport 61000:61999", rule.Describe());
        }
    }

    [Fact]
    public void ASettingsFileSavedWhileRunningNamesTheTranslatorThatDied()
    {
        var path = Path.Combine(Path.GetTempPath(), $"glass-kept-{Guid.NewGuid():N}");
        try
        {
            // Values as an earlier translator would have written them; none of them is applied here.
            File.WriteAllLines(path, ["# running pid=4242", "net/ipv4/ip_forward=0", "net/netfilter/nf_conntrack_acct=0"]);
            var taken = new Sysctl();
            Assert.Equal((true, 4242), taken.TakeOver(path));
            Assert.True(taken.Changed(Sysctl.IpForward));
            Assert.True(taken.Changed(Sysctl.ConntrackAccounting));
            Assert.False(File.Exists(path));

            // Saved by a translator that kept its sessions on purpose: no pid, nobody died.
            File.WriteAllLines(path, ["net/ipv4/ip_forward=0"]);
            Assert.Equal((true, (int?)null), new Sysctl().TakeOver(path));
            Assert.Equal((false, (int?)null), new Sysctl().TakeOver(path)); // gone: nothing to take over
        }
        finally
        {
            File.Delete(path);
        }
    }

    [Fact]
    public void SaveWritesThePidOnlyWhileRunning()
    {
        var path = Path.Combine(Path.GetTempPath(), $"glass-kept-{Guid.NewGuid():N}");
        try
        {
            var s = new Sysctl();
            s.Save(path, runningPid: 77);
            Assert.Equal(["# running pid=77"], File.ReadAllLines(path));
            s.Save(path, runningPid: null);
            Assert.Empty(File.ReadAllLines(path));
        }
        finally
        {
            File.Delete(path);
        }
    }
}
