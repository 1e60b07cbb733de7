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
    private readonly Dictionary<long, Session> _sessions = new();
    private readonly List<(Session Session, string Reason)> _expired = new();
    private readonly byte[] _scratch = new byte[TcpSegmentBuilder.MaxSynAckLength];
    private readonly long[] _drops = new long[Enum.GetValues<DropReason>().Length];
    private long _nextId;
    private long _relayed, _relayedBytes, _synAcks, _icmpRelayed, _created, _released;

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
            if (_sessions.Count >= _options.MaxSessions)
                return LinkResult.Fail("full", $"The translator holds its maximum of {_options.MaxSessions} sessions.");
            var s = new Session(++_nextId, peerA, portA, peerB, portB, _clock.NowMilliseconds);
            _byEndpoint[ka] = s;
            _byEndpoint[kb] = s;
            _sessions[s.Id] = s;
            _created++;
            return LinkResult.Ok(s.Id);
        }
    }

    /// <summary>Ends the link still waiting for SYNs at (peer, router port), if any.</summary>
    public bool Unlink(uint peer, ushort routerPort)
    {
        lock (_gate)
        {
            if (!_byEndpoint.TryGetValue(new EndpointKey(peer, routerPort), out var s))
                return false;
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
                var isA = s.A.Peer == tcp.SourceAddress && s.A.RouterPort == tcp.DestinationPort && s.A.PeerPort == tcp.SourcePort;
                return isSyn ? OnSyn(s, isA, packet, tcp) : Relay(s, isA, packet, tcp, info);
            }
            if (!isSyn)
                return Count(DropReason.NoSession);
            if (!_byEndpoint.TryGetValue(new EndpointKey(tcp.SourceAddress, tcp.DestinationPort), out s))
                return Count(DropReason.NotLinked);
            return OnSyn(s, s.A.Peer == tcp.SourceAddress && s.A.RouterPort == tcp.DestinationPort, packet, tcp);
        }
    }

    /// <summary>Ends sessions whose timers ran out; returns how many. Call about once a second.</summary>
    public int Sweep()
    {
        lock (_gate)
        {
            var now = _clock.NowMilliseconds;
            foreach (var s in _sessions.Values)
            {
                if (ExpiryReason(s, now) is { } reason)
                    _expired.Add((s, reason));
            }
            foreach (var (s, reason) in _expired)
                Release(s, reason);
            var n = _expired.Count;
            _expired.Clear();
            return n;
        }
    }

    private string? ExpiryReason(Session s, long now) => s.State switch
    {
        // A link waits for its SYNs from when it was made; a handshake gets the same time from when it began.
        SessionState.Pending when now - s.CreatedAt >= (long)_options.PendingTimeout.TotalMilliseconds => "unpaired",
        SessionState.Handshake when now - s.HandshakeSince >= (long)_options.PendingTimeout.TotalMilliseconds => "unpaired",
        SessionState.TimeWait when now - s.TimeWaitSince >= (long)_options.TimeWait.TotalMilliseconds => "closed",
        SessionState.Established or SessionState.Closing when now - s.LastActivity >= (long)_options.IdleTimeout.TotalMilliseconds => "idle",
        _ => null,
    };

    private void Release(Session s, string reason)
    {
        EndOffload(s);
        ReleaseEndpoints(s);
        if (s.A.HasSyn)
            _byFlow.Remove(new FlowKey(s.A.Peer, s.A.PeerPort, s.A.RouterPort));
        if (s.B.HasSyn)
            _byFlow.Remove(new FlowKey(s.B.Peer, s.B.PeerPort, s.B.RouterPort));
        _sessions.Remove(s.Id);
        _released++;
        // An adopted session's link belonged to an earlier translator, whose PAIRED freed its ports.
        if (!s.Adopted)
            Released?.Invoke(new LinkRelease(s.A.Peer, s.A.RouterPort, s.B.Peer, s.B.RouterPort, reason, s.Id));
    }

    /// <summary>Frees the session's (peer, router port) pairs, unless a newer link already holds them.</summary>
    private void ReleaseEndpoints(Session s)
    {
        foreach (var key in new[] { new EndpointKey(s.A.Peer, s.A.RouterPort), new EndpointKey(s.B.Peer, s.B.RouterPort) })
        {
            if (_byEndpoint.TryGetValue(key, out var holder) && ReferenceEquals(holder, s))
                _byEndpoint.Remove(key);
        }
    }

    private DropReason Count(DropReason reason)
    {
        Interlocked.Increment(ref _drops[(int)reason]);
        return reason;
    }

    public SpliceCounters GetCounters()
    {
        lock (_gate)
        {
            var drops = new Dictionary<string, long>();
            foreach (var r in Enum.GetValues<DropReason>())
            {
                if (r != DropReason.None)
                    drops[r.ToString()] = Interlocked.Read(ref _drops[(int)r]);
            }
            var pending = 0;
            var byState = new Dictionary<string, int>();
            foreach (var st in Enum.GetValues<SessionState>())
                byState[st.ToString()] = 0;
            foreach (var s in _sessions.Values)
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
                SessionsOffloaded = _offloadedNow,
                OffloadedTotal = _offloadedTotal,
                OffloadFailures = _offloadFailures,
                LastOffloadErrno = LastOffloadErrno,
                SessionsAdopted = _adopted,
            };
        }
    }

    public IReadOnlyList<SessionInfo> GetSessions()
    {
        lock (_gate)
        {
            var now = _clock.NowMilliseconds;
            var list = new List<SessionInfo>(_sessions.Count);
            foreach (var s in _sessions.Values)
            {
                var k = s.Kernel;
                list.Add(new SessionInfo(s.Id, s.State,
                    Endpoint(s.A), s.A.RouterPort, Endpoint(s.B), s.B.RouterPort,
                    s.A.Packets + (long)k.PacketsA, s.A.Bytes + Payload(k.BytesA, k.PacketsA, s.HeaderBytes),
                    s.B.Packets + (long)k.PacketsB, s.B.Bytes + Payload(k.BytesB, k.PacketsB, s.HeaderBytes),
                    now - s.CreatedAt, now - s.LastActivity, s.Offloaded));
            }
            return list;
        }

        static string Endpoint(in Leg l) => l.HasSyn ? $"{Ipv4.Format(l.Peer)}:{l.PeerPort}" : Ipv4.Format(l.Peer);
    }

    private readonly record struct EndpointKey(uint Peer, ushort RouterPort);

    private readonly record struct FlowKey(uint Peer, ushort PeerPort, ushort RouterPort);
}

public readonly record struct LinkResult(bool Success, long SessionId, string? ErrorCode, string? Message)
{
    public static LinkResult Ok(long id) => new(true, id, null, null);
    public static LinkResult Fail(string code, string message) => new(false, 0, code, message);
}
