using Glass.Packets;
using Glass.Translator;
using static Glass.Tests.Translator.TestPackets;

namespace Glass.Tests.Translator;

/// <summary>
/// What the engine tells the controller before a link pairs: the connector's (side A's) first SYN,
/// so its binder dials only then; and how a link ended before pairing refuses the SYNs it holds.
/// </summary>
public sealed class SpliceEngineArrivalTests
{
    private static readonly uint Router = Ipv4.Parse("203.0.113.1");
    private static readonly uint PeerA = Ipv4.Parse("198.51.100.2");
    private static readonly uint PeerB = Ipv4.Parse("198.51.100.7");
    private const ushort PortA = 60000, PortB = 60001;

    private readonly FakeKernel _kernel = new();
    private readonly SpliceEngine _engine;
    private readonly List<LinkRelease> _arrived = new();

    public SpliceEngineArrivalTests()
    {
        _engine = new SpliceEngine(_kernel, new FakeClock());
        _engine.Arrived += _arrived.Add;
        Assert.True(_engine.Link(PeerA, PortA, PeerB, PortB).Success);
    }

    private static byte[] Syn(uint from, ushort src, ushort to, uint isn) => Tcp(from, src, Router, to, isn, 0, TcpFlags.Syn);

    [Fact]
    public void OnlyTheFirstSynOfSideAIsReported()
    {
        _engine.Process(Syn(PeerB, 50000, PortB, 7));
        Assert.Empty(_arrived);
        _engine.Process(Syn(PeerA, 40000, PortA, 5));
        var a = Assert.Single(_arrived);
        Assert.Equal((PeerA, PortA, PeerB, PortB, LinkRelease.ArrivedReason), (a.PeerA, a.RouterPortA, a.PeerB, a.RouterPortB, a.Reason));
        Assert.Equal(Assert.Single(_engine.GetSessions()).Id, a.SessionId);

        // Its retransmission and a rival from another port are no news.
        _engine.Process(Syn(PeerA, 40000, PortA, 5));
        _engine.Process(Syn(PeerA, 40001, PortA, 9));
        Assert.Single(_arrived);
    }

    [Fact]
    public void ASynFromAnotherAddressOrToAnotherPortIsNoArrival()
    {
        Assert.Equal(DropReason.NotLinked, _engine.Process(Syn(Ipv4.Parse("198.51.100.99"), 40000, PortA, 5)));
        Assert.Equal(DropReason.NotLinked, _engine.Process(Syn(PeerA, 40000, PortB, 5)));
        Assert.Empty(_arrived);
    }

    [Fact]
    public void UnlinkingRefusesTheWaitingSynAtOnce()
    {
        _engine.Process(Syn(PeerA, 40000, PortA, 5));
        Assert.Empty(_kernel.Sent);
        Assert.True(_engine.Unlink(PeerA, PortA));

        Assert.Equal(PeerA, Assert.Single(_kernel.Sent).Destination);
        var rst = _kernel.Parse(0);
        Assert.Equal((Router, PortA, (ushort)40000), (rst.SourceAddress, rst.SourcePort, rst.DestinationPort));
        Assert.Equal((TcpFlags.Rst | TcpFlags.Ack, 0u, 6u), (rst.Flags, rst.Sequence, rst.Acknowledgment));
        Assert.Empty(_engine.GetSessions());
    }

    [Fact]
    public void UnlinkingResetsAnAnsweredSynAtTheSequenceItsSynAckTaughtIt()
    {
        _engine.Process(Syn(PeerA, 40000, PortA, 5));
        _engine.Process(Syn(PeerB, 50000, PortB, 700));
        var synAcks = _kernel.Sent.Count;
        Assert.True(synAcks >= 1); // A is answered with B's ISN
        Assert.True(_engine.Unlink(PeerB, PortB));

        var toA = Enumerable.Range(synAcks, _kernel.Sent.Count - synAcks).Select(_kernel.Parse).Single(t => t.DestinationPort == 40000);
        Assert.Equal((TcpFlags.Rst | TcpFlags.Ack, 701u, 6u), (toA.Flags, toA.Sequence, toA.Acknowledgment));
    }
}
