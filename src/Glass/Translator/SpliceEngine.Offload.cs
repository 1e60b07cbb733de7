namespace Glass.Translator;

/// <summary>
/// Offload: once both peers acknowledged their crafted SYN-ACKs, the splice is a plain full NAT
/// (sequence numbers need no change), so the kernel can carry it as a conntrack entry. The session
/// stays here, keyed as before, so counters, idle expiry, the session limit and the controller's
/// bookkeeping keep working; the kernel reports its end and its counters back.
/// </summary>
/// <remarks>
/// <para>The entry starts with liberal window tracking (it picks the flow up mid-stream), under
/// which the kernel believes any FIN and any reset past the highest acknowledgment, so a blind
/// stranger could end an offloaded session. Once the entry has counted segments both ways, it has
/// learnt both windows (with the scales it was given), and the engine turns liberal tracking off:
/// the kernel then refuses segments outside the windows, which miss the entry's NAT and come to
/// the queue, where the engine judges them. Adopted entries are tightened the same way: their
/// scales are in the entry since it was made.</para>
/// <para>A reset inside the window is still one the kernel takes, and it answers a reset it does
/// not take as exact by cutting the entry's timeout to 10 s: a session then silent for 10 s (an
/// idle ssh) lost its entry, and with it the session. So the entry's timeout is fixed
/// (IPS_FIXED_TIMEOUT): no packet changes it, the engine re-arms it every
/// <see cref="EntryRefreshInterval"/> while traffic crosses, and the engine alone ends an entry
/// (idle, its own TIME_WAIT, which traffic restarts, an exact reset). An entry that has seen
/// nothing from one side cannot judge a reset at all: one it took is checked with the peers
/// first (SpliceEngine.ResetCheck.cs).</para>
/// </remarks>
public sealed partial class SpliceEngine
{
    private IFlowOffloader? _offloader;
    private long _offloadedTotal, _offloadFailures, _adopted, _tightened, _tightenFailures, _keptLocal, _refreshFailures, _staleKernelEvents;

    // Segments the entry must have counted in each direction before its tracking turns strict.
    private const ulong TightenAfterPackets = 2;
    private int _offloadedNow;

    /// <summary>
    /// How often an offloaded entry that carries traffic has its fixed timeout re-armed; entries
    /// must be made with a timeout longer than the idle timeout by more than this.
    /// </summary>
    public static readonly TimeSpan EntryRefreshInterval = TimeSpan.FromMinutes(4);

    /// <summary>Where established sessions are handed to the kernel; null keeps every segment here.</summary>
    public IFlowOffloader? Offloader
    {
        get => _offloader;
        set
        {
            lock (_gate)
                _offloader = value;
        }
    }

    private void MaybeOffload(Session s)
    {
        if (_offloader is null || s.Offloaded || s.OffloadFailed || s.State != SessionState.Established || !s.A.Proven || !s.B.Proven)
            return;
        if (s.A.Local || s.B.Local)
        {
            // The router's own segments to the relay range are untracked (raw OUTPUT, NfQueueRule),
            // so no entry would ever see them; and the kernel's NAT does not deliver to 127.0.0.0/8
            // what comes in from outside. Such a session is relayed here to its end.
            if (!s.KeptLocal)
            {
                s.KeptLocal = true;
                _keptLocal++;
            }
            return;
        }
        var errno = _offloader.Offload(FlowOf(s));
        if (errno == 0)
        {
            s.Offloaded = true;
            s.EntryConfirmed = false;
            s.OffloadedAt = s.EntryRefreshedAt = _clock.NowMilliseconds;
            _offloadedTotal++;
            _offloadedNow++;
            return;
        }
        // The session goes on in userspace; the counters say why it was not offloaded.
        s.OffloadFailed = true;
        _offloadFailures++;
        LastOffloadErrno = errno;
    }

    /// <summary>The errno of the last failed offload (ENOMEM or ENOSPC: the conntrack table is full).</summary>
    public int LastOffloadErrno { get; private set; }

    private static OffloadedFlow FlowOf(Session s)
    {
        var scaled = s.A.Syn.Options.WindowScale >= 0 && s.B.Syn.Options.WindowScale >= 0;
        return new(
            new FlowTuple(s.A.Peer, s.A.PeerPort, s.A.Router, s.A.RouterPort),
            new FlowTuple(s.B.Peer, s.B.PeerPort, s.B.Router, s.B.RouterPort),
            scaled ? s.A.Syn.Options.WindowScale : (sbyte)-1,
            scaled ? s.B.Syn.Options.WindowScale : (sbyte)-1,
            s.A.Syn.Options.SackPermitted && s.B.Syn.Options.SackPermitted);
    }

    private bool TryFindOffloaded(in FlowTuple original, out Session s) => TryFindByEntry(original, out s) && s.Offloaded;

    /// <summary>
    /// An offloaded session whose entry the kernel has announced. Events come in the order the
    /// kernel made them, and an entry is made only once the last one on its flows is gone: until
    /// the new entry's announcement, a state change or destroy on these flows was the old entry's
    /// (a TIME_WAIT entry a reopening SYN ended, one replaced after EEXIST, or one a reset check
    /// removed), and must not end the session that replaced it.
    /// </summary>
    private bool TryFindCurrent(in FlowTuple original, out Session s)
    {
        if (!TryFindOffloaded(original, out s))
            return false;
        if (s.EntryConfirmed)
            return true;
        _staleKernelEvents++;
        return false;
    }

    /// <summary>The kernel announced a new entry (our own, made by <see cref="IFlowOffloader.Offload"/>).</summary>
    public void OnKernelCreated(in FlowTuple original)
    {
        lock (_gate)
        {
            if (TryFindOffloaded(original, out var s))
                s.EntryConfirmed = true;
        }
    }

    /// <summary>The session whose side A is <paramref name="original"/>'s source: an entry's original direction.</summary>
    private bool TryFindByEntry(in FlowTuple original, out Session s) =>
        _byFlow.TryGetValue(new FlowKey(original.Source, original.SourcePort, original.DestinationPort), out s!)
        && s.A.Peer == original.Source && s.A.PeerPort == original.SourcePort;

    /// <summary>The kernel moved an offloaded connection to another TCP state.</summary>
    public void OnKernelState(in FlowTuple original, KernelFlowState state)
    {
        lock (_gate)
        {
            if (!TryFindCurrent(original, out var s))
                return;
            var now = _clock.NowMilliseconds;
            // The dump repeats an entry's state every 2 s: only a change (a case below) is
            // activity, or a half-closed session would never fall idle.
            switch (state)
            {
                case KernelFlowState.Reset when s.State == SessionState.Closing:
                    // Once a FIN crossed, conntrack takes any reset with the flow's addresses and
                    // ports (tcp_can_early_drop skips its sequence check), so this one may be a
                    // stranger's. The entry, now CLOSE, still carries the flow: keep it, and end
                    // the session once the flow has been silent for conntrack's own CLOSE timeout,
                    // as the kernel would. A real reset has reached both peers already.
                    if (s.ResetDeadline == 0)
                    {
                        s.LastActivity = now;
                        s.ResetDeadline = now + ResetConfirmMilliseconds;
                        s.ResetDisprovedBy = 0;
                        Count(IgnoredReason.HalfClosedReset);
                    }
                    break;
                case KernelFlowState.Reset when EntryMissesASide(s):
                    // The entry had no number from one side to judge the reset by: ask the peers.
                    StartResetCheck(s, now);
                    break;
                case KernelFlowState.Reset:
                    // An established entry that has seen both sides takes only a reset at the exact
                    // number, which has crossed already (the event follows the packet): end it here and there.
                    Release(s, "reset");
                    break;
                case KernelFlowState.TimeWait when s.State != SessionState.TimeWait:
                    s.LastActivity = now;
                    EnterTimeWait(s, now);
                    break;
                case KernelFlowState.Closing when s.State == SessionState.Established:
                    s.LastActivity = now;
                    s.State = SessionState.Closing;
                    break;
            }
        }
    }

    /// <summary>
    /// New counters of an offloaded session's entry; any change counts as activity, restarts a
    /// TIME_WAIT (forged FINs must not end a flow that still carries data, as in
    /// <see cref="Relay"/>) and, now and then, re-arms the entry's timeout.
    /// </summary>
    public void OnKernelCounters(in FlowTuple original, in KernelCounters counters) => OnKernelCounters(original, counters, 0);

    /// <summary>
    /// An entry a full dump listed: its counters, and a mark that it was in dump
    /// <paramref name="dump"/> (see <see cref="ForgetOffloadedNotListed"/>).
    /// </summary>
    public void OnKernelListed(in FlowTuple original, in KernelCounters counters, int dump) => OnKernelCounters(original, counters, dump);

    private void OnKernelCounters(in FlowTuple original, in KernelCounters counters, int dump)
    {
        lock (_gate)
        {
            if (!TryFindOffloaded(original, out var s))
                return;
            if (dump != 0)
                s.ListedInDump = dump;
            var now = _clock.NowMilliseconds;
            if (counters != s.Kernel)
            {
                s.LastActivity = now;
                if (s.State == SessionState.TimeWait)
                    s.TimeWaitSince = now;
                // After a reset the kernel took unchecked, its entry reports no further state: the
                // session ends once its traffic has stopped that long.
                if (s.ResetDeadline != 0)
                    s.ResetDeadline = now + ResetConfirmMilliseconds;
                if (now - s.EntryRefreshedAt >= Ms(EntryRefreshInterval))
                    RefreshEntry(s, original, now);
            }
            s.Kernel = counters;
            if (!s.Tightened && counters.PacketsA >= TightenAfterPackets && counters.PacketsB >= TightenAfterPackets)
            {
                // Once, whatever the answer: an entry that refuses stays liberal, as before.
                s.Tightened = true;
                var errno = _offloader?.Tighten(original) ?? 0;
                if (errno == 0)
                    _tightened++;
                else
                {
                    _tightenFailures++;
                    LastTightenErrno = errno;
                }
            }
        }
    }

    private void RefreshEntry(Session s, in FlowTuple original, long now)
    {
        s.EntryRefreshedAt = now;
        var errno = _offloader?.Refresh(original) ?? 0;
        if (errno != 0)
        {
            // Tried again at the next interval; meanwhile the entry keeps the timeout it had.
            _refreshFailures++;
            LastRefreshErrno = errno;
        }
    }

    /// <summary>The errno of the last refused <see cref="IFlowOffloader.Refresh"/>, 0 when none was refused.</summary>
    public int LastRefreshErrno { get; private set; }

    /// <summary>The errno of the last refused <see cref="IFlowOffloader.Tighten"/>, 0 when none was refused.</summary>
    public int LastTightenErrno { get; private set; }

    /// <summary>The kernel destroyed an offloaded session's entry (its own timeout, or someone flushed it).</summary>
    public void OnKernelDestroyed(in FlowTuple original, in KernelCounters? last)
    {
        lock (_gate)
        {
            if (!TryFindOffloaded(original, out var s))
            {
                OnResetCheckEntryGone(original);
                return;
            }
            if (!TryFindCurrent(original, out s))
                return;
            if (last is { } c)
                s.Kernel = c;
            s.Offloaded = false; // nothing left to remove
            _offloadedNow--;
            // Closing ends as closed; an established entry ran out its fixed timeout ("expired"):
            // its refreshes failed, or someone deleted it (conntrack -D).
            Release(s, s.State is SessionState.TimeWait or SessionState.Closing ? "closed" : "expired");
        }
    }

    /// <summary>
    /// Ends the offloaded sessions that full dump <paramref name="dump"/> (numbered from 1, each
    /// entry reported through <see cref="OnKernelListed"/>) did not list: their destroy events
    /// were lost. Returns how many. A mark on the session, not a set of the listed flows: that set
    /// would keep ~50 bytes per session of the largest table ever dumped.
    /// </summary>
    public int ForgetOffloadedNotListed(int dump, long dumpStartedAt)
    {
        lock (_gate)
        {
            foreach (var s in _sessions)
            {
                // A session offloaded after the dump began may be missing from it.
                if (!s.Offloaded || s.OffloadedAt >= dumpStartedAt)
                    continue;
                if (s.ListedInDump != dump)
                    _expired.Add((s, "evicted"));
                else
                    s.EntryConfirmed = true; // what the dump listed is the entry now (its announcement may have been lost)
            }
            foreach (var (s, reason) in _expired)
            {
                s.Offloaded = false;
                _offloadedNow--;
                Release(s, reason);
            }
            var n = _expired.Count;
            _expired.Clear();
            return n;
        }
    }

    /// <summary>
    /// Takes over an entry an earlier translator made (found by its mark after a restart): the
    /// session is established and carried by the kernel. False when it is known already or the
    /// session limit is reached.
    /// </summary>
    public bool Adopt(in OffloadedFlow flow, in KernelCounters counters)
    {
        lock (_gate)
        {
            var ka = new FlowKey(flow.Original.Source, flow.Original.SourcePort, flow.Original.DestinationPort);
            var kb = new FlowKey(flow.Reply.Source, flow.Reply.SourcePort, flow.Reply.DestinationPort);
            if (_byFlow.ContainsKey(ka) || _byFlow.ContainsKey(kb) || _sessions.Count >= _options.MaxSessions)
                return false;
            var now = _clock.NowMilliseconds;
            var s = new Session(++_nextId, flow.Original.Source, flow.Original.DestinationPort, flow.Reply.Source, flow.Reply.DestinationPort, now)
            {
                State = SessionState.Established,
                Offloaded = true,
                OffloadedAt = now,
                Adopted = true,
                EntryConfirmed = true,
                Kernel = counters,
            };
            s.A.HasSyn = s.B.HasSyn = true;
            s.A.Proven = s.B.Proven = true;
            s.A.Syn.PeerPort = flow.Original.SourcePort;
            s.A.Syn.Router = flow.Original.Destination;
            s.B.Syn.PeerPort = flow.Reply.SourcePort;
            s.B.Syn.Router = flow.Reply.Destination;
            _byFlow[ka] = s;
            _byFlow[kb] = s;
            _sessions.Add(s);
            _created++;
            _adopted++;
            _offloadedNow++;
            // Its timeout is ours from now on, and fixed (an earlier version's entry was not).
            RefreshEntry(s, flow.Original, now);
            return true;
        }
    }

    /// <summary>Removes the kernel entry of a session that ends here (idle, time-wait over, reset, unlink).</summary>
    private void EndOffload(Session s)
    {
        if (!s.Offloaded)
            return;
        s.Offloaded = false;
        _offloadedNow--;
        _offloader?.Remove(FlowOf(s).Original);
    }

    /// <summary>Payload bytes estimated from the kernel's IP byte count.</summary>
    private static long Payload(ulong bytes, ulong packets, byte headerBytes) =>
        (long)Math.Max(0, (long)bytes - (long)packets * headerBytes);
}
