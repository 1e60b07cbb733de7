using Glass.Packets;
using Glass.Translator;
using static Glass.Tests.Translator.TestPackets;

namespace Glass.Tests.Translator;

/// <summary>A dial to a link that ended unpaired is refused with a reset; other unlinked SYNs stay unanswered.</summary>
public sealed class SpliceEngineRefusalTests
{
    private static readonly uint Router = Ipv4.Parse("203.0.113.1");
    private static readonly uint PeerA = Ipv4.Parse("203.0.113.2");
    private static readonly uint PeerB = Ipv4.Parse("198.51.100.7");
    private const ushort PortA = 60000, PortB = 60001, SrcA = 40001;
    private const uint IsnA = 0x1000_0000;

    private readonly FakeKernel _kernel = new();
    private readonly FakeClock _clock = new();
    private readonly SpliceEngine _engine;

    public SpliceEngineRefusalTests() =>
        _engine = new SpliceEngine(_kernel, _clock, new SpliceOptions { PendingTimeout = TimeSpan.FromSeconds(60) });

    private byte[] SynA(ushort port = PortA) => Tcp(PeerA, SrcA, Router, port, IsnA, 0, TcpFlags.Syn, 64240, LinuxSynOptions(1460, 111, 7));

    [Fact]
    public void ALateDialToACancelledLinkIsReset()
    {
        Assert.True(_engine.Link(PeerA, PortA, PeerB, PortB).Success);
        Assert.True(_engine.Unlink(PeerB, PortB)); // the binder gave up

        Assert.Equal(DropReason.NotLinked, _engine.Process(SynA()));
        var (packet, destination) = Assert.Single(_kernel.Sent);
        Assert.Equal(PeerA, destination);
        var rst = _kernel.Parse(0);
        Assert.Equal((Router, PortA, PeerA, SrcA), (rst.SourceAddress, rst.SourcePort, rst.DestinationAddress, rst.DestinationPort));
        Assert.Equal(TcpFlags.Rst | TcpFlags.Ack, rst.Flags);
        Assert.Equal(0u, rst.Sequence);
        Assert.Equal(IsnA + 1, rst.Acknowledgment); // acceptable to the dialer: it acknowledges its SYN
        Assert.Equal(1, _engine.GetCounters().SynsRefused);
        Assert.Equal(1, _engine.GetCounters().Drops[nameof(DropReason.NotLinked)]);
    }

    [Fact]
    public void ADialToALinkThatRanOutOfTimeIsResetUntilTheMarkExpires()
    {
        Assert.True(_engine.Link(PeerA, PortA, PeerB, PortB).Success);
        _clock.Advance(TimeSpan.FromSeconds(61));
        Assert.Equal(1, _engine.Sweep());
        Assert.Equal(DropReason.NotLinked, _engine.Process(SynA()));
        Assert.Single(_kernel.Sent);

        _clock.Advance(TimeSpan.FromMilliseconds(SpliceEngine.RefuseMilliseconds));
        _engine.Sweep();
        Assert.Equal(DropReason.NotLinked, _engine.Process(SynA()));
        Assert.Single(_kernel.Sent); // forgotten: silent again
    }

    [Fact]
    public void ASynNoLinkEverNamedGetsNoAnswer()
    {
        Assert.Equal(DropReason.NotLinked, _engine.Process(SynA()));
        Assert.True(_engine.Link(PeerA, PortA, PeerB, PortB).Success);
        Assert.Equal(DropReason.NotLinked, _engine.Process(SynA((ushort)(PortA + 5))));
        Assert.Empty(_kernel.Sent);
        Assert.Equal(0, _engine.GetCounters().SynsRefused);
    }

    [Fact]
    public void ANewLinkOnTheSamePairTakesItsSynsAgain()
    {
        Assert.True(_engine.Link(PeerA, PortA, PeerB, PortB).Success);
        Assert.True(_engine.Unlink(PeerA, PortA));
        Assert.True(_engine.Link(PeerA, PortA, PeerB, PortB).Success);
        Assert.Equal(DropReason.WaitingForPeer, _engine.Process(SynA()));
        Assert.Empty(_kernel.Sent);
    }

    [Fact]
    public void ASessionThatPairedLeavesNoMark()
    {
        Assert.True(_engine.Link(PeerA, PortA, PeerB, PortB).Success);
        _engine.Process(SynA());
        _engine.Process(Tcp(PeerB, 50002, Router, PortB, 0xFFFF_FF00, 0, TcpFlags.Syn, 65535, LinuxSynOptions(1400, 222, 9)));
        _engine.Process(Tcp(PeerA, SrcA, Router, PortA, IsnA + 1, 0xFFFF_FF01, TcpFlags.Ack));
        _engine.Process(Tcp(PeerB, 50002, Router, PortB, 0xFFFF_FF01, IsnA + 1, TcpFlags.Ack));
        Assert.Equal(SessionState.Established, Assert.Single(_engine.GetSessions()).State);
        var sent = _kernel.Sent.Count;
        // A new connection from another source port to the same router port, once the pair is free, is not refused.
        Assert.Equal(DropReason.NotLinked, _engine.Process(Tcp(PeerA, SrcA + 1, Router, PortA, 5, 0, TcpFlags.Syn, 64240, LinuxSynOptions(1460, 1, 7))));
        Assert.Equal(sent, _kernel.Sent.Count);
    }
}
