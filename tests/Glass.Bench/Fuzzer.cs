using System.Buffers.Binary;
using System.Diagnostics;
using System.Globalization;
using System.Text;
using System.Text.Json;
using Glass.Packets;
using Glass.Translator;

namespace Glass.Bench;

/// <summary>
/// `glass-bench fuzz`: seeded random and mutated datagrams through the parsers and one live engine that
/// holds a pool of links. A model of the pool (which slots are linked, which releases happened) is kept
/// beside the engine, and these must hold throughout:
/// <list type="bullet">
/// <item>no exception escapes TcpPacket.TryParse, TcpSynOptions.TryParse, TcpTimestamps.TryFind,
///   Checksum.Verify*, SpliceEngine.Process, Link, Unlink, Sweep, GetCounters or GetSessions;</item>
/// <item>parsed fields stay within the packet; the two option parsers agree about timestamps;</item>
/// <item>the engine never holds more sessions than are linked (exactly the model's count), every
///   Released event names a live link once, and its counters match what Process returned;</item>
/// <item>a drop emits nothing; whatever the engine emits parses, goes to a peer of a live link, and
///   has correct checksums when it originated the packet (a SYN-ACK, or a reset it sends a peer of a
///   link it gives up, or a late SYN to a link that ended unpaired) or the input's checksums were correct;
///   a relayed ICMP "fragmentation needed" error is checked by its own parser here, not IcmpTooBig's;</item>
/// <item>after every link is unlinked or expired the engine holds 0 sessions, and every flow that ever
///   reached it gets NoSession for a segment or an ICMP error (no stale flow entry survives its session).</item>
/// </list>
/// The engine's state depends on the whole history, so a failure is reproduced with the same
/// --seed and --inputs up to the failing index; the input itself is printed in hex.
/// </summary>
internal sealed class Fuzzer
{
    private const int SlotCount = 48;
    private const ushort FirstRouterPort = 30000;
    private const int PeerPool = 6;
    private const long PendingMs = 5_000, TransitoryMs = 4_000, IdleMs = 30_000, TimeWaitMs = 2_000;

    private static readonly uint Router = Benchmarks.Router;
    private static readonly uint OtherRouter = Ipv4.Parse("203.0.113.200");
    private static readonly DropReason[] Reasons = Enum.GetValues<DropReason>();

    private readonly int _seed;
    private readonly int _inputs;
    private readonly Rng _rng;
    private readonly ManualClock _clock = new();
    private readonly CheckingSender _sender;
    private readonly SpliceEngine _engine;
    private readonly Slot[] _slots = new Slot[SlotCount];
    private readonly byte[] _buffer = new byte[2048];
    private readonly byte[] _saved = new byte[2048];
    private readonly byte[] _optionScratch = new byte[128];
    private readonly byte[] _payload = new byte[1448];
    private readonly HashSet<(uint Peer, ushort PeerPort, ushort RouterPort)> _flows = new();

    // Model and tallies.
    private int _live;
    private long _linksOk, _linksRefused, _unlinks, _releases, _sweeps;
    private readonly Dictionary<string, long> _releaseReasons = new(StringComparer.Ordinal);
    private readonly long[] _results = new long[Reasons.Length];
    private long _structured, _mutated, _junk, _parsed, _icmpParsed, _synOptionsOk, _timestampsFound, _validInputs;
    private string? _violation;
    private string _phase = "setup";

    public Fuzzer(int seed, int inputs)
    {
        _seed = seed;
        _inputs = inputs;
        _rng = new Rng((ulong)seed);
        _rng.Fill(_payload);
        _sender = new CheckingSender(this);
        _engine = new SpliceEngine(_sender, _clock, new SpliceOptions
        {
            PendingTimeout = TimeSpan.FromMilliseconds(PendingMs),
            TransitoryTimeout = TimeSpan.FromMilliseconds(TransitoryMs),
            IdleTimeout = TimeSpan.FromMilliseconds(IdleMs),
            TimeWait = TimeSpan.FromMilliseconds(TimeWaitMs),
            MaxSessions = SlotCount,
        });
        _engine.Released += OnReleased;
        _engine.Paired += OnPaired;
        for (int i = 0; i < SlotCount; i++)
            _slots[i] = new Slot((ushort)(FirstRouterPort + 2 * i), (ushort)(FirstRouterPort + 2 * i + 1));
    }

    private sealed class Slot(ushort portA, ushort portB)
    {
        public readonly ushort PortA = portA, PortB = portB;
        public bool Linked;
        public bool Paired; // both sides proved their SYNs: the engine keys it by flows, its endpoints are free
        public uint PeerA, PeerB;
        public ushort SourceA, SourceB;
        public uint IsnA, IsnB;

        public uint Peer(bool a) => a ? PeerA : PeerB;
        public ushort Port(bool a) => a ? PortA : PortB;
        public ushort Source(bool a) => a ? SourceA : SourceB;
        public uint Isn(bool a) => a ? IsnA : IsnB;
    }

    private static uint PeerAddress(int i) => 0x0A00_0000u + 1 + (uint)i; // 10.0.0.1 ...

    private const int HangSeconds = 10;
    private long _progress;

    /// <summary>
    /// A parser that stops advancing hangs rather than throws: when no input completes for
    /// <see cref="HangSeconds"/> s, print the one in flight and exit 1.
    /// </summary>
    private void StartWatchdog()
    {
        var thread = new Thread(() =>
        {
            long last = -1;
            int still = 0;
            while (true)
            {
                Thread.Sleep(1000);
                long now = Volatile.Read(ref _progress);
                still = now == last ? still + 1 : 0;
                last = now;
                if (still >= HangSeconds)
                {
                    Console.Out.Flush();
                    Console.WriteLine(string.Create(CultureInfo.InvariantCulture,
                        $"FAIL: no progress for {HangSeconds} s (a hang) at input #{now} (phase {_phase}; replay: glass-bench fuzz --seed {_seed} --inputs {now + 1}), {_savedLength} bytes:"));
                    Console.WriteLine(PacketWriter.Hex(_saved.AsSpan(0, _savedLength)));
                    Console.Out.Flush();
                    Environment.Exit(1);
                }
            }
        })
        { IsBackground = true, Name = "glass-bench-watchdog" };
        thread.Start();
    }

    public int Run()
    {
        var watch = Stopwatch.StartNew();
        StartWatchdog();
        Console.WriteLine(string.Create(CultureInfo.InvariantCulture,
            $"glass-bench fuzz: {_inputs:N0} inputs, seed {_seed}, {SlotCount} link slots"));

        int failedAt = -1;
        try
        {
            _phase = "links";
            for (int i = 0; i < SlotCount; i++)
                TryLink(i);
            CheckModel();

            int nextMaintenance = 0;
            for (int index = 0; index < _inputs; index++)
            {
                if (index == nextMaintenance)
                {
                    _phase = "maintenance";
                    Maintenance();
                    nextMaintenance = index + 64 + _rng.Below(192);
                    if (_violation is not null)
                    {
                        _phase = $"maintenance before input #{index}; the last input shown";
                        break;
                    }
                }
                _phase = "input";
                Volatile.Write(ref _progress, index);
                int length = Generate();
                OneInput(length);
                if (_violation is not null)
                {
                    failedAt = index;
                    break;
                }
            }
            if (_violation is null)
                Finish();
        }
        catch (Exception e)
        {
            // An exception from our own model code (not a system-under-test call) is a harness bug.
            Violation($"harness exception in phase {_phase}: {e}");
        }

        PrintSummary(watch.Elapsed);
        if (_violation is null)
        {
            Console.WriteLine(string.Create(CultureInfo.InvariantCulture, $"PASS: {_inputs:N0} inputs in {watch.Elapsed.TotalSeconds:0.0} s"));
            return 0;
        }

        Console.WriteLine();
        Console.WriteLine($"FAIL: {_violation}");
        if (failedAt >= 0)
        {
            Console.WriteLine(string.Create(CultureInfo.InvariantCulture,
                $"input #{failedAt} (replay: glass-bench fuzz --seed {_seed} --inputs {failedAt + 1}), {_savedLength} bytes:"));
            Console.WriteLine(PacketWriter.Hex(_saved.AsSpan(0, _savedLength)));
        }
        else if (_savedLength > 0)
        {
            Console.WriteLine(string.Create(CultureInfo.InvariantCulture,
                $"last packet ({_phase}; replay: glass-bench fuzz --seed {_seed} --inputs {_inputs}), {_savedLength} bytes:"));
            Console.WriteLine(PacketWriter.Hex(_saved.AsSpan(0, _savedLength)));
        }
        return 1;
    }

    private int _savedLength;

    private void Violation(string message) => _violation ??= message;

    // ------------------------------------------------------------------ one input

    private DropReason? OneInput(int length)
    {
        Span<byte> packet = _buffer.AsSpan(0, length);
        packet.CopyTo(_saved);
        _savedLength = length;
        bool valid;
        TcpPacket tcp;
        bool parsed;

        try
        {
            parsed = TcpPacket.TryParse(packet, out tcp);
            valid = parsed && Checksum.VerifyIpv4Header(packet[..tcp.IpHeaderLength]) && Checksum.VerifyTcp(packet, tcp);
            if (parsed)
            {
                _parsed++;
                CheckParsed(packet, tcp);
                CheckOptions(packet.Slice(tcp.OptionsOffset, tcp.OptionsLength));
            }
            if (IcmpTooBig.TryParse(packet, out var icmp))
            {
                _icmpParsed++;
                CheckIcmpParsed(packet, icmp);
            }
            // Arbitrary bytes as an option list: any window of the input.
            int start = _rng.Below(length + 1);
            CheckOptions(packet.Slice(start, _rng.Below(Math.Min(64, length - start) + 1)));
        }
        catch (Exception e)
        {
            Violation($"parser threw: {e}");
            return null;
        }
        if (valid)
            _validInputs++;
        if (_violation is not null)
            return null;

        _sender.BeginInput(_buffer, length, valid || QuotedSegmentVerifies(packet));
        DropReason result;
        try
        {
            result = _engine.Process(packet);
        }
        catch (Exception e)
        {
            Violation($"SpliceEngine.Process threw: {e}");
            return null;
        }
        if ((uint)result >= (uint)_results.Length)
        {
            Violation($"Process returned {(int)result}, not a DropReason");
            return null;
        }
        _results[(int)result]++;

        int relayedAttempts = _sender.RelayedThisInput;
        int attempts = _sender.EndInput();
        if (result is DropReason.None or DropReason.SendFailed)
        {
            if (attempts == 0)
                Violation($"Process returned {result} but sent nothing");
        }
        else if (relayedAttempts != 0)
        {
            // A dropped packet may still move its link on (a held SYN lets the other side's SYNs be
            // answered; a conflicting handshake resets both sides), but it never crosses itself.
            Violation($"Process dropped the packet ({result}) yet relayed it {relayedAttempts} time(s)");
        }

        // Remember every flow the engine may have entered in its flow table, for the stale-flow check.
        if (_recordFlows && parsed && (tcp.Flags & (TcpFlags.Syn | TcpFlags.Ack | TcpFlags.Rst)) == TcpFlags.Syn
            && result is DropReason.None or DropReason.WaitingForPeer && _flows.Count < 1_000_000)
            _flows.Add((tcp.SourceAddress, tcp.SourcePort, tcp.DestinationPort));
        return result;
    }

    private bool _recordFlows = true;

    private void CheckParsed(ReadOnlySpan<byte> packet, in TcpPacket t)
    {
        if (t.IpHeaderLength is < 20 or > 60 || (t.IpHeaderLength & 3) != 0)
            Violation($"IpHeaderLength {t.IpHeaderLength}");
        else if (t.TcpHeaderLength is < 20 or > 60 || (t.TcpHeaderLength & 3) != 0)
            Violation($"TcpHeaderLength {t.TcpHeaderLength}");
        else if (t.TotalLength > packet.Length || t.TotalLength != BinaryPrimitives.ReadUInt16BigEndian(packet[2..]))
            Violation($"TotalLength {t.TotalLength} vs span {packet.Length}");
        else if (t.PayloadOffset + t.PayloadLength != t.TotalLength || t.PayloadLength < 0)
            Violation($"payload {t.PayloadOffset}+{t.PayloadLength} != TotalLength {t.TotalLength}");
        else if (t.OptionsOffset + t.OptionsLength > t.TotalLength || t.OptionsLength < 0)
            Violation("options run past TotalLength");
        else if ((BinaryPrimitives.ReadUInt16BigEndian(packet[6..]) & 0x1FFF) != 0)
            Violation("a non-first fragment parsed");
        else if (packet[9] != 6 || packet[0] >> 4 != 4)
            Violation("a non-IPv4 or non-TCP datagram parsed");
    }

    /// <summary>
    /// True for an IPv4 ICMP datagram with a correct ICMP checksum that quotes a whole TCP segment (as long
    /// as its quoted total length says) whose TCP checksum is correct: then the relayed copy must be correct too.
    /// </summary>
    private static bool QuotedSegmentVerifies(ReadOnlySpan<byte> p)
    {
        if (p.Length < 20 || p[0] >> 4 != 4 || p[9] != 1)
            return false;
        int ihl = (p[0] & 0x0F) * 4;
        int total = BinaryPrimitives.ReadUInt16BigEndian(p[2..]);
        if (ihl < 20 || total > p.Length || total < ihl + 8 + 40 || Checksum.Compute(p[ihl..total]) != 0)
            return false;
        var q = p[(ihl + 8)..total];
        int qihl = (q[0] & 0x0F) * 4;
        int qtotal = BinaryPrimitives.ReadUInt16BigEndian(q[2..]);
        if (q[0] >> 4 != 4 || q[9] != 6 || qihl < 20 || qtotal != q.Length || qtotal < qihl + 20)
            return false;
        return Checksum.ComputeTcp(BinaryPrimitives.ReadUInt32BigEndian(q[12..]), BinaryPrimitives.ReadUInt32BigEndian(q[16..]), q[qihl..qtotal]) == 0;
    }

    private void CheckIcmpParsed(ReadOnlySpan<byte> packet, in IcmpTooBig m)
    {
        if (m.IpHeaderLength is < 20 or > 60 || m.TotalLength > packet.Length)
            Violation($"IcmpTooBig: IpHeaderLength {m.IpHeaderLength}, TotalLength {m.TotalLength}, span {packet.Length}");
        else if (m.QuotedOffset != m.IpHeaderLength + 8 || m.QuotedOffset + m.QuotedLength != m.TotalLength)
            Violation($"IcmpTooBig: quoted bytes {m.QuotedOffset}+{m.QuotedLength} do not end at TotalLength {m.TotalLength}");
        else if (m.QuotedHeaderLength is < 20 or > 60 || m.QuotedLength < m.QuotedHeaderLength + 8)
            Violation($"IcmpTooBig: quoted header {m.QuotedHeaderLength} with {m.QuotedLength} quoted bytes");
        else if (packet[9] != 1 || packet[m.IpHeaderLength] != 3 || packet[m.IpHeaderLength + 1] != 4)
            Violation("IcmpTooBig parsed something other than ICMP type 3 code 4");
    }

    private void CheckOptions(ReadOnlySpan<byte> options)
    {
        bool ok = TcpSynOptions.TryParse(options, out var o);
        bool found = TcpTimestamps.TryFind(options, out uint tsVal, out uint tsEcr);
        if (ok)
            _synOptionsOk++;
        if (found)
            _timestampsFound++;
        string? problem = null;
        if (o.WindowScale is < -1 or > 14)
            problem = $"WindowScale {o.WindowScale} outside -1..14";
        else if (!ok && (o.Mss != 0 || o.WindowScale != -1 || o.SackPermitted || o.HasTimestamps || o.HasFastOpen || o.HasMptcp))
            problem = "TcpSynOptions.TryParse failed but left fields set";
        else if (ok && o.HasTimestamps && !found)
            problem = "TcpSynOptions saw timestamps that TcpTimestamps.TryFind did not";
        else if (ok && found && !o.HasTimestamps)
            problem = "TcpTimestamps.TryFind found timestamps that TcpSynOptions did not";
        else if (!found && (tsVal | tsEcr) != 0)
            problem = "TcpTimestamps.TryFind failed but returned values";
        if (problem is not null)
            Violation($"{problem} (option bytes: {PacketWriter.Hex(options)})");
    }

    // ------------------------------------------------------------------ the engine's outputs

    /// <summary>The fake kernel: validates every packet the engine emits, and refuses one in 50.</summary>
    private sealed class CheckingSender(Fuzzer owner) : IPacketSender
    {
        private byte[]? _input;
        private int _inputLength;
        private bool _inputValid;
        private int _attempts;
        public long SynAcks, Relayed, Refused, Icmp, Verified, QuotesVerified;
        public int RelayedThisInput { get; private set; }

        public void BeginInput(byte[] input, int length, bool valid)
        {
            _input = input;
            _inputLength = length;
            _inputValid = valid;
            _attempts = 0;
            RelayedThisInput = 0;
        }

        public int EndInput()
        {
            _input = null;
            return _attempts;
        }

        public bool Send(ReadOnlySpan<byte> packet, uint destination)
        {
            _attempts++;
            bool relayed = _input is not null && packet.Overlaps(_input.AsSpan(0, _inputLength));
            if (relayed)
            {
                Relayed++;
                RelayedThisInput++;
            }
            if (relayed && _inputValid)
                Verified++;
            else
                SynAcks++;
            owner.CheckEmitted(packet, destination, relayed, relayed && _inputValid);
            if (owner._rng.OneIn(50))
            {
                Refused++;
                return false;
            }
            return true;
        }
    }

    private void CheckEmitted(ReadOnlySpan<byte> packet, uint destination, bool relayed, bool mustVerify)
    {
        string what = relayed ? "relayed" : "originated";
        if (packet.Length > 9 && packet[9] == 1)
        {
            _sender.Icmp++;
            CheckIcmpEmitted(packet, destination, relayed, mustVerify);
            return;
        }
        if (!TcpPacket.TryParse(packet, out var t))
        {
            Violation($"the engine {what} an unparsable packet: {PacketWriter.Hex(packet)}");
            return;
        }
        if (t.TotalLength != packet.Length)
            Violation($"the engine {what} {packet.Length} bytes for a {t.TotalLength}-byte datagram");
        if (t.DestinationAddress != destination)
            Violation($"the engine {what} a packet for {Ipv4.Format(t.DestinationAddress)} to {Ipv4.Format(destination)}");
        // The source port is the router port of the receiving side: it must belong to a live link whose peer is the destination.
        int slot = (t.SourcePort - FirstRouterPort) / 2;
        bool sideA = (t.SourcePort - FirstRouterPort) % 2 == 0;
        if (t.SourcePort < FirstRouterPort || slot >= SlotCount)
            Violation($"the engine {what} a packet from router port {t.SourcePort}, which no link names");
        else if ((!_slots[slot].Linked || _slots[slot].Peer(sideA) != destination) && !IsRefusal(t, relayed))
            Violation($"the engine {what} a packet to {Ipv4.Format(destination)} from router port {t.SourcePort}, not a live link of that peer");
        if ((mustVerify || !relayed)
            && !(Checksum.VerifyIpv4Header(packet[..t.IpHeaderLength]) && Checksum.VerifyTcp(packet, t)))
            Violation($"the engine {what} a packet with a wrong checksum{(relayed ? " (the input's were correct)" : "")}: {PacketWriter.Hex(packet)}");
        if (!relayed && t.Flags == (TcpFlags.Rst | TcpFlags.Ack))
        {
            // A reset the engine sends a peer it gives up on (a conflicting or unpaired handshake, an
            // unlink, a reopened flow): bare, to the peer's own flow.
            if (t.TotalLength != 40 || t.PayloadLength != 0)
                Violation($"the engine originated a reset that is not bare: {PacketWriter.Hex(packet)}");
        }
        else if (!relayed)
        {
            if ((t.Flags & ~TcpFlags.Ece) != (TcpFlags.Syn | TcpFlags.Ack))
                Violation($"the engine originated flags {t.Flags}, not a SYN-ACK or RST+ACK");
            if (!TcpSynOptions.TryParse(packet.Slice(t.OptionsOffset, t.OptionsLength), out var o) || o.Mss == 0)
                Violation($"the engine originated a SYN-ACK with unparsable options or no MSS: {PacketWriter.Hex(packet)}");
        }
    }

    /// <summary>
    /// A relayed "fragmentation needed" error, checked by hand: outer and quoted IPv4 headers and the ICMP
    /// message are rewritten wholesale, so their checksums must be right whatever the input's were; it goes
    /// to the peer that sent the quoted segment, from that peer's router port.
    /// </summary>
    private void CheckIcmpEmitted(ReadOnlySpan<byte> p, uint destination, bool relayed, bool quoteMustVerify)
    {
        string? problem = null;
        int ihl = p.Length >= 20 ? (p[0] & 0x0F) * 4 : 0;
        int total = p.Length >= 20 ? BinaryPrimitives.ReadUInt16BigEndian(p[2..]) : 0;
        if (!relayed)
            problem = "the engine originated an ICMP message (only relaying is expected)";
        else if (p.Length < 20 || p[0] >> 4 != 4 || ihl < 20 || total != p.Length || total < ihl + 8 + 28)
            problem = "a relayed ICMP datagram has a broken IPv4 header or length";
        else if (!Checksum.VerifyIpv4Header(p[..ihl]))
            problem = "a relayed ICMP datagram has a wrong IPv4 header checksum";
        else if (Checksum.Compute(p[ihl..total]) != 0)
            problem = "a relayed ICMP message has a wrong ICMP checksum";
        else if (p[ihl] != 3 || p[ihl + 1] != 4)
            problem = $"the engine relayed ICMP type {p[ihl]} code {p[ihl + 1]}";
        else if (BinaryPrimitives.ReadUInt32BigEndian(p[16..]) != destination)
            problem = "a relayed ICMP datagram is addressed to someone other than where it was sent";
        else
        {
            var q = p[(ihl + 8)..total];
            int qihl = (q[0] & 0x0F) * 4;
            if (qihl < 20 || q.Length < qihl + 8)
                problem = "the quoted header of a relayed ICMP error is cut short";
            else if (!Checksum.VerifyIpv4Header(q[..qihl]))
                problem = "the quoted IPv4 header of a relayed ICMP error has a wrong checksum";
            else if (BinaryPrimitives.ReadUInt32BigEndian(q[12..]) != destination)
                problem = "a relayed ICMP error quotes a segment its receiver did not send";
            else
            {
                ushort routerPort = BinaryPrimitives.ReadUInt16BigEndian(q[(qihl + 2)..]);
                int slot = (routerPort - FirstRouterPort) / 2;
                bool sideA = (routerPort - FirstRouterPort) % 2 == 0;
                if (routerPort < FirstRouterPort || slot >= SlotCount || !_slots[slot].Linked || _slots[slot].Peer(sideA) != destination)
                    problem = $"a relayed ICMP error quotes router port {routerPort}, not a live link of {Ipv4.Format(destination)}";
                else if (quoteMustVerify && !QuotedSegmentVerifies(p))
                {
                    problem = "a relayed ICMP error quotes a whole segment with a wrong TCP checksum (the input's was correct)";
                }
                else if (quoteMustVerify)
                {
                    _sender.QuotesVerified++;
                }
            }
        }
        if (problem is not null)
            Violation($"{problem}: {PacketWriter.Hex(p)}");
    }

    // ------------------------------------------------------------------ links, clock, sweep

    private void OnReleased(LinkRelease r)
    {
        _releases++;
        _releaseReasons[r.Reason] = _releaseReasons.GetValueOrDefault(r.Reason) + 1;
        int i = (r.RouterPortA - FirstRouterPort) / 2;
        if (r.RouterPortA < FirstRouterPort || i >= SlotCount)
        {
            Violation($"Released names router port {r.RouterPortA}, which no link used");
            return;
        }
        var s = _slots[i];
        if (!s.Linked)
            Violation($"Released ({r.Reason}) for slot {i}, which is not linked (released twice?)");
        else if (r.PeerA != s.PeerA || r.RouterPortA != s.PortA || r.PeerB != s.PeerB || r.RouterPortB != s.PortB)
            Violation($"Released ({r.Reason}) names {Ipv4.Format(r.PeerA)}:{r.RouterPortA}/{Ipv4.Format(r.PeerB)}:{r.RouterPortB}, not slot {i}'s link");
        if (!s.Paired)
        {
            _refusable.Add((s.PeerA, (ushort)s.PortA));
            _refusable.Add((s.PeerB, (ushort)s.PortB));
        }
        s.Linked = false;
        s.Paired = false;
        _live--;
    }

    // (peer, router port) pairs of links that ended unpaired: the engine refuses a late SYN to them
    // with a reset (SpliceEngine.Refusal.cs), from a port no live link of that peer holds.
    private readonly HashSet<(uint Peer, ushort Port)> _refusable = new();

    private bool IsRefusal(in TcpPacket t, bool relayed) =>
        !relayed && t.Flags == (TcpFlags.Rst | TcpFlags.Ack) && t.Sequence == 0 && t.PayloadLength == 0
        && _refusable.Contains((t.DestinationAddress, t.SourcePort));

    private void OnPaired(LinkRelease r)
    {
        int i = (r.RouterPortA - FirstRouterPort) / 2;
        if (r.RouterPortA < FirstRouterPort || i >= SlotCount || !_slots[i].Linked || _slots[i].Paired)
        {
            Violation($"Paired names router port {r.RouterPortA}, which no unpaired link holds");
            return;
        }
        _slots[i].Paired = true;
    }

    private void TryLink(int i)
    {
        var s = _slots[i];
        if (s.Linked)
            return;
        s.PeerA = PeerAddress(_rng.Below(PeerPool));
        // Sometimes both sides share an address (two clients behind one NAT).
        s.PeerB = _rng.OneIn(8) ? s.PeerA : PeerAddress(PeerPool + _rng.Below(PeerPool));
        s.SourceA = (ushort)(1024 + _rng.Below(64000));
        s.SourceB = (ushort)(1024 + _rng.Below(64000));
        s.IsnA = _rng.NextUInt();
        s.IsnB = _rng.OneIn(4) ? 0xFFFF_FFF0u + (uint)_rng.Below(16) : _rng.NextUInt(); // wrap-around
        var r = _engine.Link(s.PeerA, s.PortA, s.PeerB, s.PortB);
        if (!r.Success)
        {
            Violation($"Link of free slot {i} failed: {r.ErrorCode} {r.Message}");
            return;
        }
        s.Linked = true;
        s.Paired = false;
        _live++;
        _linksOk++;
    }

    private void ExpectLinkRefused(uint peerA, ushort portA, uint peerB, ushort portB, string code)
    {
        var r = _engine.Link(peerA, portA, peerB, portB);
        if (r.Success)
        {
            _live++;
            Violation($"Link({Ipv4.Format(peerA)}:{portA}, {Ipv4.Format(peerB)}:{portB}) succeeded, expected '{code}'");
        }
        else if (r.ErrorCode != code)
            Violation($"Link({Ipv4.Format(peerA)}:{portA}, {Ipv4.Format(peerB)}:{portB}) failed with '{r.ErrorCode}', expected '{code}'");
        else
            _linksRefused++;
    }

    private void Maintenance()
    {
        // Time passes: mostly a little, now and then past every timer.
        long step = _rng.OneIn(25) ? _rng.Below((int)(2 * IdleMs)) : _rng.Below(1500);
        _clock.Advance(step);
        long before = _releases;
        int swept = _engine.Sweep();
        _sweeps++;
        if (swept != _releases - before)
            Violation($"Sweep returned {swept} but raised Released {_releases - before} time(s)");

        // The controller unlinks now and then; Unlink must agree with the model.
        if (_rng.OneIn(6))
        {
            var s = _slots[_rng.Below(SlotCount)];
            bool a = _rng.OneIn(2);
            // Only links still waiting for SYNs are found by their endpoints.
            bool expected = s.Linked && !s.Paired;
            long releases = _releases;
            bool got = _engine.Unlink(s.Peer(a), s.Port(a));
            _unlinks++;
            if (got != expected)
                Violation($"Unlink of a {(expected ? "linked" : "free")} endpoint returned {got}");
            else if (got && _releases != releases + 1)
                Violation("Unlink returned true without one Released event");
        }
        if (_rng.OneIn(10) && _engine.Unlink(PeerAddress(_rng.Below(2 * PeerPool)), (ushort)(FirstRouterPort - 1 - _rng.Below(100))))
            Violation("Unlink of an endpoint no link names returned true");

        // Links that must be refused.
        if (_rng.OneIn(5))
        {
            var s = _slots[_rng.Below(SlotCount)];
            uint p = PeerAddress(_rng.Below(2 * PeerPool));
            switch (_rng.Below(4))
            {
                case 0:
                    ExpectLinkRefused(p, 0, p, 1, "bad-link");
                    break;
                case 1:
                    ExpectLinkRefused(p, 29000, p, 29000, "bad-link");
                    break;
                case 2 when s.Linked && !s.Paired:
                    ExpectLinkRefused(s.PeerB, s.PortB, p, 29001, "port-in-use");
                    break;
                // Not while a session lingers in TIME_WAIT: it would give way to the new link.
                case 3 when _live == SlotCount && _engine.GetCounters().SessionsByState[nameof(SessionState.TimeWait)] == 0:
                    ExpectLinkRefused(p, 29002, p, 29003, "full");
                    break;
            }
        }

        // Free slots are linked again, sometimes only after a while (so "full" and NotLinked both happen).
        for (int i = 0; i < SlotCount; i++)
        {
            if (!_slots[i].Linked && _rng.OneIn(3))
                TryLink(i);
        }
        CheckModel();
        if (_rng.OneIn(16))
        {
            var sessions = _engine.GetSessions();
            if (sessions.Count != _live)
                Violation($"GetSessions lists {sessions.Count} sessions, {_live} are linked");
        }
    }

    private void CheckModel()
    {
        var c = _engine.GetCounters();
        int held = c.SessionsActive + c.SessionsPending;
        if (held > _linksOk - _releases || held > SlotCount)
            Violation($"the engine holds {held} sessions, more than the {_linksOk - _releases} linked");
        else if (held != _live)
            Violation($"the engine holds {held} sessions, the model {_live}");
        else if (c.SessionsCreated != _linksOk || c.SessionsReleased != _releases)
            Violation($"counters say {c.SessionsCreated} created / {c.SessionsReleased} released, the model {_linksOk} / {_releases}");
        else if (c.SessionsActive < 0 || c.SessionsPending < 0)
            Violation($"negative session counters {c.SessionsActive}/{c.SessionsPending}");
    }

    private void Finish()
    {
        _phase = "finish: unlink";
        // Half the live links are unlinked by the controller ...
        for (int i = 0; i < SlotCount; i += 2)
        {
            var s = _slots[i];
            if (s.Linked && !s.Paired && !_engine.Unlink(s.PeerA, s.PortA))
                Violation($"final Unlink of slot {i} returned false");
        }
        // ... the rest must expire: every state has a timer.
        _phase = "finish: expire";
        _clock.Advance(Math.Max(Math.Max(IdleMs, TransitoryMs), Math.Max(PendingMs, TimeWaitMs)) + 1);
        _engine.Sweep();
        var c = _engine.GetCounters();
        if (c.SessionsActive + c.SessionsPending != 0 || _engine.GetSessions().Count != 0)
            Violation($"after unlinking and expiry the engine still holds {c.SessionsActive} active + {c.SessionsPending} pending sessions");
        if (_live != 0)
            Violation($"the model still has {_live} live links: Released was not raised for every session");
        CheckModel();
        if (_violation is not null)
            return;

        // No stale flow or endpoint entry: every flow ever entered now gets NoSession, every SYN NotLinked.
        _phase = "finish: stale flows";
        _recordFlows = false;
        foreach (var (peer, peerPort, routerPort) in _flows)
        {
            int n = PacketWriter.Write(_buffer, peer, peerPort, Router, routerPort, 1, 1, TcpFlags.Ack, 1000);
            ExpectFinal(n, DropReason.NoSession);
            n = PacketWriter.Write(_buffer, peer, peerPort, Router, routerPort, 1, 0, TcpFlags.Syn, 1000);
            ExpectFinal(n, DropReason.NotLinked);
            // Whether the engine looks into ICMP at all is its business; relaying it here would be the bug.
            n = IcmpAbout(peer, peerPort, routerPort, quote: 28, mtu: 1280);
            ExpectFinal(n, DropReason.LeftToKernel, DropReason.IcmpUnhandled);
            if (_violation is not null)
                return;
        }
        _phase = "finish: counters";
        c = _engine.GetCounters();
        foreach (var reason in Reasons)
        {
            if (reason == DropReason.None)
                continue;
            // Not a drop: counted apart.
            long engineCount = reason == DropReason.LeftToKernel ? c.IcmpLeftToKernel : c.Drops.GetValueOrDefault(reason.ToString());
            long ours = _results[(int)reason];
            // SendFailed is also counted for a refused SYN-ACK or RST whose Process still returned None.
            if (reason == DropReason.SendFailed ? engineCount < ours : engineCount != ours)
                Violation($"the engine counted {engineCount} {reason} drops, Process returned it {ours} times");
        }
    }

    private void ExpectFinal(int length, DropReason expected, DropReason? alternative = null)
    {
        var got = OneInput(length);
        if (got is not null && got != expected && got != alternative)
            Violation($"after every session ended, a packet got {got} instead of {expected} (stale flow or endpoint entry)");
    }

    // ------------------------------------------------------------------ generation

    private enum Kind { Syn, SynAck, Ack, Data, Fin, Rst, Stray, Icmp }

    /// <summary>Writes the next input into _buffer and returns its length.</summary>
    private int Generate()
    {
        if (_rng.Percent(8))
        {
            _junk++;
            return Junk();
        }
        _structured++;
        int length = Structured();
        if (_rng.Percent(60))
        {
            _mutated++;
            int count = 1 + _rng.Below(_rng.OneIn(4) ? 8 : 3);
            for (int i = 0; i < count; i++)
                length = Mutate(length);
            // Half the time the checksums are made right again, so the mutation reaches the state machine.
            if (_rng.OneIn(2) && !PacketWriter.FixChecksums(_buffer.AsSpan(0, length)))
                PacketWriter.FixIcmpChecksums(_buffer.AsSpan(0, length));
        }
        return length;
    }

    private int Junk()
    {
        int length = _rng.OneIn(2) ? _rng.Below(80) : _rng.Below(1600);
        Span<byte> p = _buffer.AsSpan(0, length);
        _rng.Fill(p);
        if (length >= 40 && _rng.OneIn(2))
        {
            // Plausible enough to pass the first checks: IPv4, IHL 5, TCP, whole length, no fragment.
            p[0] = 0x45;
            BinaryPrimitives.WriteUInt16BigEndian(p[2..], (ushort)length);
            p[6] &= 0x40;
            p[7] = 0;
            p[9] = 6;
            p[32] = (byte)((5 + _rng.Below(11)) << 4);
            if (_rng.OneIn(2))
            {
                var s = _slots[_rng.Below(SlotCount)];
                bool a = _rng.OneIn(2);
                BinaryPrimitives.WriteUInt32BigEndian(p[12..], s.Peer(a));
                BinaryPrimitives.WriteUInt16BigEndian(p[20..], s.Source(a));
                BinaryPrimitives.WriteUInt16BigEndian(p[22..], s.Port(a));
            }
            if (_rng.OneIn(2))
                PacketWriter.FixChecksums(p);
        }
        return length;
    }

    private int Structured()
    {
        var s = _slots[_rng.Below(SlotCount)];
        bool a = _rng.OneIn(2);
        var kind = _rng.Below(100) switch
        {
            < 22 => Kind.Syn,
            < 25 => Kind.SynAck,
            < 45 => Kind.Ack,
            < 65 => Kind.Data,
            < 77 => Kind.Fin,
            < 89 => Kind.Rst,
            < 94 => Kind.Stray,
            _ => Kind.Icmp,
        };
        if (kind == Kind.Icmp)
        {
            // An error about a segment the router relayed toward this side (or, now and then, toward a made-up flow).
            int quote = _rng.Below(4) switch { 0 => 8, 1 => 20, 2 => 8 + _rng.Below(60), _ => 28 };
            ushort mtu = _rng.Below(4) switch { 0 => 0, 1 => 68, 2 => (ushort)_rng.Next(), _ => (ushort)(1280 + _rng.Below(220)) };
            return _rng.OneIn(8)
                ? IcmpAbout(PeerAddress(_rng.Below(2 * PeerPool)), (ushort)_rng.Next(), (ushort)(FirstRouterPort + _rng.Below(2 * SlotCount)), quote, mtu)
                : IcmpAbout(s.Peer(a), s.Source(a), s.Port(a), quote, mtu);
        }

        uint source = s.Peer(a);
        ushort sourcePort = s.Source(a);
        uint target = _rng.OneIn(20) ? OtherRouter : Router;
        ushort routerPort = s.Port(a);
        uint isn = s.Isn(a), otherIsn = s.Isn(!a);
        uint seq = isn + 1, ack = otherIsn + 1 + (uint)_rng.Below(2); // +2 acknowledges the other's FIN
        ushort window = _rng.Below(8) switch { 0 => 0, 1 => 65535, _ => (ushort)(1 + _rng.Below(4096)) };
        TcpFlags flags;
        ReadOnlySpan<byte> options = default;
        ReadOnlySpan<byte> payload = default;

        switch (kind)
        {
            case Kind.Syn:
            case Kind.SynAck:
                if (_rng.OneIn(12))
                {
                    // A new attempt: another source port or ISN (replacement while pending, EndpointBusy after).
                    if (_rng.OneIn(2))
                        SetSource(s, a, (ushort)(1024 + _rng.Below(64000)));
                    else
                        SetIsn(s, a, _rng.NextUInt());
                    sourcePort = s.Source(a);
                    isn = s.Isn(a);
                }
                seq = isn;
                ack = kind == Kind.SynAck ? otherIsn + 1 : 0;
                flags = kind == Kind.SynAck ? TcpFlags.Syn | TcpFlags.Ack : TcpFlags.Syn;
                if (_rng.OneIn(5))
                    flags |= TcpFlags.Ece | TcpFlags.Cwr;
                if (_rng.OneIn(30))
                    flags |= TcpFlags.Fin; // SYN+FIN, a classic scanner probe
                options = SynOptions(evil: _rng.Percent(30));
                break;
            case Kind.Ack:
            case Kind.Data:
                flags = TcpFlags.Ack | (kind == Kind.Data && _rng.OneIn(2) ? TcpFlags.Psh : 0);
                if (kind == Kind.Data)
                    payload = _payload.AsSpan(0, _rng.OneIn(10) ? _payload.Length : 1 + _rng.Below(200));
                if (_rng.OneIn(3))
                    options = TimestampOption();
                break;
            case Kind.Fin:
                flags = TcpFlags.Fin | TcpFlags.Ack;
                if (_rng.OneIn(4))
                    payload = _payload.AsSpan(0, 1 + _rng.Below(100));
                break;
            case Kind.Rst:
                flags = _rng.OneIn(2) ? TcpFlags.Rst : TcpFlags.Rst | TcpFlags.Ack;
                seq = _rng.Below(3) switch { 0 => _rng.NextUInt(), 1 => isn + 1 + (uint)_rng.Below(1 << 20), _ => isn + 1 };
                break;
            default:
                // A segment for some other flow: another slot's port, an unknown peer or a random port.
                flags = (TcpFlags)(byte)_rng.Next();
                switch (_rng.Below(3))
                {
                    case 0: routerPort = _slots[_rng.Below(SlotCount)].Port(_rng.OneIn(2)); break;
                    case 1: source = PeerAddress(_rng.Below(2 * PeerPool)); break;
                    default: sourcePort = (ushort)_rng.Next(); break;
                }
                if ((flags & TcpFlags.Syn) != 0)
                    options = SynOptions(evil: _rng.Percent(30));
                break;
        }
        return PacketWriter.Write(_buffer, source, sourcePort, target, routerPort, seq, ack, flags, window, options, payload);
    }

    /// <summary>
    /// An ICMP "fragmentation needed" from a hop on the way to <paramref name="peer"/>, quoting the IPv4
    /// header and <paramref name="quote"/> bytes of a full-size segment from (router, routerPort) to (peer, peerPort).
    /// </summary>
    private int IcmpAbout(uint peer, ushort peerPort, ushort routerPort, int quote, ushort mtu)
    {
        Span<byte> segment = _icmpScratch;
        bool whole = _rng.OneIn(4); // a whole small segment, so the quoted TCP checksum can be checked after the rewrite
        int n = PacketWriter.Write(segment, Router, routerPort, peer, peerPort, _rng.NextUInt(), _rng.NextUInt(),
            TcpFlags.Ack | TcpFlags.Psh, 1000, payload: _payload.AsSpan(0, whole ? _rng.Below(40) : _payload.Length));
        int quoted = whole ? n : Math.Min(n, PacketWriter.IpHeaderLength + quote);
        uint hop = _rng.OneIn(2) ? peer & 0xFFFF_FF00u | 0xFE : _rng.NextUInt();
        return PacketWriter.WriteIcmpTooBig(_buffer, hop, Router, mtu, segment[..quoted]);
    }

    private readonly byte[] _icmpScratch = new byte[1600];

    private static void SetSource(Slot s, bool a, ushort port)
    {
        if (a)
            s.SourceA = port;
        else
            s.SourceB = port;
    }

    private static void SetIsn(Slot s, bool a, uint isn)
    {
        if (a)
            s.IsnA = isn;
        else
            s.IsnB = isn;
    }

    private ReadOnlySpan<byte> TimestampOption()
    {
        var o = _optionScratch.AsSpan(0, 12);
        o[0] = 1;
        o[1] = 1;
        o[2] = 8;
        o[3] = 10;
        BinaryPrimitives.WriteUInt32BigEndian(o[4..], _rng.NextUInt());
        BinaryPrimitives.WriteUInt32BigEndian(o[8..], _rng.NextUInt());
        return o;
    }

    /// <summary>
    /// An option list of at most 40 bytes: a few options, well-formed or (evil) with zero, one-byte,
    /// overlong or missing length bytes, wrong lengths for known kinds, repeats and experimental kinds.
    /// Options that do not fit are cut at 40 bytes, which yields lists that overrun their end.
    /// </summary>
    private ReadOnlySpan<byte> SynOptions(bool evil)
    {
        if (!evil && _rng.OneIn(3))
            return PacketWriter.LinuxSynOptions((ushort)(536 + _rng.Below(1000)), _rng.NextUInt(), (byte)_rng.Below(15));
        Span<byte> o = _optionScratch;
        int n = 0;
        int items = 1 + _rng.Below(evil ? 7 : 4);
        for (int i = 0; i < items && n < 40; i++)
        {
            Span<byte> w = o[n..];
            int k = evil ? _rng.Below(24) : _rng.Below(6);
            bool last = false;
            int used;
            switch (k)
            {
                case 0: // MSS
                    w[0] = 2; w[1] = 4;
                    BinaryPrimitives.WriteUInt16BigEndian(w[2..], _rng.Below(4) switch { 0 => 0, 1 => 1, 2 => 65535, _ => (ushort)(536 + _rng.Below(9000)) });
                    used = 4;
                    break;
                case 1: // window scale, sometimes beyond 14
                    w[0] = 1; w[1] = 3; w[2] = 3; w[3] = (byte)(_rng.OneIn(3) ? _rng.Below(256) : _rng.Below(15));
                    used = 4;
                    break;
                case 2: // SACK permitted
                    w[0] = 1; w[1] = 1; w[2] = 4; w[3] = 2;
                    used = 4;
                    break;
                case 3: // timestamps
                    w[0] = 8; w[1] = 10;
                    BinaryPrimitives.WriteUInt32BigEndian(w[2..], _rng.NextUInt());
                    BinaryPrimitives.WriteUInt32BigEndian(w[6..], _rng.OneIn(4) ? _rng.NextUInt() : 0);
                    used = 10;
                    break;
                case 4: // NOP
                    w[0] = 1;
                    used = 1;
                    break;
                case 5: // EOL, then junk that must be ignored
                    w[0] = 0;
                    _rng.Fill(w.Slice(1, 3));
                    used = 4;
                    break;
                case 6: // zero length: a naive walker loops forever here
                    w[0] = RandomKind(); w[1] = 0;
                    used = 2;
                    break;
                case 7: // length 1: would step back onto the length byte
                    w[0] = RandomKind(); w[1] = 1;
                    used = 2;
                    break;
                case 8: // overlong
                    w[0] = RandomKind(); w[1] = (byte)(41 + _rng.Below(215));
                    _rng.Fill(w.Slice(2, 4));
                    used = 6;
                    break;
                case 9: // a kind with no length byte, last in the list
                    w[0] = RandomKind();
                    used = 1;
                    last = true;
                    break;
                case 10: // timestamps with a wrong length
                    w[0] = 8; w[1] = (byte)(_rng.OneIn(2) ? 9 : 11 + _rng.Below(4));
                    _rng.Fill(w.Slice(2, w[1] - 2));
                    used = w[1];
                    break;
                case 11: // MSS with a wrong length
                    w[0] = 2; w[1] = (byte)(_rng.OneIn(2) ? 2 + _rng.Below(2) : 5 + _rng.Below(3));
                    _rng.Fill(w.Slice(2, w[1] - 2));
                    used = w[1];
                    break;
                case 12: // window scale with a wrong length
                    w[0] = 3; w[1] = (byte)(_rng.OneIn(2) ? 2 : 4 + _rng.Below(3));
                    _rng.Fill(w.Slice(2, w[1] - 2));
                    used = w[1];
                    break;
                case 13: // TFO under an experimental kind (RFC 6994)
                    w[0] = (byte)(253 + _rng.Below(2)); w[1] = (byte)(4 + _rng.Below(15)); w[2] = 0xF9; w[3] = 0x89;
                    _rng.Fill(w.Slice(4, w[1] - 4));
                    used = w[1];
                    break;
                case 14: // experimental kind too short to hold an ExID
                    w[0] = (byte)(253 + _rng.Below(2)); w[1] = (byte)(2 + _rng.Below(2)); w[2] = 0xF9;
                    used = w[1];
                    break;
                case 15: // experimental kind with another ExID
                    w[0] = 254; w[1] = 6; BinaryPrimitives.WriteUInt16BigEndian(w[2..], _rng.NextUShort()); w[4] = 0; w[5] = 0;
                    used = 6;
                    break;
                case 16: // TFO
                    w[0] = 34; w[1] = (byte)(2 + _rng.Below(17));
                    _rng.Fill(w.Slice(2, w[1] - 2));
                    used = w[1];
                    break;
                case 17: // MPTCP
                    w[0] = 30; w[1] = (byte)(3 + _rng.Below(22));
                    _rng.Fill(w.Slice(2, w[1] - 2));
                    used = w[1];
                    break;
                case 18: // SACK blocks on a SYN
                    w[0] = 5; w[1] = (byte)(2 + 8 * (1 + _rng.Below(4)));
                    _rng.Fill(w.Slice(2, w[1] - 2));
                    used = w[1];
                    break;
                case 19: // raw bytes
                    used = 1 + _rng.Below(12);
                    _rng.Fill(w[..used]);
                    break;
                case 20: // a run of NOPs
                    used = 4 + _rng.Below(30);
                    w[..used].Fill(1);
                    break;
                case 21: // the same option twice: the last one wins
                    w[0] = 8; w[1] = 10; _rng.Fill(w.Slice(2, 8));
                    w[10] = 8; w[11] = 10; _rng.Fill(w.Slice(12, 8));
                    used = 20;
                    break;
                case 22: // small random kinds and lengths
                    used = 2 + _rng.Below(10);
                    for (int j = 0; j < used; j++)
                        w[j] = (byte)_rng.Below(12);
                    break;
                default: // maximal-length unknown kind
                    w[0] = (byte)(35 + _rng.Below(200)); w[1] = (byte)(40 - n);
                    if (w[1] >= 2)
                        _rng.Fill(w.Slice(2, w[1] - 2));
                    used = Math.Max(2, (int)w[1]);
                    break;
            }
            n += used;
            if (last)
                break;
        }
        return o[..Math.Min(n, 40)];
    }

    private byte RandomKind() => _rng.Below(3) switch
    {
        0 => (byte)(2 + _rng.Below(7)),   // a known kind 2..8
        1 => (byte)(_rng.OneIn(2) ? 30 : 34),
        _ => (byte)(9 + _rng.Below(247)),
    };

    /// <summary>One mutation of the datagram in _buffer; returns its new length.</summary>
    private int Mutate(int length)
    {
        Span<byte> p = _buffer;
        int ihl = length > 0 ? (p[0] & 0x0F) * 4 : 20;
        switch (_rng.Below(19))
        {
            case 18: // inside an ICMP error: type/code, the quoted header's IHL, protocol, ports, or a shorter quote
                if (length >= ihl + 8 + 20 && ihl >= 20 && p[9] == 1)
                {
                    int q = ihl + 8;
                    switch (_rng.Below(5))
                    {
                        case 0: p[ihl] = (byte)_rng.Below(20); p[ihl + 1] = (byte)_rng.Below(16); break;
                        case 1: p[q] = _rng.OneIn(2) ? (byte)(0x40 | _rng.Below(16)) : (byte)_rng.Next(); break;
                        case 2: p[q + 9] = (byte)_rng.Below(20); break;
                        case 3:
                            int qihl = Math.Max(20, (p[q] & 0x0F) * 4);
                            if (length >= q + qihl + 4)
                                BinaryPrimitives.WriteUInt16BigEndian(p[(q + qihl + 2 * _rng.Below(2))..],
                                    _rng.OneIn(2) ? _slots[_rng.Below(SlotCount)].Port(_rng.OneIn(2)) : (ushort)_rng.Next());
                            break;
                        default:
                            int cut = q + _rng.Below(length - q + 1);
                            BinaryPrimitives.WriteUInt16BigEndian(p[2..], (ushort)cut);
                            return cut;
                    }
                }
                break;
            case 0: // bit flip
                if (length > 0)
                    p[_rng.Below(length)] ^= (byte)(1 << _rng.Below(8));
                break;
            case 1: // byte set, biased to the headers
                if (length > 0)
                    p[_rng.Below(Math.Min(length, _rng.OneIn(2) ? 60 : length))] = (byte)_rng.Next();
                break;
            case 2: // truncate
                return _rng.Below(length + 1);
            case 3: // trailing bytes (link padding), sometimes counted in the total length
                {
                    int extra = Math.Min(1 + _rng.Below(64), p.Length - length);
                    _rng.Fill(p.Slice(length, extra));
                    if (length >= 4 && _rng.OneIn(2))
                        BinaryPrimitives.WriteUInt16BigEndian(p[2..], (ushort)(length + extra));
                    return length + extra;
                }
            case 4: // IPv4 total length
                if (length >= 4)
                {
                    int v = _rng.Below(9) switch
                    {
                        0 => 0, 1 => 19, 2 => ihl + 19, 3 => ihl + 20, 4 => length + 1, 5 => length - 1,
                        6 => 65535, 7 => ihl + 20 + _rng.Below(41), _ => (int)(_rng.Next() & 0xFFFF),
                    };
                    BinaryPrimitives.WriteUInt16BigEndian(p[2..], (ushort)Math.Clamp(v, 0, 65535));
                }
                break;
            case 5: // IHL
                if (length > 0)
                    p[0] = (byte)((p[0] & 0xF0) | _rng.Below(16));
                break;
            case 6: // version
                if (length > 0)
                    p[0] = (byte)((_rng.OneIn(2) ? 6 : _rng.Below(16)) << 4 | (p[0] & 0x0F));
                break;
            case 7: // protocol
                if (length > 9)
                    p[9] = _rng.Below(3) switch { 0 => 17, 1 => 1, _ => (byte)_rng.Next() };
                break;
            case 8: // fragments
                if (length > 7)
                {
                    ushort ff = _rng.Below(4) switch
                    {
                        0 => 0x2000,                                      // first fragment (MF)
                        1 => (ushort)(1 + _rng.Below(0x1FFF)),            // last fragment
                        2 => (ushort)(0x2000 | (1 + _rng.Below(0x1FFF))), // middle fragment
                        _ => 0x8000,                                      // the reserved bit
                    };
                    BinaryPrimitives.WriteUInt16BigEndian(p[6..], ff);
                }
                break;
            case 9: // TCP data offset
                if (length > ihl + 12 && ihl >= 20)
                    p[ihl + 12] = (byte)(_rng.Below(16) << 4 | (p[ihl + 12] & 0x0F));
                break;
            case 10: // TCP flags
                if (length > ihl + 13 && ihl >= 20)
                {
                    p[ihl + 13] = _rng.Below(5) switch
                    {
                        0 => (byte)(TcpFlags.Syn | TcpFlags.Fin),
                        1 => (byte)(TcpFlags.Syn | TcpFlags.Rst),
                        2 => 0xFF,
                        3 => 0,
                        _ => (byte)_rng.Next(),
                    };
                }
                break;
            case 11: // replace the option bytes in place with a hostile list
                if (ihl >= 20 && length > ihl + 12)
                {
                    int doff = (p[ihl + 12] >> 4) * 4;
                    int end = Math.Min(length, ihl + doff);
                    int start = ihl + 20;
                    if (end > start)
                    {
                        var area = p[start..end];
                        var evil = SynOptions(evil: true);
                        area.Fill(1);
                        evil[..Math.Min(evil.Length, area.Length)].CopyTo(area[Math.Max(0, area.Length - evil.Length)..]);
                    }
                }
                break;
            case 12: // sequence / acknowledgment numbers
                if (length >= ihl + 12 && ihl >= 20)
                    BinaryPrimitives.WriteUInt32BigEndian(p[(ihl + 4 + 4 * _rng.Below(2))..], _rng.NextUInt());
                break;
            case 13: // ports: another slot's, or random
                if (length >= ihl + 4 && ihl >= 20)
                    BinaryPrimitives.WriteUInt16BigEndian(p[(ihl + 2 * _rng.Below(2))..],
                        _rng.OneIn(2) ? _slots[_rng.Below(SlotCount)].Port(_rng.OneIn(2)) : (ushort)_rng.Next());
                break;
            case 14: // addresses: swapped, or another peer
                if (length >= 20)
                {
                    if (_rng.OneIn(2))
                    {
                        uint src = BinaryPrimitives.ReadUInt32BigEndian(p[12..]);
                        BinaryPrimitives.WriteUInt32BigEndian(p[12..], BinaryPrimitives.ReadUInt32BigEndian(p[16..]));
                        BinaryPrimitives.WriteUInt32BigEndian(p[16..], src);
                    }
                    else
                    {
                        BinaryPrimitives.WriteUInt32BigEndian(p[12..], PeerAddress(_rng.Below(2 * PeerPool)));
                    }
                }
                break;
            case 15: // window
                if (length >= ihl + 16 && ihl >= 20)
                    BinaryPrimitives.WriteUInt16BigEndian(p[(ihl + 14)..], _rng.OneIn(2) ? (ushort)0 : (ushort)65535);
                break;
            case 16: // checksum fields set to the two zeros
                if (length >= ihl + 18 && ihl >= 20)
                    BinaryPrimitives.WriteUInt16BigEndian(p[(ihl + 16)..], _rng.OneIn(2) ? (ushort)0 : (ushort)0xFFFF);
                break;
            default: // IPv4 options: grow IHL and shift the TCP header down, keeping the total length right
                if (ihl == 20 && length >= 40 && length + 4 * (1 + 3) <= p.Length)
                {
                    int words = 1 + _rng.Below(3);
                    int grow = 4 * words;
                    p[20..length].CopyTo(p[(20 + grow)..]);
                    p.Slice(20, grow).Fill(1); // IP NOP options
                    if (_rng.OneIn(3))
                        p[20] = (byte)_rng.Next();
                    p[0] = (byte)((p[0] & 0xF0) | (5 + words));
                    length += grow;
                    BinaryPrimitives.WriteUInt16BigEndian(p[2..], (ushort)length);
                }
                break;
        }
        return length;
    }

    // ------------------------------------------------------------------ report

    private void PrintSummary(TimeSpan elapsed)
    {
        var inv = CultureInfo.InvariantCulture;
        Console.WriteLine(string.Create(inv,
            $"inputs: {_structured:N0} structured ({_mutated:N0} mutated), {_junk:N0} random; {_validInputs:N0} with correct checksums"));
        Console.WriteLine(string.Create(inv,
            $"parsers: TcpPacket.TryParse ok {_parsed:N0}; IcmpTooBig.TryParse ok {_icmpParsed:N0}; TcpSynOptions.TryParse ok {_synOptionsOk:N0}; TcpTimestamps.TryFind found {_timestampsFound:N0}"));
        Console.WriteLine("SpliceEngine.Process results:");
        foreach (var r in Reasons)
            Console.WriteLine(string.Create(inv, $"  {r,-20} {_results[(int)r],12:N0}"));
        Console.WriteLine(string.Create(inv,
            $"engine output: {_sender.SynAcks:N0} SYN-ACKs, {_sender.Relayed - _sender.Icmp:N0} segments and {_sender.Icmp:N0} ICMP errors ({_sender.QuotesVerified:N0} quoting whole segments) relayed ({_sender.Verified:N0} of them from inputs with correct checksums, so checked for correct ones), {_sender.Refused:N0} refused by the fake kernel"));
        var reasons = string.Join(", ", _releaseReasons.OrderBy(k => k.Key, StringComparer.Ordinal).Select(k => $"{k.Key} {k.Value:N0}"));
        Console.WriteLine(string.Create(inv,
            $"links: {_linksOk:N0} made, {_linksRefused:N0} refused as expected, {_releases:N0} released ({reasons}); {_unlinks:N0} unlink calls, {_sweeps:N0} sweeps; {_flows.Count:N0} flows re-probed at the end"));

        using var stream = new MemoryStream();
        using (var w = new Utf8JsonWriter(stream))
        {
            w.WriteStartObject();
            w.WriteString("tool", "glass-bench");
            w.WriteString("command", "fuzz");
            w.WriteNumber("seed", _seed);
            w.WriteNumber("inputs", _inputs);
            w.WriteBoolean("ok", _violation is null);
            w.WriteNumber("parsed", _parsed);
            w.WriteNumber("validChecksums", _validInputs);
            w.WriteStartObject("results");
            foreach (var r in Reasons)
                w.WriteNumber(r.ToString(), _results[(int)r]);
            w.WriteEndObject();
            w.WriteNumber("synAcks", _sender.SynAcks);
            w.WriteNumber("relayed", _sender.Relayed - _sender.Icmp);
            w.WriteNumber("icmpRelayed", _sender.Icmp);
            w.WriteNumber("links", _linksOk);
            w.WriteStartObject("releases");
            foreach (var (k, v) in _releaseReasons.OrderBy(k => k.Key, StringComparer.Ordinal))
                w.WriteNumber(k, v);
            w.WriteEndObject();
            w.WriteNumber("elapsedSeconds", Math.Round(elapsed.TotalSeconds, 2));
            w.WriteEndObject();
        }
        Console.WriteLine(Encoding.UTF8.GetString(stream.ToArray()));
    }
}
