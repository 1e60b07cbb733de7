using Glass.Packets;
using Glass.Translator;
using static Glass.Tests.Translator.TestPackets;

namespace Glass.Tests.Translator;

/// <summary>
/// Resets and FINs queued before conntrack: those of offloaded sessions go back to the kernel, and
/// for a reset an entry that has seen a FIN, which conntrack would close on any reset, is held
/// ESTABLISHED while conntrack judges it, and gets its state back unless conntrack took the reset
/// as exact. Those of sessions relayed here are relayed where they are.
/// </summary>
public sealed class SpliceEngineOffloadResetTests
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

    public SpliceEngineOffloadResetTests()
    {
        _engine = new SpliceEngine(_kernel, _clock, new SpliceOptions { TimeWait = TimeSpan.FromSeconds(30) }) { Offloader = _offloader };
        _engine.Released += _released.Add;
    }

    private void Offloaded(KernelTcpState state)
    {
        Assert.True(_engine.Link(PeerA, PortA, PeerB, PortB).Success);
        _engine.Process(Tcp(PeerA, SrcA, Router, PortA, IsnA, 0, TcpFlags.Syn, 64240, LinuxSynOptions(1460, 111, 7)));
        _engine.Process(Tcp(PeerB, SrcB, Router, PortB, IsnB, 0, TcpFlags.Syn, 65535, LinuxSynOptions(1400, 222, 9)));
        _engine.Process(Tcp(PeerA, SrcA, Router, PortA, IsnA + 1, IsnB + 1, TcpFlags.Ack));
        _engine.Process(Tcp(PeerB, SrcB, Router, PortB, IsnB + 1, IsnA + 1, TcpFlags.Ack));
        Assert.Single(_offloader.Offloaded);
        _offloader.States[OriginalA] = state;
    }

    // A stranger's reset as B, at a number nobody tracks here any more (the kernel carries the flow).
    private static byte[] ResetFromB(uint seq = 0x7777_0000) => Tcp(PeerB, SrcB, Router, PortB, seq, 0, TcpFlags.Rst, 0);

    // What the host does with a packet queued before conntrack: the result, and the entry held.
    private (DropReason Result, HeldEntry Held) Before(byte[] packet)
    {
        var result = _engine.BeforeConntrack(packet, default, out var held);
        return (result, held);
    }

    [Theory]
    [InlineData(KernelTcpState.FinWait)]
    [InlineData(KernelTcpState.CloseWait)]
    [InlineData(KernelTcpState.LastAck)]
    [InlineData(KernelTcpState.TimeWait)]
    public void AResetConntrackDoesNotTakeAsExactLeavesAHalfClosedSessionAndItsEntryAsTheyWere(KernelTcpState closing)
    {
        Offloaded(closing);
        var (result, held) = Before(ResetFromB());
        Assert.Equal(DropReason.LeftToKernel, result);
        // Conntrack sees the reset with the entry ESTABLISHED, where it checks the sequence number.
        Assert.Equal(KernelTcpState.Established, _offloader.States[OriginalA]);
        Assert.Equal((OriginalA, closing), (held.Original, held.Previous));

        // It was not exact: the entry stayed ESTABLISHED, and gets its own state back.
        _engine.AfterConntrack(held);
        Assert.Equal(closing, _offloader.States[OriginalA]);
        Assert.Equal([(OriginalA, KernelTcpState.Established), (OriginalA, closing)], _offloader.StatesSet);
        Assert.Empty(_released);
        Assert.Empty(_offloader.Removed);
        Assert.True(Assert.Single(_engine.GetSessions()).Offloaded);
        var c = _engine.GetCounters();
        Assert.Equal((1L, 1L, 0L), (c.HalfClosedResetsChecked, c.HalfClosedResetsRefused, c.ResetCheckFailures));
    }

    [Fact]
    public void AResetConntrackTakesAsExactEndsTheSessionAndItsEntryAtOnce()
    {
        // A peer that really aborted after a FIN: its reset is at the number conntrack expects.
        Offloaded(KernelTcpState.CloseWait);
        var (result, held) = Before(ResetFromB());
        Assert.Equal(DropReason.LeftToKernel, result);
        _offloader.States[OriginalA] = KernelTcpState.Close; // what conntrack made of it
        _engine.AfterConntrack(held);
        Assert.Equal("reset", Assert.Single(_released).Reason);
        Assert.Equal(OriginalA, Assert.Single(_offloader.Removed));
        Assert.Empty(_engine.GetSessions());
        Assert.Single(_offloader.StatesSet); // nothing put back
        // The CLOSE event that follows finds nothing left to end.
        _engine.OnKernelState(OriginalA, KernelFlowState.Reset);
        Assert.Single(_released);
        var c = _engine.GetCounters();
        Assert.Equal((1L, 0L), (c.HalfClosedResetsChecked, c.HalfClosedResetsRefused));
    }

    [Fact]
    public void AResetFromEitherSideIsCheckedOnTheEntryOfTheSession()
    {
        Offloaded(KernelTcpState.FinWait);
        var (_, held) = Before(Tcp(PeerA, SrcA, Router, PortA, 0x1234_5678, 0, TcpFlags.Rst, 0));
        Assert.Equal((OriginalA, KernelTcpState.FinWait), (held.Original, held.Previous));
        _engine.AfterConntrack(held);
        Assert.Equal(KernelTcpState.FinWait, _offloader.States[OriginalA]);
    }

    [Fact]
    public void AnEstablishedEntryJudgesResetsByItselfAndAClosedOneIsOver()
    {
        Offloaded(KernelTcpState.Established);
        foreach (var state in new[] { KernelTcpState.Established, KernelTcpState.Close })
        {
            _offloader.States[OriginalA] = state;
            var (result, held) = Before(ResetFromB());
            Assert.Equal((DropReason.LeftToKernel, default(HeldEntry)), (result, held));
            _engine.AfterConntrack(held);
        }
        Assert.Empty(_offloader.StatesSet);
        Assert.Empty(_released);
        Assert.Equal(0, _engine.GetCounters().HalfClosedResetsChecked);
    }

    [Fact]
    public void AFinOfAnOffloadedSessionGoesBackToTheKernelUntouched()
    {
        Offloaded(KernelTcpState.Established);
        var fin = Tcp(PeerB, SrcB, Router, PortB, 0x7777_0000, IsnA + 1, TcpFlags.Fin | TcpFlags.Ack, payload: new byte[100]);
        Assert.Equal((DropReason.LeftToKernel, default(HeldEntry)), Before(fin));
        // Headers are enough: a GSO packet the queue cut short is the kernel's all the same.
        Assert.Equal((DropReason.LeftToKernel, default(HeldEntry)), Before(fin[..40]));
        Assert.Empty(_offloader.StatesSet);
        Assert.Empty(_kernel.Sent.Skip(4)); // nothing relayed after the handshake's two ACKs
    }

    [Fact]
    public void ResetsAndFinsOfSessionsRelayedHereAreRelayedWhereTheyAre()
    {
        // Handed back, they would come through the queue again behind later segments: a FIN
        // behind the ACK that offloads its session would be relayed past the new entry.
        Assert.True(_engine.Link(PeerA, PortA, PeerB, PortB).Success);
        _engine.Process(Tcp(PeerA, SrcA, Router, PortA, IsnA, 0, TcpFlags.Syn, 64240, LinuxSynOptions(1460, 111, 7)));
        _engine.Process(Tcp(PeerB, SrcB, Router, PortB, IsnB, 0, TcpFlags.Syn, 65535, LinuxSynOptions(1400, 222, 9)));
        Assert.Equal(DropReason.None, _engine.Process(Tcp(PeerA, SrcA, Router, PortA, IsnA + 1, IsnB + 1, TcpFlags.Ack)));
        var sent = _kernel.Sent.Count;
        var fin = Tcp(PeerA, SrcA, Router, PortA, IsnA + 1, IsnB + 1, TcpFlags.Fin | TcpFlags.Ack);
        Assert.Equal((DropReason.None, default(HeldEntry)), Before(fin));
        Assert.Equal(sent + 1, _kernel.Sent.Count);
        Assert.Equal(TcpFlags.Fin | TcpFlags.Ack, _kernel.Parse(sent).Flags);
        // Its session is closing, so B's ACK of its SYN-ACK, which proves B, no longer hands it
        // to the kernel: the session is relayed here to its end.
        Assert.Equal(DropReason.None, _engine.Process(Tcp(PeerB, SrcB, Router, PortB, IsnB + 1, IsnA + 1, TcpFlags.Ack)));
        Assert.Equal(DropReason.None, _engine.Process(Tcp(PeerB, SrcB, Router, PortB, IsnB + 1, IsnA + 2, TcpFlags.Ack)));
        Assert.Empty(_offloader.Offloaded);
        Assert.Equal(SessionState.Closing, Assert.Single(_engine.GetSessions()).State);
        Assert.Empty(_offloader.StatesSet);
    }

    [Fact]
    public void ResetsOfNoSessionAndBytesThatAreNoSegmentAreDroppedAsAtInput()
    {
        Offloaded(KernelTcpState.CloseWait);
        Assert.Equal(DropReason.NoSession, Before(Tcp(PeerB, 1234, Router, PortB, 1, 0, TcpFlags.Rst, 0)).Result);
        Assert.Equal(DropReason.Malformed, Before(new byte[] { 0x45, 0, 0 }).Result);
        Assert.Empty(_offloader.StatesSet);
    }

    [Fact]
    public void AnEntryGoneOrAFailedStateChangeLeavesTheResetAsItWasAndIsCounted()
    {
        Offloaded(KernelTcpState.CloseWait);
        _offloader.States.Clear(); // destroyed, its event on the way
        Assert.Equal((DropReason.LeftToKernel, default(HeldEntry)), Before(ResetFromB()));
        Assert.Equal(0, _engine.GetCounters().ResetCheckFailures);

        _offloader.States[OriginalA] = KernelTcpState.CloseWait;
        _offloader.RefuseSetState = 12; // ENOMEM
        Assert.Equal((DropReason.LeftToKernel, default(HeldEntry)), Before(ResetFromB()));
        _offloader.RefuseSetState = 0;
        _offloader.RefuseReadState = 105; // ENOBUFS
        Assert.Equal((DropReason.LeftToKernel, default(HeldEntry)), Before(ResetFromB()));
        Assert.Equal((2L, 0L, 105), (_engine.GetCounters().ResetCheckFailures, _engine.GetCounters().HalfClosedResetsChecked, _engine.LastResetCheckErrno));
        Assert.Equal(KernelTcpState.CloseWait, _offloader.States[OriginalA]);
        Assert.Single(_engine.GetSessions());
    }

    [Fact]
    public void ASessionThatEndedWhileConntrackJudgedIsLeftAlone()
    {
        Offloaded(KernelTcpState.LastAck);
        var (result, held) = Before(ResetFromB());
        Assert.Equal(DropReason.LeftToKernel, result);
        _engine.OnKernelState(OriginalA, KernelFlowState.Reset); // the CLOSE event came first
        Assert.Single(_released);
        _engine.AfterConntrack(held);
        Assert.Single(_released);
        Assert.Single(_offloader.StatesSet);
        Assert.Single(_offloader.Removed);
    }

    [Fact]
    public void AnEntryMovedOnMeanwhileKeepsTheStateTheKernelGaveIt()
    {
        // Nothing but the reset should move an entry held ESTABLISHED (FINs wait in the same
        // queue), but should anything have, its state is the kernel's, not an older one.
        Offloaded(KernelTcpState.CloseWait);
        var (result, held) = Before(ResetFromB());
        Assert.Equal(DropReason.LeftToKernel, result);
        _offloader.States[OriginalA] = KernelTcpState.FinWait;
        _engine.AfterConntrack(held);
        Assert.Equal(KernelTcpState.FinWait, _offloader.States[OriginalA]);
        Assert.Single(_offloader.StatesSet);
        Assert.Empty(_released);
    }
}
