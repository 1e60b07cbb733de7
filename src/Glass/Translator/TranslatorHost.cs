using Glass.Interop;

namespace Glass.Translator;

/// <summary>What a translator is started with.</summary>
public sealed record TranslatorOptions
{
    public const string DefaultControlSocket = "/run/glass/translator.sock";

    public ushort Queue { get; init; } = 6;
    public PortRange PortRange { get; init; } = PortRange.Default;
    public string ControlSocket { get; init; } = DefaultControlSocket;
    /// <summary>Leave the iptables rule to the operator.</summary>
    public bool SkipFirewall { get; init; }
    public SpliceOptions Splice { get; init; } = new();
    /// <summary>Who carries established sessions: the kernel (conntrack NAT entries) or this process.</summary>
    public OffloadMode Offload { get; init; } = OffloadMode.Kernel;
    /// <summary>On stop, leave the offloaded sessions (and the rules they need) to the next translator, which adopts them.</summary>
    public bool KeepSessions { get; init; }
    /// <summary>
    /// Queue with --queue-bypass: while no translator listens (crashed, restarting), the router's
    /// own TCP stack answers the relay range with resets instead of the queue dropping it.
    /// </summary>
    public bool FailOpen { get; init; }
}

/// <summary>Where established sessions are relayed.</summary>
public enum OffloadMode
{
    /// <summary>Every segment goes through the translator's queue (the userspace path).</summary>
    None,
    /// <summary>After the handshake, a conntrack entry with SNAT and DNAT carries the flow in the kernel.</summary>
    Kernel,
}

/// <summary>
/// A running translator: the NFQUEUE rule, the queue and raw sockets, the packet loop on its own
/// thread, and the control socket. Stop (or Dispose) undoes all of it.
/// </summary>
public sealed class TranslatorHost : IDisposable
{
    private readonly TranslatorOptions _options;
    private NfQueueRule _rule;
    private ConntrackOffloader? _offloader;
    private readonly Sysctl _sysctl = new();
    private Thread? _kernelThread;
    private readonly List<string> _warnings = new();
    private readonly TaskCompletionSource _completion = new(TaskCreationOptions.RunContinuationsAsynchronously);
    private NfQueueSocket? _queue;
    private RawIpv4Socket? _raw;
    private TunDevice? _tun;
    private TunRules? _tunRules;
    private ControlServer? _control;
    private Thread? _thread;
    private volatile bool _stopping;
    private readonly object _stopGate = new();
    private bool _stopped;
    private bool _ruleInstalled;
    // The kept-settings file is this instance's: taken over from the one before, or written by it.
    // A start that fails before that (its queue or socket in use) must leave another's file alone.
    private bool _ownsKeptSettings;
    // An earlier translator on this queue left its rules, settings and sessions for this one.
    private bool _tookOver;

    public TranslatorHost(TranslatorOptions options)
    {
        _options = options;
        _rule = new NfQueueRule(options.Queue, options.PortRange.First, options.PortRange.Last, failOpen: options.FailOpen);
    }

    public TranslatorOptions Options => _options;
    /// <summary>What offload this translator really runs: Kernel may have fallen back to None.</summary>
    public OffloadMode Offload { get; private set; }
    /// <summary>What Start noticed that the operator should know (fallbacks, kernel limits, adoptions).</summary>
    public IReadOnlyList<string> Warnings => _warnings;
    /// <summary>Messages of the kernel-event thread's failures (it goes on after each).</summary>
    public string? LastKernelError { get; private set; }
    public SpliceEngine? Engine { get; private set; }
    /// <summary>Datagrams the kernel refused to take from the translator (raw socket or tun device).</summary>
    public long RawSendErrors => (_raw?.SendErrors ?? 0) + (_tun?.SendErrors ?? 0);
    /// <summary>How relayed packets go back to the kernel, and why not through the tun device if not.</summary>
    public string SendPath { get; private set; } = "";
    private long _internalErrors;
    /// <summary>Packets whose handling threw (a bug); each was dropped and the loop went on.</summary>
    public long InternalErrors => Interlocked.Read(ref _internalErrors);
    public Exception? LastInternalError { get; private set; }

    /// <summary>Completes when the packet loop ends: normally after Stop, faulted if the kernel failed it.</summary>
    public Task Completion => _completion.Task;

    public void Start()
    {
        try
        {
            var sender = OpenSender();
            var splice = _options.Splice.MaxSegmentSize == 0
                ? _options.Splice with { MaxSegmentSize = SmallestLinkMss() }
                : _options.Splice;
            Engine = new SpliceEngine(sender, SystemClock.Instance, splice);
            // Whole GSO packets only when they can go back whole.
            _queue = NfQueueSocket.Open(_options.Queue, gso: _tun is not null);
            _control = new ControlServer(Engine, _options.ControlSocket,
                new TranslatorSettings(_options.Queue, _options.PortRange.ToString(), splice.MaxSessions));
            // A translator that stopped with KeepSessions, or died, left what it changed for us to put back.
            var (kept, deadPid) = _options.SkipFirewall ? (false, null) : _sysctl.TakeOver(KeptSettingsPath);
            _ownsKeptSettings = !_options.SkipFirewall;
            _tookOver = kept;
            if (deadPid is not null)
                _warnings.Add($"The translator on queue {_options.Queue} (pid {deadPid}) did not stop cleanly: what it changed (rules, kernel settings, offloaded sessions) is this translator's now, and is put back when it stops.");
            Offload = _options.Offload == OffloadMode.Kernel && PrepareOffload(splice) ? OffloadMode.Kernel : OffloadMode.None;
            if (kept && Offload != OffloadMode.Kernel)
                ForgetKeptOffload();
            if (!_options.SkipFirewall)
            {
                // Rules a translator kept on purpose (KeepSessions) are expected; others were left by one that died.
                var left = _rule.Install(_tunRules?.Device);
                if (left > 0 && !(kept && deadPid is null))
                    _warnings.Add($"Found {left} rule(s) of an earlier translator on queue {_options.Queue} that did not stop cleanly; they are this translator's now and go when it stops.");
                _ruleInstalled = true;
                // Until a clean stop removes it, this file tells the next start what to take over.
                _sysctl.Save(KeptSettingsPath, Environment.ProcessId);
            }
            if (Offload == OffloadMode.Kernel)
            {
                // Before adopting: the engine re-arms the timeouts of the entries it takes over.
                Engine.Offloader = _offloader;
                Adopt();
                _kernelThread = new Thread(KernelLoop) { IsBackground = true, Name = $"glass-conntrack-{_options.Queue}" };
                _kernelThread.Start();
            }
            _control.Start();
            _thread = new Thread(Loop) { IsBackground = true, Name = $"glass-nfqueue-{_options.Queue}" };
            _thread.Start();
        }
        catch
        {
            try
            {
                Cleanup(failedStart: true);
            }
            catch (Exception e) when (e is not OutOfMemoryException)
            {
                // The start's own error is the one to show.
            }
            throw;
        }
    }

    /// <summary>
    /// Opens ctnetlink and sets what the kernel's NAT needs (accounting for the counters,
    /// forwarding); false, with a warning, when the kernel cannot offload.
    /// </summary>
    private bool PrepareOffload(SpliceOptions splice)
    {
        try
        {
            // Entries outlive a silent spell of the idle timeout, however long before it their
            // timeout was last re-armed; the translator ends idle ones itself.
            _offloader = ConntrackOffloader.Open(_options.Queue, splice.IdleTimeout + SpliceEngine.EntryRefreshInterval + TimeSpan.FromMinutes(1));
        }
        catch (KernelException e)
        {
            _warnings.Add($"Kernel offload is unavailable ({e.Message}); every segment is relayed by the translator (offload: none).");
            return false;
        }
        if (_options.SkipFirewall)
        {
            _warnings.Add("-SkipFirewall with offload: kernel: add the rules yourself: " + new NfQueueRule(_options.Queue, _options.PortRange.First, _options.PortRange.Last, offload: true, _offloader.Mark).Describe());
        }
        else
        {
            try
            {
                _sysctl.Set(Sysctl.ConntrackAccounting, "1");
                _sysctl.Set(Sysctl.IpForward, "1");
            }
            catch (Exception e) when (e is IOException or UnauthorizedAccessException)
            {
                // A read-only /proc/sys (a container): the kernel cannot carry the sessions.
                _sysctl.Restore();
                _offloader.Dispose();
                _offloader = null;
                _warnings.Add($"Kernel offload needs net.netfilter.nf_conntrack_acct and net.ipv4.ip_forward set to 1, and they could not be ({e.Message}); every segment is relayed by the translator (offload: none). Set them beforehand to offload.");
                return false;
            }
            var guard = _sysctl.Changed(Sysctl.IpForward);
            _rule = new NfQueueRule(_options.Queue, _options.PortRange.First, _options.PortRange.Last, offload: true, _offloader.Mark, guard, _options.FailOpen);
        }
        if (long.TryParse(Sysctl.Read(Sysctl.ConntrackMax), out var max) && max < splice.MaxSessions)
            _warnings.Add($"The kernel's conntrack table holds {max} entries (net.netfilter.nf_conntrack_max), fewer than limits.sessions ({splice.MaxSessions}): sessions past it stay in userspace. Raise it: sysctl -w net.netfilter.nf_conntrack_max={splice.MaxSessions * 2}.");
        return true;
    }

    /// <summary>
    /// An earlier translator on this queue offloaded (and kept its sessions, or died), but this one
    /// does not: its entries and the settings it turned on for them go now, not when this one
    /// stops (forwarding would stay on meanwhile, without its guard). Its rules go with Install.
    /// </summary>
    private void ForgetKeptOffload()
    {
        _sysctl.Restore();
        try
        {
            using var earlier = ConntrackOffloader.Open(_options.Queue, TimeSpan.FromMinutes(1));
            var errno = earlier.Flush();
            if (errno != 0)
                _warnings.Add($"Could not remove the conntrack entries an earlier translator on queue {_options.Queue} left: {Libc.StrError(errno)}.");
        }
        catch (KernelException)
        {
            // No ctnetlink here: no entries of an earlier translator either.
        }
    }

    /// <summary>Takes over the entries an earlier translator on this queue left (stopped with KeepSessions, or killed).</summary>
    private void Adopt()
    {
        int adopted = 0, refused = 0;
        var errno = _offloader!.Dump((in ConntrackEntry e) =>
        {
            if (Engine!.Adopt(new OffloadedFlow(e.Original, e.Reply), Counters(e)))
            {
                adopted++;
                // It may have closed while no translator listened to its events.
                if (StateOf(e.TcpState) is { } st and not KernelFlowState.Established)
                    Engine.OnKernelState(e.Original, st);
            }
            else
                refused++;
        });
        if (errno != 0)
            _warnings.Add($"Could not list the conntrack entries an earlier translator left: {Libc.StrError(errno)}.");
        else if (adopted > 0)
            _warnings.Add($"Adopted {adopted} offloaded session(s) an earlier translator on queue {_options.Queue} left running.");
        if (refused > 0)
            _warnings.Add($"{refused} offloaded session(s) an earlier translator left were not adopted (the session limit, limits.sessions, is reached, or their flows are taken): "
                + "the kernel carries them unwatched until their entries time out, and stopping this translator removes them.");
    }

    // Beside the control socket, whose directory is the translator's own.
    private string KeptSettingsPath => _options.ControlSocket + ".kept";

    private static KernelCounters Counters(in ConntrackEntry e) =>
        new(e.OriginalPackets, e.OriginalBytes, e.ReplyPackets, e.ReplyBytes);

    private static KernelFlowState? StateOf(byte tcpState) => tcpState switch
    {
        ConntrackMessages.TCP_CONNTRACK_ESTABLISHED => KernelFlowState.Established,
        ConntrackMessages.TCP_CONNTRACK_FIN_WAIT or ConntrackMessages.TCP_CONNTRACK_CLOSE_WAIT or ConntrackMessages.TCP_CONNTRACK_LAST_ACK => KernelFlowState.Closing,
        ConntrackMessages.TCP_CONNTRACK_TIME_WAIT => KernelFlowState.TimeWait,
        ConntrackMessages.TCP_CONNTRACK_CLOSE => KernelFlowState.Reset,
        _ => null,
    };

    /// <summary>How long the kernel events of a busy router gather before they are read as one batch.</summary>
    private static readonly TimeSpan EventBatchWindow = TimeSpan.FromMilliseconds(5);

    /// <summary>
    /// Follows the kernel's side of offloaded sessions: state changes and ends from conntrack
    /// events, counters (and ends whose events were lost) from a dump every two seconds.
    /// </summary>
    private void KernelLoop()
    {
        var buffer = new byte[256 * 1024];
        var dump = 0;
        var engine = Engine!;
        var nextDump = 0L;
        // Entries that began to close (or were reset) in this batch of events; their counters are read next.
        var changed = new HashSet<FlowTuple>();
        // The handlers are made once: the loop runs five times a second for the translator's life.
        var events = 0;
        EntryHandler updated = (in ConntrackEntry e) =>
        {
            events++;
            if (StateOf(e.TcpState) is { } st)
            {
                engine.OnKernelState(e.Original, st);
                // A close comes as two or three state events in one batch: one read serves them
                // all. The dump refreshes an established entry's counters.
                if (st != KernelFlowState.Established)
                    changed.Add(e.Original);
            }
        };
        EntryHandler created = (in ConntrackEntry e) =>
        {
            // Counted, so that a setup's announcement waits for the batch like its other events.
            events++;
            engine.OnKernelCreated(e.Original);
        };
        EntryHandler destroyed = (in ConntrackEntry e) =>
        {
            events++;
            engine.OnKernelDestroyed(e.Original, e.HasCounters ? Counters(e) : null);
        };
        EntryHandler counted = (in ConntrackEntry e) => engine.OnKernelCounters(e.Original, Counters(e));
        EntryHandler listed = (in ConntrackEntry e) =>
        {
            engine.OnKernelListed(e.Original, Counters(e), dump);
            // A state change whose event was lost (events are best effort).
            if (StateOf(e.TcpState) is { } st and not KernelFlowState.Established)
                engine.OnKernelState(e.Original, st);
        };
        while (!_stopping)
        {
            try
            {
                events = 0;
                _offloader!.ReadEvents(buffer, created, updated, destroyed);
                // Read a closing session's counters now, while the entry still shows them. One
                // lookup each: a dump per event would walk the whole table for every FIN.
                foreach (var t in changed)
                    _offloader.Read(t, counted);
                changed.Clear();
                // A connection's end comes as several events a few microseconds apart; waking for
                // each cost more of a setup's router CPU than handling them. Nothing here is urgent.
                if (events > 0)
                    Thread.Sleep(EventBatchWindow);
                var now = Environment.TickCount64;
                if (now < nextDump)
                    continue;
                nextDump = now + 2000;
                dump = dump == int.MaxValue ? 1 : dump + 1;
                var started = SystemClock.Instance.NowMilliseconds;
                var errno = _offloader.Dump(listed);
                if (errno == 0)
                    engine.ForgetOffloadedNotListed(dump, started);
            }
            catch (Exception e) when (e is not OutOfMemoryException)
            {
                // One bad read must not stop the bookkeeping: note it and go on.
                LastKernelError = e.Message;
                Thread.Sleep(100);
            }
        }
    }

    /// <summary>
    /// The tun device when the kernel lets us forward through it (GSO packets stay whole, one
    /// write each), else the raw socket (every packet MTU-sized, one sendto each, batched).
    /// </summary>
    private IPacketSender OpenSender()
    {
        var name = $"glass{_options.Queue}";
        try
        {
            _tun = TunDevice.Open(name);
            if (!_options.SkipFirewall)
            {
                _tunRules = new TunRules(name, _options.Queue);
                _tunRules.Install();
            }
            SendPath = $"tun {name}: whole GSO packets, partial checksums";
            return _tun;
        }
        catch (Exception e) when (e is KernelException or InvalidOperationException or System.ComponentModel.Win32Exception)
        {
            _tunRules?.Remove();
            _tunRules = null;
            _tun?.Dispose();
            _tun = null;
            _raw = RawIpv4Socket.Open();
            SendPath = $"raw socket, packets segmented in the queue (no tun device: {e.Message})";
            return _raw;
        }
    }

    /// <summary>
    /// The MSS that fits every interface of this router that is up (MTU minus 40 bytes of IPv4
    /// and TCP headers), from /sys/class/net; 0 when none can be read.
    /// </summary>
    internal static ushort SmallestLinkMss(string sysClassNet = "/sys/class/net")
    {
        var smallest = int.MaxValue;
        try
        {
            foreach (var dir in Directory.EnumerateDirectories(sysClassNet))
            {
                if (Path.GetFileName(dir) == "lo")
                    continue;
                var state = Path.Combine(dir, "operstate");
                var mtu = Path.Combine(dir, "mtu");
                if (File.Exists(state) && File.ReadAllText(state).Trim() is "up" or "unknown"
                    && File.Exists(mtu) && int.TryParse(File.ReadAllText(mtu).Trim(), out var m) && m >= 576)
                    smallest = Math.Min(smallest, m);
            }
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
        }
        return smallest == int.MaxValue ? (ushort)0 : (ushort)Math.Min(ushort.MaxValue, smallest - 40);
    }

    // The loopback device's ifindex: what the router's own processes send comes in there.
    private readonly uint _loopback = LoopbackIndex();

    /// <summary>lo's ifindex from /sys/class/net (1, LOOPBACK_IFINDEX, in every namespace of a modern kernel).</summary>
    private static uint LoopbackIndex()
    {
        try
        {
            return uint.TryParse(File.ReadAllText("/sys/class/net/lo/ifindex").Trim(), out var i) ? i : 1;
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            return 1;
        }
    }

    // Queued packets taken per recvmmsg; every slot holds the largest message (a 64 KiB datagram).
    private const int ReceiveSlots = 32;

    private void Loop()
    {
        var batch = new ReceiveBatch(ReceiveSlots, NfQueueSocket.ReceiveBufferSize);
        _raw?.BatchOnThisThread();
        var nextSweep = Environment.TickCount64 + 1000;
        try
        {
            while (!_stopping)
            {
                var n = _queue!.Receive(batch);
                if (n > 0)
                {
                    uint lastId = 0;
                    var any = false;
                    for (var i = 0; i < n; i++)
                        any |= HandleDatagram(batch[i], ref lastId);
                    // What we relayed goes out (the raw socket's in one sendmmsg); every queued
                    // packet not accepted already is dropped, in one verdict (or by the next one,
                    // which covers every id below its own, if this one failed).
                    try
                    {
                        _raw?.Flush();
                        if (any)
                            _queue.DropUpTo(lastId);
                    }
                    catch (Exception e) when (e is not OutOfMemoryException)
                    {
                        CountInternalError(e);
                    }
                }
                var now = Environment.TickCount64;
                if (now >= nextSweep)
                {
                    nextSweep = now + 1000;
                    try
                    {
                        Engine!.Sweep();
                    }
                    catch (Exception e) when (e is not OutOfMemoryException)
                    {
                        // A kernel error the sweep met on netlink (ending an entry, say): counted, and the loop goes on.
                        CountInternalError(e);
                    }
                }
            }
            _completion.TrySetResult();
        }
        catch (Exception e)
        {
            _completion.TrySetException(e);
        }
    }

    private void CountInternalError(Exception e)
    {
        Interlocked.Increment(ref _internalErrors);
        LastInternalError = e;
    }

    private bool HandleDatagram(Span<byte> datagram, ref uint lastId)
    {
        var any = false;
        var offset = 0;
        while (NfQueueMessages.TryReadMessage(datagram.Slice(offset), out _, out var message, out var consumed))
        {
            if (NfQueueMessages.TryReadPacket(message, out QueuedPacket p))
            {
                var info = new QueuedPacketInfo { ChecksumPartial = p.ChecksumPartial, Gso = p.Gso, Truncated = p.Truncated, Local = p.InDevice == _loopback };
                var result = DropReason.None;
                try
                {
                    result = Engine!.Process(datagram.Slice(offset + p.PayloadOffset, p.PayloadLength), info);
                    // Not the splice's (an ICMP error about the router's own connections): the kernel
                    // takes it back, by a verdict of its own that takes it out of the queue.
                    if (result == DropReason.LeftToKernel)
                        _queue!.Verdict(p.Id, NfQueueMessages.NF_ACCEPT);
                }
                catch (Exception e) when (e is not OutOfMemoryException)
                {
                    // A bug must cost one packet, never the router: count it and go on.
                    CountInternalError(e);
                    result = DropReason.None;
                }
                // The batch's drop verdict covers ids up to the last packet left in the queue.
                if (result != DropReason.LeftToKernel)
                {
                    lastId = p.Id;
                    any = true;
                }
            }
            offset += consumed;
        }
        return any;
    }

    /// <summary>Stops the loop and undoes everything Start did. Safe to call from several threads (signals, exit).</summary>
    public void Stop()
    {
        // A second caller waits for the first to finish, so the process cannot exit mid-cleanup.
        lock (_stopGate)
        {
            if (_stopped)
                return;
            _stopping = true;
            _thread?.Join(TimeSpan.FromSeconds(5));
            _kernelThread?.Join(TimeSpan.FromSeconds(5));
            Cleanup();
            _stopped = true;
            _completion.TrySetResult();
        }
    }

    private void Cleanup(bool failedStart = false)
    {
        // Kept sessions need their rules (conntrack and NAT hooks) and settings until a new
        // translator adopts them. A start that failed leaves what it took over for the next one.
        var keep = failedStart ? _tookOver : _options.KeepSessions && Offload == OffloadMode.Kernel;
        // Every step is tried, whatever failed before it (iptables refusing a delete must not
        // leave the queue bound or the settings changed); the first failure is thrown at the end.
        List<Exception>? failures = null;
        void Step(Action step)
        {
            try
            {
                step();
            }
            catch (Exception e) when (e is not OutOfMemoryException)
            {
                (failures ??= new()).Add(e);
            }
        }
        var rulesRemoved = false;
        if (_ruleInstalled && !keep)
        {
            // Rules first: a packet of a flushed session then meets the router's TCP stack and is
            // answered with a reset, rather than queued to nobody.
            Step(() =>
            {
                _rule.Remove();
                _ruleInstalled = false;
                rulesRemoved = true;
            });
        }
        if (_offloader is not null && !keep)
            Step(() => _offloader.Flush());
        if (rulesRemoved && Engine is not null)
        {
            // A peer with nothing to send would never meet that reset: make each one speak.
            Step(() =>
            {
                Engine.TellPeersStopped();
                _raw?.Flush();
            });
        }
        if (!keep)
        {
            Step(_sysctl.Restore);
            if (_ownsKeptSettings)
                DeleteQuietly(KeptSettingsPath);
        }
        else if (_ownsKeptSettings)
        {
            // Kept for the next translator, even from a start that failed after taking them over.
            Step(() => _sysctl.Save(KeptSettingsPath, runningPid: null));
        }
        Step(() => _offloader?.Dispose());
        Step(() => _control?.Dispose());
        Step(() => _queue?.Dispose());
        Step(() => _raw?.Dispose());
        Step(() =>
        {
            _tunRules?.Remove();
            _tunRules = null;
        });
        Step(() => _tun?.Dispose());
        if (failures is not null)
            throw failures.Count == 1 ? failures[0] : new AggregateException("Stopping the translator failed in several steps.", failures);
    }

    public void Dispose() => Stop();

    private static void DeleteQuietly(string path)
    {
        try
        {
            File.Delete(path);
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
        }
    }
}
