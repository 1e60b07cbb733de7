namespace Glass.Translator;

/// <summary>
/// Offload: once both peers acknowledged their crafted SYN-ACKs, the splice is a plain full NAT
/// (sequence numbers need no change), so the kernel can carry it as a conntrack entry. The session
/// stays here, keyed as before, so counters, idle expiry, the session limit and the controller's
/// bookkeeping keep working; the kernel reports its end and its counters back.
/// </summary>
/// <remarks>
/// The entry starts with liberal window tracking (it picks the flow up mid-stream), under which
/// the kernel believes any FIN and lets any reset past the highest acknowledgment cut the entry's
/// timeout to 10 s, so a blind stranger could end an offloaded session. Once the entry has counted
/// segments both ways, it has learnt both windows (with the scales it was given), and the engine
/// turns liberal tracking off: the kernel then refuses segments outside the windows, which miss
/// the entry's NAT and come to the queue, where the engine judges them. Adopted entries keep
/// liberal tracking: their window scales were never known here.
/// </remarks>
public sealed partial class SpliceEngine
{
    private IFlowOffloader? _offloader;
    private long _offloadedTotal, _offloadFailures, _adopted, _tightened, _tightenFailures, _keptLocal;

    // Segments the entry must have counted in each direction before its tracking turns strict.
    private const ulong TightenAfterPackets = 2;
    private int _offloadedNow;

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
            s.OffloadedAt = _clock.NowMilliseconds;
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

    private bool TryFindOffloaded(in FlowTuple original, out Session s) =>
        _byFlow.TryGetValue(new FlowKey(original.Source, original.SourcePort, original.DestinationPort), out s!)
        && s.Offloaded && s.A.Peer == original.Source && s.A.PeerPort == original.SourcePort;

    /// <summary>The kernel moved an offloaded connection to another TCP state.</summary>
    public void OnKernelState(in FlowTuple original, KernelFlowState state)
    {
        lock (_gate)
        {
            if (!TryFindOffloaded(original, out var s))
                return;
            var now = _clock.NowMilliseconds;
            s.LastActivity = now;
            switch (state)
            {
                case KernelFlowState.Reset:
                    // The reset has crossed already (the event follows the packet): end it here and there.
                    Release(s, "reset");
                    break;
                case KernelFlowState.TimeWait when s.State != SessionState.TimeWait:
                    EnterTimeWait(s, now);
                    break;
                case KernelFlowState.Closing when s.State == SessionState.Established:
                    s.State = SessionState.Closing;
                    break;
            }
        }
    }

    /// <summary>New counters of an offloaded session's entry; any change counts as activity.</summary>
    public void OnKernelCounters(in FlowTuple original, in KernelCounters counters)
    {
        lock (_gate)
        {
            if (!TryFindOffloaded(original, out var s))
                return;
            if (counters != s.Kernel)
                s.LastActivity = _clock.NowMilliseconds;
            s.Kernel = counters;
            if (!s.Tightened && !s.Adopted && counters.PacketsA >= TightenAfterPackets && counters.PacketsB >= TightenAfterPackets)
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

    /// <summary>The errno of the last refused <see cref="IFlowOffloader.Tighten"/>, 0 when none was refused.</summary>
    public int LastTightenErrno { get; private set; }

    /// <summary>The kernel destroyed an offloaded session's entry (its own timeout, or someone flushed it).</summary>
    public void OnKernelDestroyed(in FlowTuple original, in KernelCounters? last)
    {
        lock (_gate)
        {
            if (!TryFindOffloaded(original, out var s))
                return;
            if (last is { } c)
                s.Kernel = c;
            s.Offloaded = false; // nothing left to remove
            _offloadedNow--;
            // Closing ends as closed; an established entry ran out its own timeout ("expired"),
            // for instance after a reset the kernel did not take as exact.
            Release(s, s.State is SessionState.TimeWait or SessionState.Closing ? "closed" : "expired");
        }
    }

    /// <summary>
    /// Ends the offloaded sessions whose entries a full dump did not list (their destroy events
    /// were lost); returns how many.
    /// </summary>
    public int ForgetOffloadedExcept(IReadOnlySet<FlowTuple> present, long dumpStartedAt)
    {
        lock (_gate)
        {
            foreach (var s in _sessions.Values)
            {
                // A session offloaded after the dump began may be missing from it.
                if (s.Offloaded && s.OffloadedAt < dumpStartedAt && !present.Contains(FlowOf(s).Original))
                    _expired.Add((s, "evicted"));
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
            _sessions[s.Id] = s;
            _created++;
            _adopted++;
            _offloadedNow++;
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
