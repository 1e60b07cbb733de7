using Glass.Packets;
using Glass.Translator;
using static Glass.Tests.Translator.TestPackets;

namespace Glass.Tests.Translator;

/// <summary>Records hand-offs instead of creating conntrack entries.</summary>
internal sealed class FakeOffloader : IFlowOffloader
{
    public List<OffloadedFlow> Offloaded { get; } = new();
    public List<FlowTuple> Removed { get; } = new();
    public int Refuse { get; set; }

    public int Offload(in OffloadedFlow flow)
    {
        if (Refuse != 0)
            return Refuse;
        Offloaded.Add(flow);
        return 0;
    }

    public void Remove(in FlowTuple original) => Removed.Add(original);

    public List<FlowTuple> Tightened { get; } = new();
    public int RefuseTighten { get; set; }

    public int Tighten(in FlowTuple original)
    {
        Tightened.Add(original);
        return RefuseTighten;
    }

    public List<FlowTuple> Refreshed { get; } = new();
    public int RefuseRefresh { get; set; }

    public int Refresh(in FlowTuple original)
    {
        Refreshed.Add(original);
        return RefuseRefresh;
    }
}

public sealed class SpliceEngineOffloadTests
{
    private static readonly uint Router = Ipv4.Parse("203.0.113.1");
    private static readonly uint PeerA = Ipv4.Parse("203.0.113.2");
    private static readonly uint PeerB = Ipv4.Parse("198.51.100.7");
    private const ushort PortA = 60000, PortB = 60001, SrcA = 40001, SrcB = 50002;
    private const uint IsnA = 0x1000_0000, IsnB = 0x2000_0000;
    private static readonly FlowTuple OriginalA = new(PeerA, SrcA, Router, PortA);

    private readonly FakeKernel _kernel = new();
    private readonly FakeClock _clock = new();
    private readonly FakeOffloader _offloader = new();
    private readonly List<LinkRelease> _released = new();
    private readonly SpliceEngine _engine;

    public SpliceEngineOffloadTests()
    {
        _engine = new SpliceEngine(_kernel, _clock, new SpliceOptions
        {
            IdleTimeout = TimeSpan.FromHours(2),
            TimeWait = TimeSpan.FromSeconds(30),
        }) { Offloader = _offloader };
        _engine.Released += _released.Add;
    }

    private void Handshake()
    {
        Assert.True(_engine.Link(PeerA, PortA, PeerB, PortB).Success);
        _engine.Process(Tcp(PeerA, SrcA, Router, PortA, IsnA, 0, TcpFlags.Syn, 64240, LinuxSynOptions(1460, 111, 7)));
        Assert.Equal(DropReason.WaitingForPeer, _engine.Process(Tcp(PeerB, SrcB, Router, PortB, IsnB, 0, TcpFlags.Syn, 65535, LinuxSynOptions(1400, 222, 9))));
    }

    private DropReason AckFromA() => _engine.Process(Tcp(PeerA, SrcA, Router, PortA, IsnA + 1, IsnB + 1, TcpFlags.Ack));
    private DropReason AckFromB() => _engine.Process(Tcp(PeerB, SrcB, Router, PortB, IsnB + 1, IsnA + 1, TcpFlags.Ack));

    private void Offloaded()
    {
        Handshake();
        Assert.Equal(DropReason.None, AckFromA());
        Assert.Equal(DropReason.None, AckFromB());
        Assert.Single(_offloader.Offloaded);
        _engine.OnKernelCreated(OriginalA); // the kernel announces the entry
    }

    [Fact]
    public void TheSpliceIsHandedOffOnceBothPeersAcknowledgedTheirSynAcks()
    {
        Handshake();
        Assert.Equal(DropReason.None, AckFromA());
        Assert.Empty(_offloader.Offloaded); // B has not proven it got its SYN-ACK
        Assert.Equal(DropReason.None, AckFromB());

        var flow = Assert.Single(_offloader.Offloaded);
        Assert.Equal(OriginalA, flow.Original);
        Assert.Equal(new FlowTuple(PeerB, SrcB, Router, PortB), flow.Reply);
        // The window scales each side announced, and SACK, for the kernel's window tracking.
        Assert.Equal(((sbyte)7, (sbyte)9, true), (flow.ScaleOriginal, flow.ScaleReply, flow.SackPermitted));
        // Both ACKs were still relayed here; what follows is the kernel's.
        Assert.Equal(4, _kernel.Sent.Count);
        Assert.Equal(DropReason.None, AckFromA());
        Assert.Single(_offloader.Offloaded);

        var c = _engine.GetCounters();
        Assert.Equal((1, 1L, 0L), (c.SessionsOffloaded, c.OffloadedTotal, c.OffloadFailures));
        Assert.True(Assert.Single(_engine.GetSessions()).Offloaded);
    }

    [Fact]
    public void AStoppingTranslatorMakesEachPeerSpeakSoThatItMeetsTheRoutersReset()
    {
        Offloaded();
        // A second link whose connector's SYN still waits for the binder's.
        Assert.True(_engine.Link(PeerA, PortA + 2, PeerB, PortB + 2).Success);
        _engine.Process(Tcp(PeerA, SrcA + 1, Router, PortA + 2, IsnA, 0, TcpFlags.Syn, 64240, LinuxSynOptions(1460, 111, 7)));
        var before = _kernel.Sent.Count;

        Assert.Equal(2, _engine.TellPeersStopped());

        var sent = Enumerable.Range(before, _kernel.Sent.Count - before).Select(_kernel.Parse).ToList();
        // A bare SYN-ACK from each side's router port: a synchronized TCP answers it with a challenge ACK.
        var probes = sent.Where(p => p.Flags == (TcpFlags.Syn | TcpFlags.Ack)).OrderBy(p => p.SourcePort).ToList();
        Assert.Equal(
            [(Router, PortA, PeerA, SrcA), (Router, PortB, PeerB, SrcB)],
            probes.Select(p => (p.SourceAddress, p.SourcePort, p.DestinationAddress, p.DestinationPort)));
        Assert.All(probes, p => Assert.Equal(0, p.OptionsLength));
        // The waiting connector is refused, acknowledging its SYN.
        var refusal = Assert.Single(sent, p => (p.Flags & TcpFlags.Rst) != 0);
        Assert.Equal((PeerA, (ushort)(SrcA + 1), IsnA + 1), (refusal.DestinationAddress, refusal.DestinationPort, refusal.Acknowledgment));
        Assert.Equal(3, sent.Count);
    }

    [Fact]
    public void ARefusedHandOffLeavesTheSessionRelayedHereAndSaysWhy()
    {
        _offloader.Refuse = 28; // ENOSPC: the conntrack table is full
        Handshake();
        AckFromA();
        AckFromB();
        var data = Tcp(PeerA, SrcA, Router, PortA, IsnA + 1, IsnB + 1, TcpFlags.Ack | TcpFlags.Psh, payload: new byte[100]);
        Assert.Equal(DropReason.None, _engine.Process(data));

        var c = _engine.GetCounters();
        Assert.Equal((0, 1L, 28), (c.SessionsOffloaded, c.OffloadFailures, c.LastOffloadErrno));
        Assert.False(Assert.Single(_engine.GetSessions()).Offloaded);
        Assert.Equal(5, _kernel.Sent.Count);
    }

    [Fact]
    public void TheKernelsCountersShowAsPayloadAndCountAsActivity()
    {
        Offloaded();
        var before = _engine.GetSessions()[0];
        // 100 segments of 1000 bytes plus 52 bytes of headers (timestamps on both sides) each.
        _clock.Advance(TimeSpan.FromMinutes(90));
        _engine.OnKernelCounters(OriginalA, new KernelCounters(100, 100 * 1052, 50, 50 * 52));
        var s = _engine.GetSessions()[0];
        Assert.Equal(before.BytesFromA + 100_000, s.BytesFromA);
        Assert.Equal(before.BytesFromB, s.BytesFromB);
        Assert.Equal(before.PacketsFromA + 100, s.PacketsFromA);
        Assert.Equal(0, s.IdleMilliseconds);

        // Unchanged counters are no activity: the idle timeout runs from the last change.
        _clock.Advance(TimeSpan.FromMinutes(90));
        _engine.OnKernelCounters(OriginalA, new KernelCounters(100, 100 * 1052, 50, 50 * 52));
        Assert.Equal(0, _engine.Sweep());
        _clock.Advance(TimeSpan.FromMinutes(31));
        Assert.Equal(1, _engine.Sweep());
        Assert.Equal("idle", Assert.Single(_released).Reason);
        Assert.Equal(OriginalA, Assert.Single(_offloader.Removed));
    }

    [Fact]
    public void TheEntryTurnsToStrictWindowTrackingOnceItHasSeenBothDirections()
    {
        Offloaded();
        _engine.OnKernelCounters(OriginalA, new KernelCounters(5, 5 * 1052, 1, 52));
        Assert.Empty(_offloader.Tightened); // B's window not learnt yet
        _engine.OnKernelCounters(OriginalA, new KernelCounters(9, 9 * 1052, 2, 104));
        Assert.Equal(OriginalA, Assert.Single(_offloader.Tightened));
        _engine.OnKernelCounters(OriginalA, new KernelCounters(20, 20 * 1052, 9, 9 * 52));
        Assert.Single(_offloader.Tightened); // once
        Assert.Equal((1L, 0L), (_engine.GetCounters().OffloadsTightened, _engine.GetCounters().TightenFailures));
    }

    [Fact]
    public void AnEntryThatRefusesStrictTrackingIsAskedOnceAndCounted()
    {
        _offloader.RefuseTighten = 95; // EOPNOTSUPP
        Offloaded();
        _engine.OnKernelCounters(OriginalA, new KernelCounters(2, 104, 2, 104));
        _engine.OnKernelCounters(OriginalA, new KernelCounters(4, 208, 4, 208));
        Assert.Single(_offloader.Tightened);
        Assert.Equal((0L, 1L), (_engine.GetCounters().OffloadsTightened, _engine.GetCounters().TightenFailures));
        Assert.Equal(95, _engine.LastTightenErrno);
        Assert.Single(_engine.GetSessions()); // the session goes on, liberal as before
    }

    [Fact]
    public void AnAdoptedEntryIsTightenedAndItsTimeoutFixedLikeOurOwn()
    {
        // Its window scales are in the entry since the earlier translator made it; its timeout
        // may not have been fixed yet (an earlier version), so adoption re-arms it at once.
        Assert.True(_engine.Adopt(new OffloadedFlow(OriginalA, new FlowTuple(PeerB, SrcB, Router, PortB)), default));
        Assert.Equal(OriginalA, Assert.Single(_offloader.Refreshed));
        _engine.OnKernelCounters(OriginalA, new KernelCounters(50, 50 * 52, 50, 50 * 52));
        Assert.Equal(OriginalA, Assert.Single(_offloader.Tightened));
    }

    [Fact]
    public void TheEntrysFixedTimeoutIsReArmedWhileTrafficCrosses()
    {
        Offloaded();
        _clock.Advance(TimeSpan.FromMinutes(1));
        _engine.OnKernelCounters(OriginalA, new KernelCounters(2, 104, 2, 104));
        Assert.Empty(_offloader.Refreshed); // made with a fixed timeout a minute ago
        _clock.Advance(SpliceEngine.EntryRefreshInterval);
        _engine.OnKernelCounters(OriginalA, new KernelCounters(2, 104, 2, 104));
        Assert.Empty(_offloader.Refreshed); // silent: the idle timeout runs, and so does the entry's
        _engine.OnKernelCounters(OriginalA, new KernelCounters(3, 156, 2, 104));
        Assert.Equal(OriginalA, Assert.Single(_offloader.Refreshed));
        _engine.OnKernelCounters(OriginalA, new KernelCounters(9, 156 * 3, 9, 104 * 3));
        Assert.Single(_offloader.Refreshed); // not again before the interval
    }

    [Fact]
    public void ARefusedRefreshIsCountedAndTriedAgainAtTheNextInterval()
    {
        _offloader.RefuseRefresh = 2; // ENOENT
        Offloaded();
        _clock.Advance(SpliceEngine.EntryRefreshInterval);
        _engine.OnKernelCounters(OriginalA, new KernelCounters(3, 156, 3, 156));
        Assert.Equal((1L, 2), (_engine.GetCounters().RefreshFailures, _engine.LastRefreshErrno));
        _clock.Advance(SpliceEngine.EntryRefreshInterval);
        _engine.OnKernelCounters(OriginalA, new KernelCounters(4, 208, 4, 208));
        Assert.Equal(2, _offloader.Refreshed.Count);
        Assert.Single(_engine.GetSessions());
    }

    [Fact]
    public void TrafficRestartsAKernelTimeWaitSoForgedFinsCannotEndALiveFlow()
    {
        // Forged FINs both ways can walk the kernel's entry to TIME_WAIT; data that keeps
        // crossing it shows the flow alive, as it does for a session relayed here.
        Offloaded();
        _engine.OnKernelCounters(OriginalA, new KernelCounters(2, 104, 2, 104));
        _engine.OnKernelState(OriginalA, KernelFlowState.TimeWait);
        _clock.Advance(TimeSpan.FromSeconds(20));
        _engine.OnKernelCounters(OriginalA, new KernelCounters(200, 200 * 1052, 100, 100 * 52));
        _clock.Advance(TimeSpan.FromSeconds(20));
        Assert.Equal(0, _engine.Sweep());
        _clock.Advance(TimeSpan.FromSeconds(11));
        Assert.Equal(1, _engine.Sweep());
        Assert.Equal("closed", Assert.Single(_released).Reason);
    }

    [Fact]
    public void AKernelTimeWaitLingersThenRemovesTheEntry()
    {
        Offloaded();
        _engine.OnKernelState(OriginalA, KernelFlowState.Closing);
        Assert.Equal(SessionState.Closing, _engine.GetSessions()[0].State);
        _engine.OnKernelState(OriginalA, KernelFlowState.TimeWait);
        Assert.Equal(SessionState.TimeWait, _engine.GetSessions()[0].State);
        EndsAfter(TimeSpan.FromSeconds(30), "closed");
        Assert.Empty(_engine.GetSessions());
        Assert.Equal(0, _engine.GetCounters().SessionsOffloaded);
    }

    [Fact]
    public void AKernelResetEndsTheSessionAndItsEntryAtOnce()
    {
        Offloaded();
        // The entry has seen both sides: the kernel judged the reset's number.
        _engine.OnKernelCounters(OriginalA, new KernelCounters(1, 52, 1, 52));
        _engine.OnKernelState(OriginalA, KernelFlowState.Reset);
        Assert.Equal("reset", Assert.Single(_released).Reason);
        Assert.Single(_offloader.Removed);
        // The flow is gone: a late segment finds no session.
        Assert.Equal(DropReason.NoSession, AckFromA());
    }

    // An entry that has counted nothing from one side took the reset without judging its number.
    private (TcpPacket ToA, TcpPacket ToB) UnjudgedReset(int sentBefore)
    {
        _engine.OnKernelCounters(OriginalA, new KernelCounters(0, 0, 2, 105));
        _engine.OnKernelState(OriginalA, KernelFlowState.Reset);
        Assert.Empty(_released);
        Assert.Equal(OriginalA, Assert.Single(_offloader.Removed)); // the flow comes back to the queue
        Assert.False(Assert.Single(_engine.GetSessions()).Offloaded);
        Assert.Equal(1, _engine.GetCounters().Ignored[nameof(IgnoredReason.ResetUnjudged)]);
        // A probe to each peer in the other's name: a keepalive with one byte it already has.
        Assert.Equal(sentBefore + 2, _kernel.Sent.Count);
        return (_kernel.Parse(sentBefore), _kernel.Parse(sentBefore + 1));
    }

    [Fact]
    public void AResetTheKernelTookUnjudgedIsCheckedWithBothPeersAndALiveSessionGoesBackToTheKernel()
    {
        Offloaded();
        var (toA, toB) = UnjudgedReset(_kernel.Sent.Count);
        Assert.Equal((Router, PortA, PeerA, SrcA), (toA.SourceAddress, toA.SourcePort, toA.DestinationAddress, toA.DestinationPort));
        Assert.Equal((IsnB, IsnA + 1, TcpFlags.Ack, 1), (toA.Sequence, toA.Acknowledgment, toA.Flags, toA.PayloadLength));
        Assert.Equal((Router, PortB, PeerB, SrcB), (toB.SourceAddress, toB.SourcePort, toB.DestinationAddress, toB.DestinationPort));
        Assert.Equal((IsnA, IsnB + 1, TcpFlags.Ack, 1), (toB.Sequence, toB.Acknowledgment, toB.Flags, toB.PayloadLength));

        // Both answer with an ACK (relayed as any segment is), and the removed entry's destroy
        // event arrives: the session goes back to the kernel, its counters kept.
        Assert.Equal(DropReason.None, AckFromA());
        Assert.Equal(DropReason.None, AckFromB());
        Assert.Single(_offloader.Offloaded);
        _engine.OnKernelDestroyed(OriginalA, new KernelCounters(0, 0, 2, 105));
        Assert.Equal(2, _offloader.Offloaded.Count);
        var s = Assert.Single(_engine.GetSessions());
        Assert.True(s.Offloaded);
        Assert.Equal(1, s.BytesFromB); // 105 IP bytes in 2 packets of 52 header bytes
        Assert.Empty(_released);
        // Nothing is left to expire it: no deadline, no further probe.
        var sent = _kernel.Sent.Count;
        _clock.Advance(TimeSpan.FromSeconds(30));
        Assert.Equal(0, _engine.Sweep());
        Assert.Equal(sent, _kernel.Sent.Count);
        // Once the kernel announced the new entry, its destroy event is the session's end as before.
        EndsOnceItsNewEntryIsAnnouncedAndDestroyed();
    }

    private void EndsOnceItsNewEntryIsAnnouncedAndDestroyed()
    {
        _engine.OnKernelCreated(OriginalA);
        _engine.OnKernelDestroyed(OriginalA, null);
        Assert.Equal("expired", Assert.Single(_released).Reason);
    }

    [Fact]
    public void ALiveSessionWhoseOldEntryIsNeverReportedGoneGoesBackToTheKernelAfterAWhile()
    {
        Offloaded();
        UnjudgedReset(_kernel.Sent.Count);
        AckFromA();
        AckFromB();
        Assert.Single(_offloader.Offloaded); // a new entry now could be taken for the old one's end
        _clock.Advance(TimeSpan.FromMilliseconds(SpliceEngine.EntryGoneWaitMilliseconds));
        Assert.Equal(0, _engine.Sweep());
        Assert.Equal(2, _offloader.Offloaded.Count);
        Assert.Empty(_released);

        // The old entry's events come late after all (a busy event thread): they are its, not the
        // new entry's, which the kernel has not announced yet. The session lives on, its entry kept.
        _engine.OnKernelState(OriginalA, KernelFlowState.TimeWait);
        _engine.OnKernelDestroyed(OriginalA, new KernelCounters(0, 0, 2, 105));
        var s = Assert.Single(_engine.GetSessions());
        Assert.True(s.Offloaded);
        Assert.Equal(SessionState.Established, s.State);
        Assert.Empty(_released);
        Assert.Equal(2, _engine.GetCounters().StaleKernelEvents);

        // From the announcement on, the events are the new entry's.
        EndsOnceItsNewEntryIsAnnouncedAndDestroyed();
    }

    [Fact]
    public void ADumpThatListsTheEntryStandsForALostAnnouncement()
    {
        Handshake();
        AckFromA();
        AckFromB();
        Assert.Single(_offloader.Offloaded); // no announcement: say it was lost (ENOBUFS)
        _engine.OnKernelDestroyed(OriginalA, null);
        Assert.Empty(_released); // taken for an older entry's

        _clock.Advance(TimeSpan.FromSeconds(1));
        _engine.OnKernelListed(OriginalA, default, dump: 1);
        Assert.Equal(0, _engine.ForgetOffloadedNotListed(1, _clock.NowMilliseconds));
        _engine.OnKernelDestroyed(OriginalA, null);
        Assert.Equal("expired", Assert.Single(_released).Reason);
    }

    [Fact]
    public void APeerWithoutTheConnectionConfirmsAnUnjudgedResetWhichThenEndsTheSession()
    {
        Offloaded();
        var (toA, _) = UnjudgedReset(_kernel.Sent.Count);
        // A reset elsewhere is relayed for the peer to judge, and confirms nothing.
        Assert.Equal(DropReason.None, _engine.Process(Tcp(PeerA, SrcA, Router, PortA, IsnA + 5000, 0, TcpFlags.Rst)));
        Assert.Empty(_released);
        // A's host has no such connection: it resets the probe at its acknowledgment number.
        Assert.Equal(DropReason.None, _engine.Process(Tcp(PeerA, SrcA, Router, PortA, toA.Acknowledgment, 0, TcpFlags.Rst)));
        Assert.Equal("reset", Assert.Single(_released).Reason);
        Assert.Equal(DropReason.NoSession, AckFromB());
        Assert.Single(_offloader.Removed);
    }

    [Fact]
    public void AnUnjudgedResetNobodyAnswersEndsTheSessionAfterConntracksCloseTimeProbingMeanwhile()
    {
        Offloaded();
        var before = _kernel.Sent.Count;
        UnjudgedReset(before);
        AckFromB(); // B answered; A never does
        var sent = _kernel.Sent.Count;
        _clock.Advance(TimeSpan.FromSeconds(1));
        Assert.Equal(0, _engine.Sweep());
        // Only the side still silent is asked again.
        Assert.Equal(sent + 1, _kernel.Sent.Count);
        Assert.Equal(PeerA, _kernel.Parse(sent).DestinationAddress);
        _clock.Advance(TimeSpan.FromSeconds(9));
        Assert.Equal(1, _engine.Sweep());
        Assert.Equal("reset", Assert.Single(_released).Reason);
        Assert.Single(_offloader.Offloaded);
    }

    [Fact]
    public void AResetTheKernelTookUncheckedFromAHalfClosedSessionEndsItOnlyAfterItsTrafficStops()
    {
        // Once a FIN crossed, conntrack moves the entry to CLOSE on a reset at any sequence number.
        Offloaded();
        _engine.OnKernelState(OriginalA, KernelFlowState.Closing);
        _engine.OnKernelState(OriginalA, KernelFlowState.Reset);
        Assert.Empty(_released);
        Assert.Empty(_offloader.Removed); // the CLOSE entry still carries the flow
        Assert.Equal(1, _engine.GetCounters().Ignored[nameof(IgnoredReason.HalfClosedReset)]);

        // The other side's data keeps crossing: each change of the counters postpones the end.
        for (var i = 1; i <= 5; i++)
        {
            _clock.Advance(TimeSpan.FromSeconds(8));
            _engine.OnKernelCounters(OriginalA, new KernelCounters(10, 10 * 52, 200UL * (ulong)i, 200UL * (ulong)i * 1052));
            Assert.Equal(0, _engine.Sweep());
        }
        Assert.True(Assert.Single(_engine.GetSessions()).Offloaded);

        // Silent for conntrack's CLOSE timeout (10 s): ended, and its entry removed.
        EndsAfter(TimeSpan.FromSeconds(10), "reset");
    }

    [Fact]
    public void AHalfClosedSessionEndsAfterTheTransitoryIdleTimeAnEstablishedOneDoesNot()
    {
        // The other peer's reset may never cross (the kernel refuses one outside the windows):
        // half-closed is transitory (RFC 5382: 4 minutes), not the 2 hours of an established flow.
        Offloaded();
        _clock.Advance(TimeSpan.FromMinutes(5));
        Assert.Equal(0, _engine.Sweep());
        _engine.OnKernelState(OriginalA, KernelFlowState.Closing);
        // The dump reports the same state every 2 s: no news, so no activity.
        for (var t = 0; t < 238; t += 2)
        {
            _clock.Advance(TimeSpan.FromSeconds(2));
            _engine.OnKernelState(OriginalA, KernelFlowState.Closing);
        }
        EndsAfter(TimeSpan.FromSeconds(2), "idle");
    }

    /// <summary>Still there 1 s before <paramref name="due"/> from now, ended 1 s after it, with its entry removed.</summary>
    private void EndsAfter(TimeSpan due, string reason)
    {
        _clock.Advance(due - TimeSpan.FromSeconds(1));
        Assert.Equal(0, _engine.Sweep());
        _clock.Advance(TimeSpan.FromSeconds(2));
        Assert.Equal(1, _engine.Sweep());
        Assert.Equal(reason, Assert.Single(_released).Reason);
        Assert.Equal(OriginalA, Assert.Single(_offloader.Removed));
    }

    [Fact]
    public void AnEntryTheKernelDestroyedIsNotRemovedAgain()
    {
        Offloaded();
        _engine.OnKernelState(OriginalA, KernelFlowState.Closing);
        _engine.OnKernelDestroyed(OriginalA, new KernelCounters(3, 3 * 52, 3, 3 * 52));
        Assert.Equal("closed", Assert.Single(_released).Reason);
        Assert.Empty(_offloader.Removed);
        Assert.Equal(0, _engine.GetCounters().SessionsOffloaded);
    }

    [Fact]
    public void AnEstablishedEntryTheKernelLetExpireEndsAsExpired()
    {
        Offloaded();
        _engine.OnKernelDestroyed(OriginalA, null);
        Assert.Equal("expired", Assert.Single(_released).Reason);
    }

    [Fact]
    public void EventsAboutOtherFlowsChangeNothing()
    {
        Offloaded();
        _engine.OnKernelState(new FlowTuple(PeerB, SrcB, Router, PortB), KernelFlowState.Reset); // the reply side is not a key
        _engine.OnKernelDestroyed(new FlowTuple(PeerA, 1, Router, PortA), null);
        Assert.Empty(_released);
        Assert.Single(_engine.GetSessions());
    }

    [Fact]
    public void EntriesMissingFromAFullDumpEndUnlessOffloadedSinceItBegan()
    {
        Offloaded();
        var dumpStarted = _clock.NowMilliseconds;
        _clock.Advance(TimeSpan.FromMilliseconds(5));
        // Dump 1 began before the offload: not listing it proves nothing.
        Assert.Equal(0, _engine.ForgetOffloadedNotListed(1, dumpStarted - 1));
        // Dump 2 listed it (with the reply side's tuple reported too, which is no key).
        _engine.OnKernelListed(new FlowTuple(PeerB, SrcB, Router, PortB), default, 2);
        _engine.OnKernelListed(OriginalA, default, 2);
        Assert.Equal(0, _engine.ForgetOffloadedNotListed(2, _clock.NowMilliseconds));
        Assert.Empty(_released);
        // Dump 3 did not: its destroy event was lost.
        _engine.OnKernelListed(new FlowTuple(PeerA, 1, Router, PortA), default, 3);
        Assert.Equal(1, _engine.ForgetOffloadedNotListed(3, _clock.NowMilliseconds));
        Assert.Equal("evicted", Assert.Single(_released).Reason);
        Assert.Empty(_offloader.Removed);
    }

    [Fact]
    public void AnAdoptedEntryIsAnEstablishedSessionWhoseEndNoControllerHears()
    {
        var flow = new OffloadedFlow(OriginalA, new FlowTuple(PeerB, SrcB, Router, PortB));
        Assert.True(_engine.Adopt(flow, new KernelCounters(10, 10 * 52 + 4000, 0, 0)));
        Assert.False(_engine.Adopt(flow, default)); // once

        var s = Assert.Single(_engine.GetSessions());
        Assert.Equal((SessionState.Established, true), (s.State, s.Offloaded));
        Assert.Equal(($"{Ipv4.Format(PeerA)}:{SrcA}", PortA, $"{Ipv4.Format(PeerB)}:{SrcB}", PortB), (s.PeerA, s.RouterPortA, s.PeerB, s.RouterPortB));
        Assert.Equal(4000, s.BytesFromA);
        Assert.Equal(1, _engine.GetCounters().SessionsAdopted);

        // A segment that still reaches the queue is relayed here, to the right peer.
        var data = Tcp(PeerB, SrcB, Router, PortB, IsnB + 1, IsnA + 1, TcpFlags.Ack | TcpFlags.Psh, payload: new byte[10]);
        Assert.Equal(DropReason.None, _engine.Process(data));
        var sent = _kernel.Parse(0);
        Assert.Equal((Router, PortA, PeerA, SrcA), (sent.SourceAddress, sent.SourcePort, sent.DestinationAddress, sent.DestinationPort));

        _engine.OnKernelState(OriginalA, KernelFlowState.Reset);
        Assert.Empty(_released); // its link, and its ports, were an earlier translator's
        Assert.Empty(_engine.GetSessions());
        Assert.Equal(OriginalA, Assert.Single(_offloader.Removed));
    }

    [Fact]
    public void UnlinkingAndTheSessionLimitCountOffloadedSessions()
    {
        var engine = new SpliceEngine(_kernel, _clock, new SpliceOptions { MaxSessions = 1 }) { Offloader = _offloader };
        Assert.True(engine.Adopt(new OffloadedFlow(OriginalA, new FlowTuple(PeerB, SrcB, Router, PortB)), default));
        Assert.Equal("full", engine.Link(PeerA, PortA, PeerB, PortB).ErrorCode);
    }
}
