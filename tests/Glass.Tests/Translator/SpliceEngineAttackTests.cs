using Glass.Packets;
using Glass.Translator;
using static Glass.Tests.Translator.TestPackets;

namespace Glass.Tests.Translator;

/// <summary>
/// Issue #10, "a state machine a stranger cannot drive": one test per attack a blind stranger
/// could make on the engine, with forged packets whose checksums are right (they must be judged on
/// their sequence numbers, not caught by a checksum).
/// </summary>
public sealed class SpliceEngineAttackTests
{
    private static readonly uint Router = Ipv4.Parse("203.0.113.1");
    private static readonly uint PeerA = Ipv4.Parse("203.0.113.2");
    private static readonly uint PeerB = Ipv4.Parse("198.51.100.7");
    private const ushort PortA = 60000, PortB = 60001, SrcA = 40001, SrcB = 50002, Spoofed = 40666;
    private const uint IsnA = 0x1000_0000, SpoofIsn = 0x5555_0000;
    private static readonly uint IsnB = 0xFFFF_FF00; // wraps around 2^32 during the tests
    // After Established(): B offered a 1000-byte window scaled by its shift 9.
    private const uint WindowB = 1000u << 9;

    private readonly FakeKernel _kernel = new();
    private readonly FakeClock _clock = new();
    private readonly List<LinkRelease> _released = new();
    private readonly SpliceEngine _engine;

    public SpliceEngineAttackTests()
    {
        _engine = new SpliceEngine(_kernel, _clock, new SpliceOptions());
        _engine.Released += _released.Add;
    }

    private static byte[] SynA(uint isn = IsnA, ushort src = SrcA) => Tcp(PeerA, src, Router, PortA, isn, 0, TcpFlags.Syn, 64240, LinuxSynOptions(1460, 111, 7));
    private static byte[] SynB() => Tcp(PeerB, SrcB, Router, PortB, IsnB, 0, TcpFlags.Syn, 65535, LinuxSynOptions(1400, 222, 9));
    private static byte[] FromA(uint seq, uint ack, TcpFlags flags = TcpFlags.Ack, int payload = 0, ushort window = 64240, ushort src = SrcA) =>
        Tcp(PeerA, src, Router, PortA, seq, ack, flags, window, null, new byte[payload]);
    private static byte[] FromB(uint seq, uint ack, TcpFlags flags = TcpFlags.Ack, int payload = 0, ushort window = 1000) =>
        Tcp(PeerB, SrcB, Router, PortB, seq, ack, flags, window, null, new byte[payload]);

    private void Established()
    {
        Assert.True(_engine.Link(PeerA, PortA, PeerB, PortB).Success);
        Assert.Equal(DropReason.WaitingForPeer, _engine.Process(SynA()));
        Assert.Equal(DropReason.WaitingForPeer, _engine.Process(SynB()));
        Assert.Equal(DropReason.None, _engine.Process(FromA(IsnA + 1, IsnB + 1)));
        Assert.Equal(DropReason.None, _engine.Process(FromB(IsnB + 1, IsnA + 1)));
        Assert.Equal(SessionState.Established, State);
    }

    private SessionState State => Assert.Single(_engine.GetSessions()).State;
    private long Ignored(IgnoredReason r) => _engine.GetCounters().Ignored[r.ToString()];

    [Fact]
    public void AForgedAckThenAResetAtItsNumberCannotEndTheSession()
    {
        Established();
        Assert.Equal(DropReason.None, _engine.Process(FromA(IsnA + 1, IsnB + 1, TcpFlags.Ack | TcpFlags.Psh, payload: 1000)));

        // A stranger's ACK "from B" for data A never sent, with the largest window: it crosses (B's
        // peer A will answer it), but the engine's view of B is unchanged...
        var forgedAck = IsnA + 1 + 5_000_000;
        Assert.Equal(DropReason.None, _engine.Process(FromB(IsnB + 1, forgedAck, window: 65535)));
        Assert.Equal(1, Ignored(IgnoredReason.AckUnsent));
        // ...so a reset at that number is outside B's window: dropped, never relayed.
        var sent = _kernel.Sent.Count;
        Assert.Equal(DropReason.RstOutOfWindow, _engine.Process(FromA(forgedAck, 0, TcpFlags.Rst)));
        Assert.Equal(sent, _kernel.Sent.Count);

        // Nor does an ACK with a right number but a blind sequence number widen the window for one.
        Assert.Equal(DropReason.None, _engine.Process(FromB(IsnB + 1 + 100_000_000, IsnA + 1, window: 65535)));
        Assert.Equal(1, Ignored(IgnoredReason.OutOfWindow));
        Assert.Equal(DropReason.RstOutOfWindow, _engine.Process(FromA(IsnA + 1 + 1_000_000, 0, TcpFlags.Rst)));

        Assert.Empty(_released);
        Assert.Equal(SessionState.Established, State);
        // The session still relays, and B's genuine ACK still counts: a reset at it ends the session.
        Assert.Equal(DropReason.None, _engine.Process(FromB(IsnB + 1, IsnA + 1001)));
        Assert.Equal(DropReason.None, _engine.Process(FromA(IsnA + 1001, 0, TcpFlags.Rst)));
        Assert.Equal("reset", Assert.Single(_released).Reason);
    }

    [Fact]
    public void ABlindResetInsideTheWindowCrossesButTheSessionStays()
    {
        Established();
        var sent = _kernel.Sent.Count;
        // In B's window, not at the sequence number B expects: B judges it (RFC 5961 challenge ACK).
        Assert.Equal(DropReason.None, _engine.Process(FromA(IsnA + 1 + 4321, 0, TcpFlags.Rst)));
        Assert.Equal(sent + 1, _kernel.Sent.Count);
        Assert.Equal((PeerB, TcpFlags.Rst), (_kernel.Sent[^1].Destination, _kernel.Parse(sent).Flags));
        Assert.Equal(1, Ignored(IgnoredReason.ResetNotExact));
        Assert.Empty(_released);

        // B's challenge ACK shows the session alive; it outlives the linger.
        Assert.Equal(DropReason.None, _engine.Process(FromB(IsnB + 1, IsnA + 1)));
        _clock.Advance(SpliceOptions.Rfc5382Transitory + TimeSpan.FromMinutes(1));
        Assert.Equal(0, _engine.Sweep());
        Assert.Equal(SessionState.Established, State);
        Assert.Equal(DropReason.None, _engine.Process(FromA(IsnA + 1, IsnB + 1, TcpFlags.Ack | TcpFlags.Psh, payload: 10)));
    }

    [Fact]
    public void AResetInsideTheWindowThatNothingFollowsEndsTheSessionAfterTheTransitoryTime()
    {
        // An endpoint without RFC 5961 takes an in-window reset; nothing crosses after it.
        Established();
        Assert.Equal(DropReason.None, _engine.Process(FromA(IsnA + 1 + 4321, 0, TcpFlags.Rst)));
        _clock.Advance(SpliceOptions.Rfc5382Transitory - TimeSpan.FromSeconds(1));
        Assert.Equal(0, _engine.Sweep());
        _clock.Advance(TimeSpan.FromSeconds(1));
        Assert.Equal(1, _engine.Sweep());
        Assert.Equal("reset", Assert.Single(_released).Reason);
    }

    [Fact]
    public void AResetAtTheEndOfDataStillInFlightEndsTheSessionSoon()
    {
        // A writes and aborts at once: its reset follows data B has not acknowledged yet.
        Established();
        _engine.Process(FromA(IsnA + 1, IsnB + 1, TcpFlags.Ack | TcpFlags.Psh, payload: 1000));
        Assert.Equal(DropReason.None, _engine.Process(FromA(IsnA + 1001, 0, TcpFlags.Rst)));
        Assert.Equal(0, Ignored(IgnoredReason.ResetNotExact));
        // B took it (its RCV.NXT was there); its acknowledgment, sent before, still crosses.
        Assert.Equal(DropReason.None, _engine.Process(FromB(IsnB + 1, IsnA + 1001)));
        _clock.Advance(TimeSpan.FromMilliseconds(SpliceEngine.ResetConfirmMilliseconds - 1));
        Assert.Equal(0, _engine.Sweep());
        _clock.Advance(TimeSpan.FromMilliseconds(1));
        Assert.Equal(1, _engine.Sweep());
        Assert.Equal("reset", Assert.Single(_released).Reason);
    }

    [Fact]
    public void AResetAtTheEndOfLostDataEndsTheSessionWhenTheSenderAnswersTheChallenge()
    {
        Established();
        _engine.Process(FromA(IsnA + 1, IsnB + 1, TcpFlags.Ack | TcpFlags.Psh, payload: 1000));
        Assert.Equal(DropReason.None, _engine.Process(FromA(IsnA + 1001, 0, TcpFlags.Rst)));
        // The data was lost on B's leg: B challenges; A's kernel answers at exactly B's RCV.NXT.
        Assert.Equal(DropReason.None, _engine.Process(FromB(IsnB + 1, IsnA + 1)));
        Assert.Empty(_released);
        Assert.Equal(DropReason.None, _engine.Process(FromA(IsnA + 1, 0, TcpFlags.Rst)));
        Assert.Equal("reset", Assert.Single(_released).Reason);
    }

    [Fact]
    public void AResetBeyondTheWindowIsDroppedAndCounted()
    {
        Established();
        var sent = _kernel.Sent.Count;
        Assert.Equal(DropReason.RstOutOfWindow, _engine.Process(FromA(IsnA + 1 + WindowB, 0, TcpFlags.Rst)));
        Assert.Equal(DropReason.RstOutOfWindow, _engine.Process(FromB(IsnB, 0, TcpFlags.Rst | TcpFlags.Ack))); // one before
        Assert.Equal(sent, _kernel.Sent.Count);
        Assert.Equal(2, _engine.GetCounters().Drops[nameof(DropReason.RstOutOfWindow)]);
        Assert.Equal(SessionState.Established, State);
    }

    [Fact]
    public void ForgedFinsOutsideTheWindowCountForNothing()
    {
        Established();
        // Far ahead of B's window, and behind what B already acknowledged.
        Assert.Equal(DropReason.None, _engine.Process(FromA(IsnA + 1 + 50_000_000, IsnB + 1, TcpFlags.Fin | TcpFlags.Ack)));
        Assert.Equal(DropReason.None, _engine.Process(FromA(IsnA - 1000, IsnB + 1, TcpFlags.Fin | TcpFlags.Ack)));
        Assert.Equal(DropReason.None, _engine.Process(FromB(IsnB - 5000, IsnA + 1, TcpFlags.Fin | TcpFlags.Ack)));
        Assert.Equal(SessionState.Established, State);
        Assert.Equal(1, Ignored(IgnoredReason.OutOfWindow));
        Assert.Equal(2, Ignored(IgnoredReason.FinOutOfWindow));
        _clock.Advance(TimeSpan.FromHours(1));
        Assert.Equal(0, _engine.Sweep());
    }

    [Fact]
    public void AForgedFinPairInTheWindowCannotExpireALiveFlow()
    {
        Established();
        // The worst case: a stranger who hit both windows forges both FINs and both ACKs.
        _engine.Process(FromA(IsnA + 1001, IsnB + 1, TcpFlags.Fin | TcpFlags.Ack));
        Assert.Equal(SessionState.Closing, State);
        _engine.Process(FromB(IsnB + 1, IsnA + 1002));
        _engine.Process(FromB(IsnB + 501, IsnA + 1002, TcpFlags.Fin | TcpFlags.Ack));
        _engine.Process(FromA(IsnA + 1002, IsnB + 502));
        Assert.Equal(SessionState.TimeWait, State);

        // The peers' own data goes on: neither FIN was theirs.
        _clock.Advance(TimeSpan.FromSeconds(10));
        Assert.Equal(DropReason.None, _engine.Process(FromA(IsnA + 1, IsnB + 1, TcpFlags.Ack | TcpFlags.Psh, payload: 100)));
        Assert.Equal(SessionState.Closing, State);
        Assert.Equal(DropReason.None, _engine.Process(FromB(IsnB + 1, IsnA + 101, TcpFlags.Ack | TcpFlags.Psh, payload: 50)));
        Assert.Equal(SessionState.Established, State);
        Assert.Equal(2, Ignored(IgnoredReason.FinRevoked));

        // Well past the TIME_WAIT linger, the session is there, and then closes for real.
        _clock.Advance(SpliceOptions.Rfc5382Transitory * 2);
        Assert.Equal(0, _engine.Sweep());
        _engine.Process(FromA(IsnA + 101, IsnB + 51, TcpFlags.Fin | TcpFlags.Ack));
        _engine.Process(FromB(IsnB + 51, IsnA + 102, TcpFlags.Fin | TcpFlags.Ack));
        _engine.Process(FromA(IsnA + 102, IsnB + 52));
        Assert.Equal(SessionState.TimeWait, State);
        _clock.Advance(SpliceOptions.Rfc5382Transitory);
        Assert.Equal(1, _engine.Sweep());
        Assert.Equal("closed", Assert.Single(_released).Reason);
    }

    [Fact]
    public void ASpoofedSynBeforeThePeersOwnWhileTheOthersIsInNeverGivesItsIsnAway()
    {
        Assert.True(_engine.Link(PeerA, PortA, PeerB, PortB).Success);
        Assert.Equal(DropReason.WaitingForPeer, _engine.Process(SynB()));
        // A stranger's SYN "from A" beats A's own: it is answered (to A's address, with B's
        // ISN), but B is not answered with its ISN, as B waits for A to prove itself.
        Assert.Equal(DropReason.None, _engine.Process(SynA(SpoofIsn, Spoofed)));
        Assert.Equal((PeerA, Spoofed, IsnB), (_kernel.Sent[0].Destination, _kernel.Parse(0).DestinationPort, _kernel.Parse(0).Sequence));
        Assert.Single(_kernel.Sent);

        // A's own SYN gets B's ISN too; the stranger cannot acknowledge its SYN-ACK (B's ISN is unknown to it).
        Assert.Equal(DropReason.None, _engine.Process(SynA()));
        Assert.Equal((PeerA, SrcA, IsnB), (_kernel.Sent[1].Destination, _kernel.Parse(1).DestinationPort, _kernel.Parse(1).Sequence));
        Assert.Equal(DropReason.HandshakeIncomplete, _engine.Process(FromA(SpoofIsn + 1, 0x1234_5678, src: Spoofed)));
        Assert.Equal(1, _engine.GetCounters().SynsContested);
        Assert.Equal(2, _kernel.Sent.Count);

        // A proves itself: B is answered with A's own ISN, and A's ACK follows it.
        Assert.Equal(DropReason.None, _engine.Process(FromA(IsnA + 1, IsnB + 1)));
        var toB = _kernel.Parse(2);
        Assert.Equal((PeerB, SrcB, TcpFlags.Syn | TcpFlags.Ack, IsnA, IsnB + 1), (_kernel.Sent[2].Destination, toB.DestinationPort, toB.Flags, toB.Sequence, toB.Acknowledgment));
        Assert.Equal(DropReason.None, _engine.Process(FromB(IsnB + 1, IsnA + 1)));
        Assert.Equal(SessionState.Established, State);
        Assert.Equal(DropReason.NoSession, _engine.Process(FromA(SpoofIsn + 1, IsnB + 1, src: Spoofed)));
        Assert.Empty(_released);
    }

    [Fact]
    public void ASpoofedSynsAnswerResetByThePeersHostIsForgottenAndTheLinkWaitsForThePeer()
    {
        Assert.True(_engine.Link(PeerA, PortA, PeerB, PortB).Success);
        _engine.Process(SynB());
        Assert.Equal(DropReason.None, _engine.Process(SynA(SpoofIsn, Spoofed)));
        // A's host (or its NAT) has no such connection and resets the SYN-ACK: the SYN was not its own.
        Assert.Equal(DropReason.RstOutOfWindow, _engine.Process(FromA(SpoofIsn + 2, 0, TcpFlags.Rst, src: Spoofed)));
        Assert.Equal(DropReason.HandshakeIncomplete, _engine.Process(FromA(SpoofIsn + 1, 0, TcpFlags.Rst, src: Spoofed)));
        Assert.Equal(1, _engine.GetCounters().SynsDisowned);
        Assert.Single(_kernel.Sent); // nothing reached B
        Assert.Empty(_released);
        Assert.Equal("203.0.113.2", _engine.GetSessions()[0].PeerA); // A's side holds no SYN again
        Assert.Equal(DropReason.NoSession, _engine.Process(FromA(SpoofIsn + 1, IsnB + 1, src: Spoofed)));

        // A's own SYN comes, is answered, proves itself; B is answered with its ISN.
        Assert.Equal(DropReason.None, _engine.Process(SynA()));
        Assert.Equal(0, _engine.GetCounters().SynsContested);
        Assert.Equal(DropReason.None, _engine.Process(FromA(IsnA + 1, IsnB + 1)));
        Assert.Equal((PeerB, IsnA), (_kernel.Sent[2].Destination, _kernel.Parse(2).Sequence));
        Assert.Equal(DropReason.None, _engine.Process(FromB(IsnB + 1, IsnA + 1)));
        Assert.Equal(SessionState.Established, State);
    }

    [Fact]
    public void ASpoofedBindersSynBeforeTheBindersOwnEndsInResetsNotAStolenLink()
    {
        // What is left: a stranger who knows B's address and router port forges B's SYN first,
        // while A holds one SYN. A is answered with the forged ISN, and takes it for good.
        Assert.True(_engine.Link(PeerA, PortA, PeerB, PortB).Success);
        Assert.Equal(DropReason.WaitingForPeer, _engine.Process(SynA()));
        Assert.Equal(DropReason.WaitingForPeer, _engine.Process(Tcp(PeerB, Spoofed, Router, PortB, SpoofIsn, 0, TcpFlags.Syn)));
        Assert.Equal((PeerA, SpoofIsn), (_kernel.Sent[0].Destination, _kernel.Parse(0).Sequence)); // A is spoilt already

        // B's own SYN contests its side: both of B's are answered with A's ISN (A holds one SYN).
        Assert.Equal(DropReason.None, _engine.Process(SynB()));
        Assert.Equal(3, _kernel.Sent.Count);
        Assert.All(_kernel.Sent.Skip(1), p => Assert.Equal(PeerB, p.Destination));
        Assert.Equal(IsnA, _kernel.Parse(2).Sequence);

        // Both peers prove themselves, A for another SYN than B's: both are reset at exactly the
        // sequence number they expect, so both applications hear of it at once.
        Assert.Equal(DropReason.HandshakeIncomplete, _engine.Process(FromA(IsnA + 1, SpoofIsn + 1)));
        var sent = _kernel.Sent.Count;
        Assert.Equal(DropReason.HandshakeConflict, _engine.Process(FromB(IsnB + 1, IsnA + 1)));
        var resets = _kernel.Sent.Skip(sent).Select((p, i) => (p.Destination, Tcp: _kernel.Parse(sent + i))).ToList();
        Assert.Equal(2, resets.Count);
        Assert.All(resets, r => Assert.Equal(TcpFlags.Rst | TcpFlags.Ack, r.Tcp.Flags));
        Assert.Contains(resets, r => r.Destination == PeerA && r.Tcp.DestinationPort == SrcA && r.Tcp.Sequence == SpoofIsn + 1 && r.Tcp.SourcePort == PortA);
        Assert.Contains(resets, r => r.Destination == PeerB && r.Tcp.DestinationPort == SrcB && r.Tcp.Sequence == IsnA + 1 && r.Tcp.SourcePort == PortB);
        Assert.Equal("reset", Assert.Single(_released).Reason);
        Assert.Empty(_engine.GetSessions());
    }

    [Fact]
    public void ASpoofedSynBeforeThePeersOwnOnlyDelaysTheOtherSide()
    {
        Assert.True(_engine.Link(PeerA, PortA, PeerB, PortB).Success);
        _engine.Process(SynA(SpoofIsn, Spoofed));
        _engine.Process(SynA());
        // A's ISN is not settled: B's SYN-ACK waits, both of A's get B's ISN.
        Assert.Equal(DropReason.WaitingForPeer, _engine.Process(SynB()));
        Assert.Equal(2, _kernel.Sent.Count);
        Assert.All(_kernel.Sent, p => Assert.Equal(PeerA, p.Destination));
        // A's own SYN proves itself; only now does B learn an ISN, A's.
        Assert.Equal(DropReason.None, _engine.Process(FromA(IsnA + 1, IsnB + 1)));
        var toB = _kernel.Parse(2);
        Assert.Equal((PeerB, IsnA, IsnB + 1), (toB.DestinationAddress, toB.Sequence, toB.Acknowledgment));
        Assert.Equal(DropReason.None, _engine.Process(FromB(IsnB + 1, IsnA + 1)));
        Assert.Equal(SessionState.Established, State);
        Assert.Equal(DropReason.NoSession, _engine.Process(FromA(SpoofIsn + 1, IsnB + 1, src: Spoofed)));
        Assert.Empty(_released);
    }

    [Fact]
    public void ASpoofedSynAfterThePeersOwnGetsNowhere()
    {
        Assert.True(_engine.Link(PeerA, PortA, PeerB, PortB).Success);
        _engine.Process(SynA());
        _engine.Process(SynB());
        // Before A acknowledged its SYN-ACK: the stranger's SYN is answered too (with B's ISN, to
        // A's address), and cannot prove itself.
        Assert.Equal(DropReason.None, _engine.Process(SynA(SpoofIsn, Spoofed)));
        Assert.Equal((PeerA, Spoofed, IsnB), (_kernel.Sent[1].Destination, _kernel.Parse(1).DestinationPort, _kernel.Parse(1).Sequence));
        Assert.Equal(DropReason.HandshakeIncomplete, _engine.Process(FromA(SpoofIsn + 1, IsnB + 2, src: Spoofed)));
        Assert.Equal(2, _kernel.Sent.Count); // B still waits
        Assert.Equal(DropReason.None, _engine.Process(FromA(IsnA + 1, IsnB + 1)));
        Assert.Equal((PeerB, IsnA), (_kernel.Sent[2].Destination, _kernel.Parse(2).Sequence));
        // Once A proved itself, further SYNs for its side are refused outright.
        Assert.Equal(DropReason.EndpointBusy, _engine.Process(SynA(SpoofIsn + 7, Spoofed + 1)));
        Assert.Equal(DropReason.None, _engine.Process(FromB(IsnB + 1, IsnA + 1)));
        Assert.Equal(SessionState.Established, State);
        // Paired: the endpoint is free for the next link, and the stranger's flow leads nowhere.
        Assert.Equal(DropReason.NotLinked, _engine.Process(SynA(SpoofIsn + 9, Spoofed + 2)));
        Assert.Equal(DropReason.NoSession, _engine.Process(FromA(SpoofIsn + 1, IsnB + 1, src: Spoofed)));
        Assert.Empty(_released);
    }

    [Fact]
    public void AFloodOfSpoofedSynsCannotLockThePeerOut()
    {
        Assert.True(_engine.Link(PeerA, PortA, PeerB, PortB).Success);
        for (ushort i = 0; i < 6; i++)
            _engine.Process(SynA(SpoofIsn + i, (ushort)(Spoofed + i)));
        // A's own SYN displaces the oldest; at most four are held for a side.
        Assert.Equal(DropReason.WaitingForPeer, _engine.Process(SynA()));
        Assert.Equal(DropReason.NoSession, _engine.Process(FromA(SpoofIsn + 1, IsnB + 1, src: Spoofed)));
        Assert.Equal(DropReason.WaitingForPeer, _engine.Process(SynB()));
        Assert.Equal(4, _kernel.Sent.Count); // the four candidates of A's side
        Assert.Equal(DropReason.None, _engine.Process(FromA(IsnA + 1, IsnB + 1)));
        Assert.Equal(DropReason.None, _engine.Process(FromB(IsnB + 1, IsnA + 1)));
        Assert.Equal(SessionState.Established, State);
    }

    [Fact]
    public void ANewConnectionOnAnOldSessionsFlowReopensItWhenLinked()
    {
        Established();
        var old = _engine.GetSessions()[0].Id;
        // A's NAT gives its next connection the same source port; the controller links the same router port.
        var link = _engine.Link(PeerA, PortA, PeerB, 60002);
        Assert.True(link.Success);
        var sent = _kernel.Sent.Count;
        Assert.Equal(DropReason.WaitingForPeer, _engine.Process(SynA(isn: 0x7777_0000)));

        // The old session gave way; its other side B is told with a reset it accepts.
        var r = Assert.Single(_released);
        Assert.Equal(("reopened", old), (r.Reason, r.SessionId));
        var rst = _kernel.Parse(sent);
        Assert.Equal((PeerB, SrcB, TcpFlags.Rst | TcpFlags.Ack, IsnA + 1), (_kernel.Sent[sent].Destination, rst.DestinationPort, rst.Flags, rst.Sequence));
        Assert.Equal(1, _engine.GetCounters().SessionsReopened);

        // The new link goes on as any other.
        Assert.Equal(DropReason.WaitingForPeer, _engine.Process(Tcp(PeerB, 50999, Router, 60002, 0x0900_0000, 0, TcpFlags.Syn)));
        Assert.Equal(DropReason.None, _engine.Process(FromA(0x7777_0001, 0x0900_0001)));
        Assert.Equal(link.SessionId, Assert.Single(_engine.GetSessions()).Id);
    }

    [Fact]
    public void ASynOnALiveSessionsFlowWithoutALinkChangesNothing()
    {
        Established();
        var sent = _kernel.Sent.Count;
        Assert.Equal(DropReason.EndpointBusy, _engine.Process(SynA(isn: 0x7777_0000)));
        Assert.Equal(DropReason.EndpointBusy, _engine.Process(SynA())); // a stale duplicate of the first SYN
        Assert.Equal(sent, _kernel.Sent.Count);
        Assert.Empty(_released);
        Assert.Equal(SessionState.Established, State);
    }

    [Fact]
    public void ASessionInTimeWaitGivesWayWhenTheTableIsFull()
    {
        var engine = new SpliceEngine(_kernel, _clock, new SpliceOptions { MaxSessions = 1 });
        var released = new List<LinkRelease>();
        engine.Released += released.Add;
        Assert.True(engine.Link(PeerA, PortA, PeerB, PortB).Success);
        engine.Process(SynA());
        engine.Process(SynB());
        engine.Process(FromA(IsnA + 1, IsnB + 1, TcpFlags.Fin | TcpFlags.Ack));
        engine.Process(FromB(IsnB + 1, IsnA + 2, TcpFlags.Fin | TcpFlags.Ack));
        Assert.Equal("full", engine.Link(PeerA, 1, PeerB, 2).ErrorCode); // Closing: not yet
        engine.Process(FromA(IsnA + 2, IsnB + 2));
        Assert.Equal(SessionState.TimeWait, Assert.Single(engine.GetSessions()).State);
        Assert.True(engine.Link(PeerA, 1, PeerB, 2).Success);
        Assert.Equal("closed", Assert.Single(released).Reason);
    }

    [Fact]
    public void AnAdoptedSessionBelievesNoResetItCannotCheck()
    {
        // An earlier translator's session: its sequence numbers were never seen here.
        var flow = new OffloadedFlow(new FlowTuple(PeerA, SrcA, Router, PortA), new FlowTuple(PeerB, SrcB, Router, PortB));
        Assert.True(_engine.Adopt(flow, default));
        Assert.Equal(DropReason.RstOutOfWindow, _engine.Process(FromA(0, 0, TcpFlags.Rst)));
        Assert.Equal(DropReason.None, _engine.Process(FromA(123, 456, TcpFlags.Ack | TcpFlags.Psh, payload: 10)));
        Assert.Single(_engine.GetSessions());
    }
}
