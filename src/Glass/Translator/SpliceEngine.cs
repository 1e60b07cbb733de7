using Glass.Packets;

namespace Glass.Translator;

/// <summary>
/// The packet-level splice: pairs two peers' SYNs, answers each with a SYN-ACK that carries the
/// other's ISN and mirrored options, then relays every segment by rewriting addresses, ports and
/// checksums. It terminates nothing and buffers nothing. Thread-safe: one lock, uncontended on the
/// packet path (the control socket only links, unlinks and reads).
/// </summary>
public sealed partial class SpliceEngine
{
    private readonly object _gate = new();
    private readonly IPacketSender _sender;
    private readonly IClock _clock;
    private readonly SpliceOptions _options;

    // Sessions waiting for SYNs, by the (peer, router port) pairs the controller allocated. Once
    // both SYNs are in, a session is found by its flows only and these pairs can be linked anew.
    private readonly Dictionary<EndpointKey, Session> _byEndpoint = new();
    // Sides whose SYN arrived, by the full flow (the router address is implied by the port).
    private readonly Dictionary<FlowKey, Session> _byFlow = new();
    private readonly SessionTable _sessions = new();
    private readonly List<(Session Session, string Reason)> _expired = new();
    // Sessions in the order they entered TIME_WAIT: the oldest gives way when the table is full.
    private readonly Queue<Session> _timeWaitOrder = new();
    private readonly byte[] _scratch = new byte[TcpSegmentBuilder.MaxSynAckLength];
    private readonly long[] _drops = new long[Enum.GetValues<DropReason>().Length];
    private readonly long[] _ignored = new long[Enum.GetValues<IgnoredReason>().Length];
    // Ids start above any a translator before this one gave (1,024 a millisecond of its life, far
    // more than it could): a controller that outlives a translator's restart keys its links by id,
    // and must never see one twice. Below 2^53 until the 23rd century, so JSON readers keep them exact.
    private long _nextId = DateTimeOffset.UtcNow.ToUnixTimeMilliseconds() << 10;
    private long _relayed, _relayedBytes, _synAcks, _icmpRelayed, _created, _released;
    private long _optionsStripped, _contested, _reopened;

    public SpliceEngine(IPacketSender sender, IClock? clock = null, SpliceOptions? options = null)
    {
        _sender = sender;
        _clock = clock ?? SystemClock.Instance;
        _options = options ?? new SpliceOptions();
    }

    /// <summary>Raised under the engine's lock when a session ends; handlers must not block.</summary>
    public event Action<LinkRelease>? Released;

    /// <summary>
    /// Raised under the engine's lock when both SYNs of a link arrived: its (peer, router port)
    /// pairs are free for new links. Handlers must not block.
    /// </summary>
    public event Action<LinkRelease>? Paired;

    /// <summary>
    /// Raised under the engine's lock when the first SYN reaches side A of a link (the controller
    /// names the connector A): the controller tells the binder to dial only then, so a connector
    /// that never dials costs the binder nothing. Raised once per link. Handlers must not block.
    /// </summary>
    public event Action<LinkRelease>? Arrived;

    /// <summary>
    /// Expects peer A to dial router port <paramref name="portA"/> and B to dial <paramref name="portB"/>.
    /// </summary>
    public LinkResult Link(uint peerA, ushort portA, uint peerB, ushort portB)
    {
        if (portA == 0 || portB == 0 || (peerA == peerB && portA == portB))
            return LinkResult.Fail("bad-link", "A link needs two distinct non-zero (address, port) pairs.");
        lock (_gate)
        {
            var ka = new EndpointKey(peerA, portA);
            var kb = new EndpointKey(peerB, portB);
            if (_byEndpoint.ContainsKey(ka) || _byEndpoint.ContainsKey(kb))
                return LinkResult.Fail("port-in-use", "One of the (address, router port) pairs is already linked.");
            if (_sessions.Count >= _options.MaxSessions && !EvictOldestTimeWait())
                return LinkResult.Fail("full", $"The translator holds its maximum of {_options.MaxSessions} sessions.");
            var s = new Session(++_nextId, peerA, portA, peerB, portB, _clock.NowMilliseconds);
            _refuseUntil.Remove(ka);
            _refuseUntil.Remove(kb);
            _byEndpoint[ka] = s;
            _byEndpoint[kb] = s;
            _sessions.Add(s);
            _created++;
            return LinkResult.Ok(s.Id);
        }
    }

    /// <summary>
    /// Ends the link at (peer, router port) that has not paired yet (both sides proven), if any; a
    /// side that proved itself already is reset and a SYN still waiting is refused, so no
    /// application waits for nothing.
    /// </summary>
    public bool Unlink(uint peer, ushort routerPort)
    {
        lock (_gate)
        {
            if (!_byEndpoint.TryGetValue(new EndpointKey(peer, routerPort), out var s))
                return false;
            ResetProvenSides(s);
            RefuseWaitingSyns(s);
            Release(s, "unlinked");
            return true;
        }
    }

    /// <summary>
    /// Handles one IPv4 datagram taken from the queue. It may be rewritten in place and sent on;
    /// the original is dropped in the kernel either way. Never throws on packet contents.
    /// </summary>
    public DropReason Process(Span<byte> packet) => Process(packet, default);

    /// <summary>
    /// Handles one queued datagram with what the kernel said about it: a partial checksum or a
    /// GSO super-packet is relayed as such, for the kernel to finish on the way out.
    /// </summary>
    public DropReason Process(Span<byte> packet, QueuedPacketInfo info)
    {
        if (info.Truncated)
            return Count(DropReason.Truncated);
        if (packet.Length > 9 && packet[9] == IcmpTooBig.ProtocolIcmp)
            return OnIcmp(packet);
        if (!TcpPacket.TryParse(packet, out var tcp))
            return Count(DropReason.Malformed);
        if (tcp.IsFragment)
            return Count(DropReason.Fragment);
        // Segments that change state are verified; plain data is left to the receiver's check,
        // which a corrupted segment still fails after our incremental rewrite. A partial checksum
        // cannot be checked yet; the kernel vouches for it (the packet was built on this machine).
        if ((tcp.Flags & (TcpFlags.Syn | TcpFlags.Fin | TcpFlags.Rst)) != 0 && !info.ChecksumPartial && !Checksum.VerifyTcp(packet, tcp))
            return Count(DropReason.BadChecksum);

        lock (_gate)
        {
            // Only a plain SYN opens a leg: SYN+FIN and friends are scanner probes, not handshakes.
            var isSyn = (tcp.Flags & (TcpFlags.Syn | TcpFlags.Ack | TcpFlags.Rst | TcpFlags.Fin)) == TcpFlags.Syn;
            if (_byFlow.TryGetValue(new FlowKey(tcp.SourceAddress, tcp.SourcePort, tcp.DestinationPort), out var s))
            {
                var isA = s.A.Peer == tcp.SourceAddress && s.A.RouterPort == tcp.DestinationPort;
                var candidate = CandidateIndex(in s.Side(isA), tcp.SourcePort);
                return isSyn ? OnFlowSyn(s, isA, candidate, packet, tcp) : Relay(s, isA, candidate, packet, tcp, info);
            }
            if (!isSyn)
                return Count(DropReason.NoSession);
            if (!_byEndpoint.TryGetValue(new EndpointKey(tcp.SourceAddress, tcp.DestinationPort), out s))
                return OnUnlinkedSyn(tcp);
            return OnLinkSyn(s, s.A.Peer == tcp.SourceAddress && s.A.RouterPort == tcp.DestinationPort, packet, tcp);
        }
    }

    private void ReportArrival(Session s)
    {
        // Once: a disowned SYN leaves side A without one, and its next SYN is no news to the controller.
        if (s.ArrivalReported)
            return;
        s.ArrivalReported = true;
        Arrived?.Invoke(new LinkRelease(s.A.Peer, s.A.RouterPort, s.B.Peer, s.B.RouterPort, LinkRelease.ArrivedReason, s.Id));
    }

    /// <summary>Ends sessions whose timers ran out; returns how many. Call about once a second.</summary>
    public int Sweep()
    {
        lock (_gate)
        {
            var now = _clock.NowMilliseconds;
            foreach (var s in _sessions)
            {
                ContinueResetCheck(s, now);
                if (ExpiryReason(s, now) is { } reason)
                    _expired.Add((s, reason));
            }
            foreach (var (s, reason) in _expired)
            {
                // A side that proved itself is told, rather than left waiting for a peer that never came.
                if (s.State == SessionState.Handshake)
                    ResetProvenSides(s);
                Release(s, reason);
            }
            var n = _expired.Count;
            _expired.Clear();
            ForgetStaleTimeWaitOrder();
            ForgetRefusals(now);
            return n;
        }
    }

    private string? ExpiryReason(Session s, long now)
    {
        if (s.ResetDeadline != 0 && now >= s.ResetDeadline)
            return "reset";
        return s.State switch
        {
            // A link waits for its SYNs from when it was made; a handshake gets its own time from when it began.
            SessionState.Pending when now - s.CreatedAt >= Ms(_options.PendingTimeout) => "unpaired",
            SessionState.Handshake when now - s.HandshakeSince >= Ms(_options.TransitoryTimeout) => "unpaired",
            // TIME_WAIT is a silence: an acceptable segment (a retransmitted FIN or ACK) restarts it.
            SessionState.TimeWait when now - s.TimeWaitSince >= Ms(_options.TimeWait) => "closed",
            SessionState.Established when now - s.LastActivity >= Ms(_options.IdleTimeout) => "idle",
            // Half-closed is a transitory state (RFC 5382: at least 4 minutes idle): a peer whose
            // reset never crossed (refused by the kernel as outside the windows) must not hold
            // the other's session for the 2 hours an established one gets.
            SessionState.Closing when now - s.LastActivity >= Ms(_options.TransitoryTimeout) => "idle",
            _ => null,
        };
    }

    private static long Ms(TimeSpan t) => (long)t.TotalMilliseconds;

    /// <summary>Makes room for a new link by ending the session longest in TIME_WAIT; false when none is.</summary>
    private bool EvictOldestTimeWait()
    {
        while (_timeWaitOrder.TryDequeue(out var s))
        {
            if (s.State == SessionState.TimeWait && _sessions.Contains(s))
            {
                Release(s, "closed");
                return true;
            }
        }
        return false;
    }

    private void EnterTimeWait(Session s, long now)
    {
        s.State = SessionState.TimeWait;
        s.TimeWaitSince = now;
        _timeWaitOrder.Enqueue(s);
    }

    /// <summary>
    /// Drops entries of sessions that ended or left TIME_WAIT from the head of the order; and, should
    /// a session held in TIME_WAIT at the head let stale entries pile up behind it, all of them.
    /// </summary>
    private void ForgetStaleTimeWaitOrder()
    {
        while (_timeWaitOrder.TryPeek(out var oldest) && (oldest.State != SessionState.TimeWait || !_sessions.Contains(oldest)))
            _timeWaitOrder.Dequeue();
        if (_timeWaitOrder.Count <= 2 * _sessions.Count + 64)
            return;
        var seen = new HashSet<long>();
        for (var n = _timeWaitOrder.Count; n > 0; n--)
        {
            var s = _timeWaitOrder.Dequeue();
            if (s.State == SessionState.TimeWait && _sessions.Contains(s) && seen.Add(s.Id))
                _timeWaitOrder.Enqueue(s);
        }
    }

    private void Release(Session s, string reason)
    {
        MarkRefused(s);
        EndOffload(s);
        ReleaseEndpoints(s);
        ForgetFlows(s, ref s.A);
        ForgetFlows(s, ref s.B);
        _sessions.Remove(s);
        _released++;
        // An adopted session's link belonged to an earlier translator, whose PAIRED freed its ports.
        if (!s.Adopted)
            Released?.Invoke(new LinkRelease(s.A.Peer, s.A.RouterPort, s.B.Peer, s.B.RouterPort, reason, s.Id));
    }

    /// <summary>Removes the flow entries of a leg's SYN and its rivals, where they still lead to this session.</summary>
    private void ForgetFlows(Session s, ref Leg leg)
    {
        if (leg.HasSyn)
            ForgetFlow(s, leg.Peer, leg.Syn.PeerPort, leg.RouterPort);
        for (var i = 0; i < leg.RivalCount; i++)
            ForgetFlow(s, leg.Peer, leg.Rivals![i].PeerPort, leg.RouterPort);
    }

    private void ForgetFlow(Session s, uint peer, ushort peerPort, ushort routerPort)
    {
        var key = new FlowKey(peer, peerPort, routerPort);
        if (_byFlow.TryGetValue(key, out var holder) && ReferenceEquals(holder, s))
            _byFlow.Remove(key);
    }

    /// <summary>Frees the session's (peer, router port) pairs, unless a newer link already holds them.</summary>
    private void ReleaseEndpoints(Session s)
    {
        ReleaseEndpoint(s, new EndpointKey(s.A.Peer, s.A.RouterPort));
        ReleaseEndpoint(s, new EndpointKey(s.B.Peer, s.B.RouterPort));
    }

    private void ReleaseEndpoint(Session s, EndpointKey key)
    {
        if (_byEndpoint.TryGetValue(key, out var holder) && ReferenceEquals(holder, s))
            _byEndpoint.Remove(key);
    }

    private DropReason Count(DropReason reason)
    {
        Interlocked.Increment(ref _drops[(int)reason]);
        return reason;
    }

    private void Count(IgnoredReason reason) => _ignored[(int)reason]++;

    public SpliceCounters GetCounters()
    {
        lock (_gate)
        {
            var drops = new Dictionary<string, long>();
            foreach (var r in Enum.GetValues<DropReason>())
            {
                if (r is not (DropReason.None or DropReason.LeftToKernel))
                    drops[r.ToString()] = Interlocked.Read(ref _drops[(int)r]);
            }
            var ignored = new Dictionary<string, long>();
            foreach (var r in Enum.GetValues<IgnoredReason>())
                ignored[r.ToString()] = _ignored[(int)r];
            var pending = 0;
            var byState = new Dictionary<string, int>();
            foreach (var st in Enum.GetValues<SessionState>())
                byState[st.ToString()] = 0;
            foreach (var s in _sessions)
            {
                if (s.State is SessionState.Pending or SessionState.Handshake)
                    pending++;
                byState[s.State.ToString()]++;
            }
            return new SpliceCounters
            {
                PacketsRelayed = _relayed,
                BytesRelayed = _relayedBytes,
                SynAcksSent = _synAcks,
                IcmpRelayed = _icmpRelayed,
                SessionsCreated = _created,
                SessionsReleased = _released,
                SessionsActive = _sessions.Count - pending,
                SessionsPending = pending,
                SessionsByState = byState,
                Drops = drops,
                Ignored = ignored,
                IcmpLeftToKernel = Interlocked.Read(ref _drops[(int)DropReason.LeftToKernel]),
                IpOptionsStripped = _optionsStripped,
                SynsContested = _contested,
                SynsDisowned = _synsDisowned,
                ProofRetries = _proofRetries,
                SynsRefused = _synsRefused,
                SessionsReopened = _reopened,
                SessionsOffloaded = _offloadedNow,
                OffloadedTotal = _offloadedTotal,
                OffloadFailures = _offloadFailures,
                SessionsKeptLocal = _keptLocal,
                LastOffloadErrno = LastOffloadErrno,
                SessionsAdopted = _adopted,
                OffloadsTightened = _tightened,
                TightenFailures = _tightenFailures,
                RefreshFailures = _refreshFailures,
                StaleKernelEvents = _staleKernelEvents,
            };
        }
    }

    public IReadOnlyList<SessionInfo> GetSessions()
    {
        lock (_gate)
        {
            var now = _clock.NowMilliseconds;
            var list = new List<SessionInfo>(_sessions.Count);
            foreach (var s in _sessions)
            {
                var k = s.Kernel;
                list.Add(new SessionInfo(s.Id, s.State,
                    Endpoint(s.A), s.A.RouterPort, Endpoint(s.B), s.B.RouterPort,
                    s.A.Packets + (long)k.PacketsA, s.A.Bytes + Payload(k.BytesA, k.PacketsA, s.HeaderBytes),
                    s.B.Packets + (long)k.PacketsB, s.B.Bytes + Payload(k.BytesB, k.PacketsB, s.HeaderBytes),
                    now - s.CreatedAt, now - s.LastActivity, s.Offloaded));
            }
            // Oldest first, as users read a list of sessions (the table keeps no order).
            list.Sort(static (x, y) => x.Id.CompareTo(y.Id));
            return list;
        }

        static string Endpoint(in Leg l) => l.HasSyn ? $"{Ipv4.Format(l.Peer)}:{l.Syn.PeerPort}" : Ipv4.Format(l.Peer);
    }

    private readonly record struct EndpointKey(uint Peer, ushort RouterPort);

    private readonly record struct FlowKey(uint Peer, ushort PeerPort, ushort RouterPort);
}

public readonly record struct LinkResult(bool Success, long SessionId, string? ErrorCode, string? Message)
{
    public static LinkResult Ok(long id) => new(true, id, null, null);
    public static LinkResult Fail(string code, string message) => new(false, 0, code, message);
}
