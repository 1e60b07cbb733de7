using Glass.Packets;
using Glass.Translator;
using static Glass.Tests.Translator.TestPackets;

namespace Glass.Tests.Translator;

public sealed class SpliceEngineTests
{
    private static readonly uint Router = Ipv4.Parse("203.0.113.1");
    private static readonly uint PeerA = Ipv4.Parse("203.0.113.2");
    private static readonly uint PeerB = Ipv4.Parse("198.51.100.7");
    private const ushort PortA = 60000, PortB = 60001, SrcA = 40001, SrcB = 50002;
    private const uint IsnA = 0x1000_0000;
    private static readonly uint IsnB = 0xFFFF_FF00; // wraps around 2^32 during the tests

    private readonly FakeKernel _kernel = new();
    private readonly FakeClock _clock = new();
    private readonly List<LinkRelease> _released = new();
    private readonly SpliceEngine _engine;

    public SpliceEngineTests()
    {
        _engine = new SpliceEngine(_kernel, _clock, new SpliceOptions
        {
            PendingTimeout = TimeSpan.FromSeconds(60),
            IdleTimeout = TimeSpan.FromHours(2),
            TimeWait = TimeSpan.FromSeconds(30),
        });
        _engine.Released += _released.Add;
    }

    private byte[] SynA(uint isn = IsnA, ushort src = SrcA) => Tcp(PeerA, src, Router, PortA, isn, 0, TcpFlags.Syn, 64240, LinuxSynOptions(1460, 111, 7));
    private byte[] SynB() => Tcp(PeerB, SrcB, Router, PortB, IsnB, 0, TcpFlags.Syn, 65535, LinuxSynOptions(1400, 222, 9));

    private byte[] AckA() => Tcp(PeerA, SrcA, Router, PortA, IsnA + 1, IsnB + 1, TcpFlags.Ack);

    /// <summary>Both SYNs: A (the connector) is answered at once; B waits until A proved itself.</summary>
    private void Handshake()
    {
        Assert.True(_engine.Link(PeerA, PortA, PeerB, PortB).Success);
        Assert.Equal(DropReason.WaitingForPeer, _engine.Process(SynA()));
        Assert.Empty(_kernel.Sent);
        Assert.Equal(DropReason.WaitingForPeer, _engine.Process(SynB()));
        Assert.Equal(PeerA, Assert.Single(_kernel.Sent).Destination);
    }

    /// <summary>The handshake, then both peers acknowledge their SYN-ACKs (B with a 1000-byte window, scaled by 9).</summary>
    private void Established()
    {
        Handshake();
        Assert.Equal(DropReason.None, _engine.Process(AckA()));
        Assert.Equal(DropReason.None, _engine.Process(Tcp(PeerB, SrcB, Router, PortB, IsnB + 1, IsnA + 1, TcpFlags.Ack, 1000)));
        Assert.Equal(SessionState.Established, Assert.Single(_engine.GetSessions()).State);
    }

    [Fact]
    public void BothSynsAreAnsweredWithTheOtherSidesIsnAndMirroredOptions()
    {
        Handshake();
        // A's acknowledgment crosses right after B's SYN-ACK.
        Assert.Equal(DropReason.None, _engine.Process(AckA()));
        Assert.Equal(3, _kernel.Sent.Count);
        Assert.Equal((PeerB, TcpFlags.Ack), (_kernel.Sent[2].Destination, _kernel.Parse(2).Flags));
        var toA = _kernel.Parse(0);
        var toB = _kernel.Parse(1);

        Assert.Equal(PeerA, _kernel.Sent[0].Destination);
        Assert.Equal((Router, PortA, PeerA, SrcA), (toA.SourceAddress, toA.SourcePort, toA.DestinationAddress, toA.DestinationPort));
        Assert.Equal(TcpFlags.Syn | TcpFlags.Ack, toA.Flags);
        Assert.Equal(IsnB, toA.Sequence);
        Assert.Equal(IsnA + 1, toA.Acknowledgment);
        Assert.Equal(65535, toA.Window); // B's SYN window

        Assert.Equal((Router, PortB, PeerB, SrcB), (toB.SourceAddress, toB.SourcePort, toB.DestinationAddress, toB.DestinationPort));
        Assert.Equal(TcpFlags.Syn | TcpFlags.Ack, toB.Flags);
        Assert.Equal(IsnA, toB.Sequence);
        Assert.Equal(IsnB + 1, toB.Acknowledgment);

        Assert.True(TcpSynOptions.TryParse(_kernel.Sent[0].Packet.AsSpan(toA.OptionsOffset, toA.OptionsLength), out var oa));
        Assert.Equal(1400, oa.Mss);          // the smaller of the two
        Assert.Equal(9, oa.WindowScale);     // B's shift, for B's windows
        Assert.True(oa.SackPermitted);
        Assert.True(oa.HasTimestamps);
        Assert.Equal(222u, oa.TsVal);        // B's clock
        Assert.Equal(111u, oa.TsEcr);        // echoing A
        Assert.True(TcpSynOptions.TryParse(_kernel.Sent[1].Packet.AsSpan(toB.OptionsOffset, toB.OptionsLength), out var ob));
        Assert.Equal(7, ob.WindowScale);
        Assert.Equal(111u, ob.TsVal);
        Assert.Equal(222u, ob.TsEcr);
    }

    [Fact]
    public void SegmentsAreRelayedWithOnlyAddressesPortsAndChecksumsRewritten()
    {
        Handshake();
        var payload = new byte[1000];
        new Random(1).NextBytes(payload);
        var data = Tcp(PeerA, SrcA, Router, PortA, IsnA + 1, IsnB + 1, TcpFlags.Ack | TcpFlags.Psh, 501, null, payload);

        // A's first segment carries data: it proves A, B gets its SYN-ACK, then the data crosses.
        Assert.Equal(DropReason.None, _engine.Process(data));
        Assert.Equal((PeerB, TcpFlags.Syn | TcpFlags.Ack, IsnA), (_kernel.Sent[1].Destination, _kernel.Parse(1).Flags, _kernel.Parse(1).Sequence));

        var sent = _kernel.Parse(2);
        Assert.Equal(PeerB, _kernel.Sent[2].Destination);
        Assert.Equal((Router, PortB, PeerB, SrcB), (sent.SourceAddress, sent.SourcePort, sent.DestinationAddress, sent.DestinationPort));
        Assert.Equal(IsnA + 1, sent.Sequence);
        Assert.Equal(IsnB + 1, sent.Acknowledgment);
        Assert.Equal(501, sent.Window);
        Assert.Equal(payload, _kernel.Sent[2].Packet.AsSpan(sent.TotalLength - 1000, 1000).ToArray());

        var back = Tcp(PeerB, SrcB, Router, PortB, IsnB + 1, IsnA + 1001, TcpFlags.Ack, 300);
        Assert.Equal(DropReason.None, _engine.Process(back));
        var b = _kernel.Parse(3);
        Assert.Equal((Router, PortA, PeerA, SrcA), (b.SourceAddress, b.SourcePort, b.DestinationAddress, b.DestinationPort));
        var s = Assert.Single(_engine.GetSessions());
        Assert.Equal(SessionState.Established, s.State);
        Assert.Equal(1000, s.BytesFromA);
    }

    [Fact]
    public void ARetransmittedSynGetsTheSameSynAckAgain()
    {
        Handshake();
        Assert.Equal(DropReason.None, _engine.Process(SynA()));
        Assert.Equal(2, _kernel.Sent.Count);
        Assert.Equal(_kernel.Sent[0].Packet, _kernel.Sent[1].Packet);

        // B's, once it was answered (A proved itself; A's ACK crossed after B's SYN-ACK).
        Assert.Equal(DropReason.None, _engine.Process(AckA()));
        Assert.Equal(DropReason.None, _engine.Process(SynB()));
        Assert.Equal(5, _kernel.Sent.Count);
        Assert.Equal(PeerB, _kernel.Sent[2].Destination);
        Assert.Equal(_kernel.Sent[2].Packet, _kernel.Sent[4].Packet);
    }

    [Fact]
    public void ASynWithANewIsnAfterTheAnswerIsRefused()
    {
        Handshake();
        Assert.Equal(DropReason.EndpointBusy, _engine.Process(SynA(isn: 5)));
        Assert.Single(_kernel.Sent);
    }

    [Fact]
    public void ASecondAttemptBeforeThePeerArrivesIsAnsweredAndTheOneThatAcknowledgesWins()
    {
        Assert.True(_engine.Link(PeerA, PortA, PeerB, PortB).Success);
        _engine.Process(SynA());
        _engine.Process(SynA(isn: 77, src: 40009));
        Assert.Equal(DropReason.WaitingForPeer, _engine.Process(SynB()));
        // Both of A's SYNs get B's ISN; B waits, as A's ISN is not settled yet.
        Assert.Equal(2, _kernel.Sent.Count);
        Assert.Equal((SrcA, IsnB), (_kernel.Parse(0).DestinationPort, _kernel.Parse(0).Sequence));
        Assert.Equal((40009, IsnB, 78u), (_kernel.Parse(1).DestinationPort, _kernel.Parse(1).Sequence, _kernel.Parse(1).Acknowledgment));

        // The new attempt acknowledges its SYN-ACK: B is answered with its ISN (the ACK follows).
        Assert.Equal(DropReason.None, _engine.Process(Tcp(PeerA, 40009, Router, PortA, 78, IsnB + 1, TcpFlags.Ack)));
        var toB = _kernel.Parse(2);
        Assert.Equal((PeerB, SrcB, 77u, IsnB + 1), (toB.DestinationAddress, toB.DestinationPort, toB.Sequence, toB.Acknowledgment));
        // The abandoned source port no longer maps to the session.
        Assert.Equal(DropReason.NoSession, _engine.Process(Tcp(PeerA, SrcA, Router, PortA, IsnA + 1, IsnB + 1, TcpFlags.Ack)));
        Assert.Equal(DropReason.None, _engine.Process(Tcp(PeerB, SrcB, Router, PortB, IsnB + 1, 78, TcpFlags.Ack)));
        Assert.Equal(SessionState.Established, Assert.Single(_engine.GetSessions()).State);
    }

    [Fact]
    public void UnlinkedSynsAndStraySegmentsAreDroppedAndCounted()
    {
        Assert.Equal(DropReason.NotLinked, _engine.Process(SynA()));
        Assert.Equal(DropReason.NoSession, _engine.Process(Tcp(PeerA, SrcA, Router, PortA, 1, 1, TcpFlags.Ack)));
        Assert.Empty(_kernel.Sent);
        var c = _engine.GetCounters();
        Assert.Equal(1, c.Drops["NotLinked"]);
        Assert.Equal(1, c.Drops["NoSession"]);
        Assert.Equal(0, c.SessionsCreated);
    }

    [Fact]
    public void DataBeforeBothSynsIsDropped()
    {
        Assert.True(_engine.Link(PeerA, PortA, PeerB, PortB).Success);
        _engine.Process(SynA());
        Assert.Equal(DropReason.HandshakeIncomplete, _engine.Process(Tcp(PeerA, SrcA, Router, PortA, IsnA + 1, 0, TcpFlags.Ack)));
        Assert.Empty(_kernel.Sent);
    }

    [Fact]
    public void AResetAtTheExpectedSequenceNumberIsRelayedAndEndsTheSession()
    {
        Established();
        Assert.Equal(DropReason.None, _engine.Process(Tcp(PeerA, SrcA, Router, PortA, IsnA + 1, 0, TcpFlags.Rst)));
        Assert.Equal(PeerB, _kernel.Sent[^1].Destination);
        Assert.Equal(TcpFlags.Rst, _kernel.Parse(_kernel.Sent.Count - 1).Flags);
        var r = Assert.Single(_released);
        Assert.Equal(("reset", PeerA, PortA, PeerB, PortB), (r.Reason, r.PeerA, r.RouterPortA, r.PeerB, r.RouterPortB));
        Assert.Empty(_engine.GetSessions());
    }

    [Fact]
    public void AResetOutsideTheWindowIsDroppedAndTheSessionSurvives()
    {
        // B acknowledged A's ISN+1 with a 1000-byte window (scaled by B's shift 9: 512000 bytes).
        Established();
        var sent = _kernel.Sent.Count;
        Assert.Equal(DropReason.RstOutOfWindow, _engine.Process(Tcp(PeerA, SrcA, Router, PortA, IsnA + 1 + 512000, 0, TcpFlags.Rst)));
        Assert.Equal(sent, _kernel.Sent.Count);
        Assert.Empty(_released);
        Assert.Single(_engine.GetSessions());
    }

    [Fact]
    public void AfterBothFinsAreAcknowledgedTheMappingLingersThenIsReleased()
    {
        Established();
        _engine.Process(Tcp(PeerA, SrcA, Router, PortA, IsnA + 1, IsnB + 1, TcpFlags.Fin | TcpFlags.Ack));
        Assert.Equal(SessionState.Closing, _engine.GetSessions()[0].State);
        // B keeps sending after A's half-close, then closes too (IsnB + 1 wraps past 2^32).
        _engine.Process(Tcp(PeerB, SrcB, Router, PortB, IsnB + 1, IsnA + 2, TcpFlags.Ack, 100, null, new byte[300]));
        _engine.Process(Tcp(PeerB, SrcB, Router, PortB, IsnB + 301, IsnA + 2, TcpFlags.Fin | TcpFlags.Ack));
        Assert.Equal(SessionState.Closing, _engine.GetSessions()[0].State);
        _engine.Process(Tcp(PeerA, SrcA, Router, PortA, IsnA + 2, IsnB + 302, TcpFlags.Ack));
        Assert.Equal(SessionState.TimeWait, _engine.GetSessions()[0].State);

        _clock.Advance(TimeSpan.FromSeconds(29));
        Assert.Equal(0, _engine.Sweep());
        // A retransmitted FIN during the linger still crosses, and the linger starts over.
        Assert.Equal(DropReason.None, _engine.Process(Tcp(PeerB, SrcB, Router, PortB, IsnB + 301, IsnA + 2, TcpFlags.Fin | TcpFlags.Ack)));
        Assert.Equal(SessionState.TimeWait, _engine.GetSessions()[0].State);
        _clock.Advance(TimeSpan.FromSeconds(29));
        Assert.Equal(0, _engine.Sweep());
        _clock.Advance(TimeSpan.FromSeconds(1));
        Assert.Equal(1, _engine.Sweep());
        Assert.Equal("closed", Assert.Single(_released).Reason);
        Assert.Equal(DropReason.NoSession, _engine.Process(Tcp(PeerA, SrcA, Router, PortA, IsnA + 2, IsnB + 302, TcpFlags.Ack)));
    }

    [Fact]
    public void AnUnpairedLinkExpiresAndFreesItsPorts()
    {
        Assert.True(_engine.Link(PeerA, PortA, PeerB, PortB).Success);
        _engine.Process(SynA());
        _clock.Advance(TimeSpan.FromSeconds(59));
        Assert.Equal(0, _engine.Sweep());
        _clock.Advance(TimeSpan.FromSeconds(1));
        Assert.Equal(1, _engine.Sweep());
        Assert.Equal("unpaired", Assert.Single(_released).Reason);
        Assert.True(_engine.Link(PeerA, PortA, PeerB, PortB).Success, "the same pairs can be linked again");
        Assert.Equal(DropReason.WaitingForPeer, _engine.Process(SynA()));
    }

    [Fact]
    public void AnIdleEstablishedSessionExpiresOnlyAfterTheIdleTimeout()
    {
        Established();
        _clock.Advance(TimeSpan.FromHours(1));
        _engine.Process(Tcp(PeerA, SrcA, Router, PortA, IsnA, IsnB + 1, TcpFlags.Ack)); // a keepalive
        _clock.Advance(TimeSpan.FromHours(1.9));
        Assert.Equal(0, _engine.Sweep());
        _clock.Advance(TimeSpan.FromHours(0.1));
        Assert.Equal(1, _engine.Sweep());
        Assert.Equal("idle", Assert.Single(_released).Reason);
    }

    [Fact]
    public void LinkingAPairThatIsInUseIsRefused()
    {
        Assert.True(_engine.Link(PeerA, PortA, PeerB, PortB).Success);
        var r = _engine.Link(PeerA, PortA, PeerB, 60002);
        Assert.False(r.Success);
        Assert.Equal("port-in-use", r.ErrorCode);
        Assert.Equal("bad-link", _engine.Link(PeerA, PortA, PeerA, PortA).ErrorCode);
    }

    [Fact]
    public void TheSessionLimitIsEnforced()
    {
        var engine = new SpliceEngine(_kernel, _clock, new SpliceOptions { MaxSessions = 2 });
        Assert.True(engine.Link(PeerA, 1, PeerB, 1).Success);
        Assert.True(engine.Link(PeerA, 2, PeerB, 2).Success);
        Assert.Equal("full", engine.Link(PeerA, 3, PeerB, 3).ErrorCode);
    }

    [Fact]
    public void UnlinkEndsTheSessionAndReportsIt()
    {
        Assert.True(_engine.Link(PeerA, PortA, PeerB, PortB).Success);
        Assert.True(_engine.Unlink(PeerB, PortB));
        Assert.False(_engine.Unlink(PeerB, PortB));
        Assert.Equal("unlinked", Assert.Single(_released).Reason);
    }

    [Fact]
    public void ASendTheKernelRefusesIsCountedNotThrown()
    {
        Handshake();
        _kernel.Refuse = true;
        // A's ACK proves A: neither B's SYN-ACK nor the ACK could be sent.
        Assert.Equal(DropReason.SendFailed, _engine.Process(AckA()));
        Assert.Equal(2, _engine.GetCounters().Drops["SendFailed"]);
        // B's retransmitted SYN gets the SYN-ACK it was answered with.
        _kernel.Refuse = false;
        Assert.Equal(DropReason.None, _engine.Process(SynB()));
        var toB = _kernel.Parse(1);
        Assert.Equal((PeerB, SrcB, TcpFlags.Syn | TcpFlags.Ack, IsnA), (_kernel.Sent[1].Destination, toB.DestinationPort, toB.Flags, toB.Sequence));
    }

    [Fact]
    public void GarbageNeverThrowsAndNeverCreatesState()
    {
        Handshake();
        var rng = new Random(7);
        var good = Tcp(PeerA, SrcA, Router, PortA, IsnA + 1, IsnB + 1, TcpFlags.Ack, 100, null, new byte[40]);
        for (var i = 0; i < 20000; i++)
        {
            byte[] p;
            if (i % 2 == 0)
            {
                p = new byte[rng.Next(0, 120)];
                rng.NextBytes(p);
            }
            else
            {
                p = (byte[])good.Clone();
                for (var k = rng.Next(1, 6); k > 0; k--)
                    p[rng.Next(p.Length)] = (byte)rng.Next(256);
            }
            _engine.Process(p);
        }
        Assert.Single(_engine.GetSessions());
        Assert.True(_engine.GetCounters().Drops["Malformed"] > 0);
    }

    [Fact]
    public void OptionsAreOfferedOnlyWhenBothSidesOfferedThem()
    {
        var a = new TcpSynOptions { Mss = 0, WindowScale = 7, SackPermitted = true, HasTimestamps = false };
        var b = new TcpSynOptions { Mss = 1460, WindowScale = -1, SackPermitted = true, HasTimestamps = true, TsVal = 9 };
        var toA = SpliceEngine.BuildOptions(a, b);
        Assert.Equal(536, toA.Mss); // A named none: RFC 9293's default bounds both
        Assert.Equal(-1, toA.WindowScale);
        Assert.True(toA.SackPermitted);
        Assert.False(toA.HasTimestamps);
    }

    [Fact]
    public void EcnIsAcceptedOnlyWhenBothSynsAskedForIt()
    {
        Assert.True(_engine.Link(PeerA, PortA, PeerB, PortB).Success);
        _engine.Process(Tcp(PeerA, SrcA, Router, PortA, IsnA, 0, TcpFlags.Syn | TcpFlags.Ece | TcpFlags.Cwr));
        _engine.Process(Tcp(PeerB, SrcB, Router, PortB, IsnB, 0, TcpFlags.Syn));
        Assert.Equal(TcpFlags.Syn | TcpFlags.Ack, _kernel.Parse(0).Flags);

        Assert.True(_engine.Link(PeerA, 60010, PeerB, 60011).Success);
        _engine.Process(Tcp(PeerA, 4, Router, 60010, IsnA, 0, TcpFlags.Syn | TcpFlags.Ece | TcpFlags.Cwr));
        _engine.Process(Tcp(PeerB, 5, Router, 60011, IsnB, 0, TcpFlags.Syn | TcpFlags.Ece | TcpFlags.Cwr));
        Assert.Equal(TcpFlags.Syn | TcpFlags.Ack | TcpFlags.Ece, _kernel.Parse(1).Flags);
        // B's, once A proved itself, too.
        _engine.Process(Tcp(PeerA, 4, Router, 60010, IsnA + 1, IsnB + 1, TcpFlags.Ack));
        Assert.Equal((PeerB, TcpFlags.Syn | TcpFlags.Ack | TcpFlags.Ece), (_kernel.Sent[2].Destination, _kernel.Parse(2).Flags));
    }

    internal static byte[] TooBig(uint from, uint to, byte[] quoted, ushort mtu, byte type = 3, byte code = 4)
    {
        var p = new byte[20 + 8 + quoted.Length];
        p[0] = 0x45;
        System.Buffers.Binary.BinaryPrimitives.WriteUInt16BigEndian(p.AsSpan(2), (ushort)p.Length);
        p[8] = 64;
        p[9] = 1;
        System.Buffers.Binary.BinaryPrimitives.WriteUInt32BigEndian(p.AsSpan(12), from);
        System.Buffers.Binary.BinaryPrimitives.WriteUInt32BigEndian(p.AsSpan(16), to);
        System.Buffers.Binary.BinaryPrimitives.WriteUInt16BigEndian(p.AsSpan(10), Checksum.Compute(p.AsSpan(0, 20)));
        p[20] = type;
        p[21] = code;
        System.Buffers.Binary.BinaryPrimitives.WriteUInt16BigEndian(p.AsSpan(26), mtu);
        quoted.CopyTo(p, 28);
        System.Buffers.Binary.BinaryPrimitives.WriteUInt16BigEndian(p.AsSpan(22), Checksum.Compute(p.AsSpan(20)));
        return p;
    }

    [Fact]
    public void FragmentationNeededForOneLegReachesThePeerOfTheOtherLeg()
    {
        Established();
        var hop = Ipv4.Parse("198.51.100.254");
        // A segment the router relayed to B (as it left the router), quoted whole by a hop on B's leg.
        var relayed = Tcp(Router, PortB, PeerB, SrcB, IsnA + 1, IsnB + 1, TcpFlags.Ack, 500, null, new byte[100]);

        Assert.Equal(DropReason.None, _engine.Process(TooBig(hop, Router, relayed, 1280)));

        var (icmp, dst) = _kernel.Sent[^1];
        Assert.Equal(PeerA, dst);
        Assert.True(IcmpTooBig.TryParse(icmp, out var m));
        Assert.Equal((Router, PeerA, (ushort)1280), (m.Source, m.Destination, m.Mtu));
        Assert.True(Checksum.VerifyIpv4Header(icmp.AsSpan(0, 20)));
        Assert.Equal((ushort)0, Checksum.Compute(icmp.AsSpan(20)));
        // The quoted segment now reads as A sent it, checksums included.
        var quoted = icmp.AsSpan(m.QuotedOffset).ToArray();
        Assert.True(TcpPacket.TryParse(quoted, out var q));
        Assert.Equal((PeerA, SrcA, Router, PortA), (q.SourceAddress, q.SourcePort, q.DestinationAddress, q.DestinationPort));
        Assert.Equal(IsnA + 1, q.Sequence);
        Assert.True(Checksum.VerifyIpv4Header(quoted.AsSpan(0, 20)));
        Assert.True(Checksum.VerifyTcp(quoted, q));
        Assert.Equal(1, _engine.GetCounters().IcmpRelayed);
    }

    [Fact]
    public void IcmpForUnknownFlowsOrOfOtherKindsIsLeftToTheKernel()
    {
        Established();
        var sent = _kernel.Sent.Count;
        // About one of the router's own connections (sshd, the controller): path MTU discovery is the kernel's.
        var own = Tcp(Router, 22, PeerB, 1234, 1, 1, TcpFlags.Ack);
        Assert.Equal(DropReason.LeftToKernel, _engine.Process(TooBig(PeerB, Router, own, 1280)));
        var relayed = Tcp(Router, PortB, PeerB, SrcB, IsnA + 1, IsnB + 1, TcpFlags.Ack);
        Assert.Equal(DropReason.LeftToKernel, _engine.Process(TooBig(PeerB, Router, relayed, 1280, type: 3, code: 1)));
        Assert.Equal(DropReason.LeftToKernel, _engine.Process(TooBig(PeerB, Router, relayed.AsSpan(0, 24).ToArray(), 1280)));
        Assert.Equal(sent, _kernel.Sent.Count);
        var c = _engine.GetCounters();
        Assert.Equal(3, c.IcmpLeftToKernel);
        Assert.False(c.Drops.ContainsKey(nameof(DropReason.LeftToKernel)), "not a drop");
    }

    [Fact]
    public void ForgedOrCorruptedTooBigErrorsAreNotBelieved()
    {
        // B acknowledged up to A's ISN+1, all A sent.
        Established();
        var sent = _kernel.Sent.Count;
        var blind = Tcp(Router, PortB, PeerB, SrcB, IsnA + 1 + (500u << 9) + 7, IsnB + 1, TcpFlags.Ack);
        Assert.Equal(DropReason.IcmpUnhandled, _engine.Process(TooBig(PeerB, Router, blind, 1280)));
        var inWindow = Tcp(Router, PortB, PeerB, SrcB, IsnA + 1, IsnB + 1, TcpFlags.Ack);
        Assert.Equal(DropReason.IcmpUnhandled, _engine.Process(TooBig(PeerB, Router, inWindow, 40)));
        var corrupted = TooBig(PeerB, Router, inWindow, 1280);
        corrupted[^1] ^= 0x55;
        Assert.Equal(DropReason.LeftToKernel, _engine.Process(corrupted)); // the kernel checks it and drops it too
        Assert.Equal(sent, _kernel.Sent.Count);
        Assert.Equal(DropReason.None, _engine.Process(TooBig(PeerB, Router, inWindow, 1280)));
    }

    [Fact]
    public void ASynWithFinIsAProbeNotAHandshake()
    {
        Assert.True(_engine.Link(PeerA, PortA, PeerB, PortB).Success);
        Assert.Equal(DropReason.NoSession, _engine.Process(Tcp(PeerA, SrcA, Router, PortA, IsnA, 0, TcpFlags.Syn | TcpFlags.Fin)));
        Assert.Equal(SessionState.Pending, Assert.Single(_engine.GetSessions()).State);
        Assert.Equal("203.0.113.2", _engine.GetSessions()[0].PeerA); // no source port learnt
    }

    [Fact]
    public void AResetThatCouldNotBeSentKeepsTheSession()
    {
        // Before B acknowledged its SYN-ACK (A did, for B's ISN): its host refusing it (RST at
        // ISN+1) ends the link, and crosses to A, exact there.
        Handshake();
        Assert.Equal(DropReason.None, _engine.Process(AckA()));
        _kernel.Refuse = true;
        Assert.Equal(DropReason.SendFailed, _engine.Process(Tcp(PeerB, SrcB, Router, PortB, IsnB + 1, 0, TcpFlags.Rst)));
        Assert.Single(_engine.GetSessions());
        _kernel.Refuse = false;
        Assert.Equal(DropReason.None, _engine.Process(Tcp(PeerB, SrcB, Router, PortB, IsnB + 1, 0, TcpFlags.Rst)));
        Assert.Equal((PeerA, TcpFlags.Rst), (_kernel.Sent[^1].Destination, _kernel.Parse(_kernel.Sent.Count - 1).Flags));
        Assert.Empty(_engine.GetSessions());
    }

    [Fact]
    public void FastOpenAndMptcpAreStrippedAndSynDataIsNotAcknowledged()
    {
        Assert.True(_engine.Link(PeerA, PortA, PeerB, PortB).Success);
        // A: MSS, a TFO cookie (kind 34), MP_CAPABLE (kind 30), and 100 bytes of SYN data.
        var options = new byte[] { 2, 4, 5, 0xB4, 34, 10, 1, 2, 3, 4, 5, 6, 7, 8, 30, 4, 0, 0x81, 1, 0 };
        _engine.Process(Tcp(PeerA, SrcA, Router, PortA, IsnA, 0, TcpFlags.Syn, 64240, options, new byte[100]));
        _engine.Process(Tcp(PeerB, SrcB, Router, PortB, IsnB, 0, TcpFlags.Syn, 64240, new byte[] { 2, 4, 5, 0xB4, 30, 4, 0, 0x81 }));
        var toA = _kernel.Parse(0);
        Assert.Equal(IsnA + 1, toA.Acknowledgment); // the SYN's data is left for A to send again
        Assert.True(TcpSynOptions.TryParse(_kernel.Sent[0].Packet.AsSpan(toA.OptionsOffset, toA.OptionsLength), out var o));
        Assert.False(o.HasFastOpen);
        Assert.False(o.HasMptcp);
        Assert.Equal(1460, o.Mss);
    }

    [Fact]
    public void IpOptionsAreStrippedFromRelayedSegments()
    {
        Established();
        var plain = Tcp(PeerA, SrcA, Router, PortA, IsnA + 1, IsnB + 1, TcpFlags.Ack, 100, null, new byte[] { 1, 2, 3 });
        // Insert four bytes of IPv4 options (NOP NOP NOP EOL): IHL 6.
        var p = new byte[plain.Length + 4];
        plain.AsSpan(0, 20).CopyTo(p);
        p[20] = 1; p[21] = 1; p[22] = 1; p[23] = 0;
        plain.AsSpan(20).CopyTo(p.AsSpan(24));
        p[0] = 0x46;
        System.Buffers.Binary.BinaryPrimitives.WriteUInt16BigEndian(p.AsSpan(2), (ushort)p.Length);
        p[10] = p[11] = 0;
        System.Buffers.Binary.BinaryPrimitives.WriteUInt16BigEndian(p.AsSpan(10), Checksum.Compute(p.AsSpan(0, 24)));

        Assert.Equal(DropReason.None, _engine.Process(p));
        var sent = _kernel.Parse(_kernel.Sent.Count - 1); // checks the IPv4 and TCP checksums
        var bytes = _kernel.Sent[^1].Packet;
        Assert.Equal((20, plain.Length), (sent.IpHeaderLength, bytes.Length));
        Assert.Equal(plain.Length, sent.TotalLength);
        Assert.Equal(0x45, bytes[0]);
        Assert.Equal((Router, PortB, PeerB, SrcB), (sent.SourceAddress, sent.SourcePort, sent.DestinationAddress, sent.DestinationPort));
        Assert.Equal((IsnA + 1, IsnB + 1), (sent.Sequence, sent.Acknowledgment));
        Assert.Equal(new byte[] { 1, 2, 3 }, bytes[^3..]);
        Assert.Equal(1, _engine.GetCounters().IpOptionsStripped);
    }

    [Fact]
    public void RecordRouteAndTimestampOptionsAreStrippedFromResets()
    {
        Established();
        var plain = Tcp(PeerA, SrcA, Router, PortA, IsnA + 1, 0, TcpFlags.Rst);
        // Record Route with two hop addresses of A's side (11 bytes), EOL: IHL 8 (12 option bytes).
        byte[] options = [7, 11, 12, 10, 9, 8, 7, 10, 9, 8, 6, 0];
        var p = new byte[plain.Length + options.Length];
        plain.AsSpan(0, 20).CopyTo(p);
        options.CopyTo(p, 20);
        plain.AsSpan(20).CopyTo(p.AsSpan(20 + options.Length));
        p[0] = 0x48;
        System.Buffers.Binary.BinaryPrimitives.WriteUInt16BigEndian(p.AsSpan(2), (ushort)p.Length);
        p[10] = p[11] = 0;
        System.Buffers.Binary.BinaryPrimitives.WriteUInt16BigEndian(p.AsSpan(10), Checksum.Compute(p.AsSpan(0, 32)));

        Assert.Equal(DropReason.None, _engine.Process(p));
        var sent = _kernel.Parse(_kernel.Sent.Count - 1);
        Assert.Equal((20, 40, TcpFlags.Rst), (sent.IpHeaderLength, _kernel.Sent[^1].Packet.Length, sent.Flags));
        Assert.Equal(-1, _kernel.Sent[^1].Packet.AsSpan().IndexOf(new byte[] { 10, 9, 8 }));
    }

    [Fact]
    public void AHandshakeGetsTheTransitoryTimeFromWhenItBegan()
    {
        Assert.True(_engine.Link(PeerA, PortA, PeerB, PortB).Success);
        _clock.Advance(TimeSpan.FromSeconds(50));
        _engine.Process(SynA());
        _engine.Process(SynB());
        // RFC 5382 REQ-5: a partially open connection may not be dropped before 4 minutes.
        _clock.Advance(TimeSpan.FromSeconds(239)); // 289 s after the link, 239 s into the handshake
        Assert.Equal(0, _engine.Sweep());
        _clock.Advance(TimeSpan.FromSeconds(1));
        Assert.Equal(1, _engine.Sweep());
        Assert.Equal("unpaired", Assert.Single(_released).Reason);
    }

    [Fact]
    public void AnUnpairedHandshakeResetsTheSideThatProvedItself()
    {
        Handshake();
        _engine.Process(AckA());
        var sent = _kernel.Sent.Count;
        _clock.Advance(SpliceOptions.Rfc5382Transitory);
        Assert.Equal(1, _engine.Sweep());
        Assert.Equal("unpaired", Assert.Single(_released).Reason);
        // A, established at its end, is told: a reset at exactly its RCV.NXT.
        var rst = _kernel.Parse(sent);
        Assert.Equal((PeerA, SrcA, TcpFlags.Rst | TcpFlags.Ack, IsnB + 1), (rst.DestinationAddress, rst.DestinationPort, rst.Flags, rst.Sequence));
        Assert.Equal(sent + 1, _kernel.Sent.Count);
    }

    [Fact]
    public void CountersGiveSessionsByState()
    {
        Established();
        Assert.True(_engine.Link(PeerA, 60100, PeerB, 60101).Success);
        var c = _engine.GetCounters();
        Assert.Equal(1, c.SessionsByState["Pending"]);
        Assert.Equal(1, c.SessionsByState["Established"]);
        Assert.Equal(0, c.SessionsByState["TimeWait"]);
        Assert.Equal((1, 1), (c.SessionsPending, c.SessionsActive));
    }

    [Fact]
    public void OncePairedTheSameEndpointsCarryTheNextLinkWhileTheFirstSessionRuns()
    {
        var paired = new List<LinkRelease>();
        _engine.Paired += paired.Add;
        Handshake();
        _engine.Process(AckA());
        Assert.Empty(paired); // not before both proved their SYNs were their own
        _engine.Process(Tcp(PeerB, SrcB, Router, PortB, IsnB + 1, IsnA + 1, TcpFlags.Ack));
        Assert.Equal((LinkRelease.PairedReason, PortA, PortB), (Assert.Single(paired).Reason, paired[0].RouterPortA, paired[0].RouterPortB));

        // The controller may hand the same (peer, router port) pairs to the peers' next connection.
        Assert.True(_engine.Link(PeerA, PortA, PeerB, PortB).Success);
        Assert.Equal(DropReason.WaitingForPeer, _engine.Process(SynA(isn: 7, src: 40777)));
        Assert.Equal(DropReason.WaitingForPeer, _engine.Process(Tcp(PeerB, 50777, Router, PortB, 9, 0, TcpFlags.Syn)));
        Assert.Equal(DropReason.None, _engine.Process(Tcp(PeerA, 40777, Router, PortA, 8, 10, TcpFlags.Ack)));
        Assert.Equal(DropReason.None, _engine.Process(Tcp(PeerB, 50777, Router, PortB, 10, 8, TcpFlags.Ack)));
        Assert.Equal(2, _engine.GetSessions().Count);

        // Both sessions relay, each to its own peer port.
        _engine.Process(Tcp(PeerA, SrcA, Router, PortA, IsnA + 1, IsnB + 1, TcpFlags.Ack));
        Assert.Equal(SrcB, _kernel.Parse(_kernel.Sent.Count - 1).DestinationPort);
        _engine.Process(Tcp(PeerA, 40777, Router, PortA, 8, 10, TcpFlags.Ack));
        Assert.Equal(50777, _kernel.Parse(_kernel.Sent.Count - 1).DestinationPort);

        // Ending the first session leaves the second one's endpoints alone.
        _engine.Process(Tcp(PeerA, SrcA, Router, PortA, IsnA + 1, 0, TcpFlags.Rst));
        Assert.Single(_engine.GetSessions());
        Assert.Equal(DropReason.None, _engine.Process(Tcp(PeerA, 40777, Router, PortA, 8, 10, TcpFlags.Ack)));
        Assert.True(_engine.Link(PeerA, PortA, PeerB, 60050).Success, "the second session paired too, so its pairs are free");
    }

    [Fact]
    public void OnlyLinksNotPairedYetCanBeUnlinked()
    {
        Established();
        Assert.False(_engine.Unlink(PeerA, PortA)); // paired: found by its flows only
        Assert.Single(_engine.GetSessions());

        // Mid-handshake, a side that proved itself hears of the end.
        Assert.True(_engine.Link(PeerA, 60010, PeerB, 60011).Success);
        _engine.Process(Tcp(PeerA, 4, Router, 60010, 100, 0, TcpFlags.Syn));
        _engine.Process(Tcp(PeerB, 5, Router, 60011, 200, 0, TcpFlags.Syn));
        _engine.Process(Tcp(PeerA, 4, Router, 60010, 101, 201, TcpFlags.Ack));
        var sent = _kernel.Sent.Count;
        Assert.True(_engine.Unlink(PeerB, 60011));
        Assert.Equal((PeerA, TcpFlags.Rst | TcpFlags.Ack, 201u), (_kernel.Sent[sent].Destination, _kernel.Parse(sent).Flags, _kernel.Parse(sent).Sequence));
        Assert.Single(_engine.GetSessions());
    }

    [Fact]
    public void TheMssOfferedNeverExceedsWhatTheRoutersLinksCarry()
    {
        var engine = new SpliceEngine(_kernel, _clock, new SpliceOptions { MaxSegmentSize = 1240 });
        Assert.True(engine.Link(PeerA, PortA, PeerB, PortB).Success);
        engine.Process(SynA());
        engine.Process(SynB());
        var toA = _kernel.Parse(0);
        Assert.True(TcpSynOptions.TryParse(_kernel.Sent[0].Packet.AsSpan(toA.OptionsOffset, toA.OptionsLength), out var o));
        Assert.Equal(1240, o.Mss);
    }

    [Fact]
    public void TheRoutersLinkMssComesFromItsInterfacesThatAreUp()
    {
        var root = Directory.CreateTempSubdirectory("glass-sysnet-").FullName;
        try
        {
            void Interface(string name, string state, string mtu)
            {
                Directory.CreateDirectory(Path.Combine(root, name));
                File.WriteAllText(Path.Combine(root, name, "operstate"), state + "\n");
                File.WriteAllText(Path.Combine(root, name, "mtu"), mtu + "\n");
            }
            Interface("lo", "unknown", "65536");
            Interface("eth0", "up", "1500");
            Interface("wg0", "unknown", "1420");
            Interface("eth1", "down", "1280");
            Assert.Equal(1380, TranslatorHost.SmallestLinkMss(root));
            Assert.Equal(0, TranslatorHost.SmallestLinkMss(Path.Combine(root, "missing")));
        }
        finally
        {
            Directory.Delete(root, recursive: true);
        }
    }

    [Fact]
    public void ARestartedTranslatorNeverGivesAnIdTheOneBeforeGave()
    {
        var before = new SpliceEngine(new FakeKernel(), new FakeClock());
        var a = Ipv4.Parse("203.0.113.2");
        var b = Ipv4.Parse("198.51.100.7");
        var old = Enumerable.Range(0, 100).Select(i => before.Link(a, (ushort)(40000 + i), b, (ushort)(41000 + i)).SessionId).ToList();
        // The next start comes at least a millisecond later (a start takes far longer).
        var startedAt = DateTimeOffset.UtcNow.ToUnixTimeMilliseconds();
        while (DateTimeOffset.UtcNow.ToUnixTimeMilliseconds() == startedAt)
            Thread.SpinWait(100);
        var after = new SpliceEngine(new FakeKernel(), new FakeClock());
        var first = after.Link(a, 40000, b, 41000).SessionId;
        Assert.True(first > old.Max(), $"id {first} after {old.Max()}");
        Assert.Equal(old.Count, old.Distinct().Count());
    }
}
