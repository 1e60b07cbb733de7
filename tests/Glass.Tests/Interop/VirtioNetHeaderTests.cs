using Glass.Interop;
using Glass.Packets;
using Glass.Tests.Translator;
using Glass.Translator;
using static Glass.Interop.VirtioNetHeader;

namespace Glass.Tests.Interop;

public sealed class VirtioNetHeaderTests
{
    private static readonly uint Router = Ipv4.Parse("203.0.113.1"), Peer = Ipv4.Parse("203.0.113.3");

    private static byte[] Segment(int payload, TcpFlags flags = TcpFlags.Ack, byte[]? options = null) =>
        TestPackets.Tcp(Router, 60001, Peer, 40000, 1, 2, flags, 501, options, new byte[payload]);

    [Fact]
    public void TheTenBytesAreLaidOutAsStructVirtioNetHdrLittleEndian()
    {
        var b = new byte[Length];
        Write(b, new Fields(VIRTIO_NET_HDR_F_NEEDS_CSUM, VIRTIO_NET_HDR_GSO_TCPV4, 0x0134, 0x05A8, 0x0014, 0x0010));
        Assert.Equal(new byte[] { 1, 1, 0x34, 0x01, 0xA8, 0x05, 0x14, 0x00, 0x10, 0x00 }, b);
        Assert.Equal(new Fields(1, 1, 0x0134, 0x05A8, 0x14, 0x10), Read(b));
    }

    [Fact]
    public void AFinishedPacketGetsAnAllZeroHeader()
    {
        Assert.True(TryCreate(Segment(100), default, out var f));
        Assert.Equal(default, f);
        // An ICMP error (the engine relays those too) is always finished.
        Assert.True(TryCreate(new byte[56], default, out f));
        Assert.Equal(default, f);
    }

    [Fact]
    public void APartialChecksumIsFinishedFromTheTcpHeaderOn()
    {
        // 12 bytes of options: a 32-byte TCP header after a 20-byte IPv4 header.
        var p = Segment(100, options: new byte[] { 1, 1, 8, 10, 0, 0, 0, 1, 0, 0, 0, 2 });
        Assert.True(TryCreate(p, new SendOffload(ChecksumPartial: true, SegmentSize: 0), out var f));
        Assert.Equal(new Fields(VIRTIO_NET_HDR_F_NEEDS_CSUM, VIRTIO_NET_HDR_GSO_NONE, 52, 0, 20, 16), f);
    }

    [Fact]
    public void ASuperPacketIsCutAsTcpV4AtTheSegmentSize()
    {
        var p = Segment(20_000);
        Assert.True(TryCreate(p, new SendOffload(true, 1448), out var f));
        Assert.Equal(new Fields(VIRTIO_NET_HDR_F_NEEDS_CSUM, VIRTIO_NET_HDR_GSO_TCPV4, 40, 1448, 20, 16), f);

        // CWR marks it as the kernel's TCP does (SKB_GSO_TCP_ECN), so CWR stays on the first segment.
        Assert.True(TryCreate(Segment(20_000, TcpFlags.Ack | TcpFlags.Cwr), new SendOffload(true, 1448), out f));
        Assert.Equal(VIRTIO_NET_HDR_GSO_TCPV4 | VIRTIO_NET_HDR_GSO_ECN, f.GsoType);
    }

    [Fact]
    public void WhatTheKernelCouldNotFinishIsRefused()
    {
        // Cutting without finishing the checksum, or any offload for something not TCP or too short.
        Assert.False(TryCreate(Segment(20_000), new SendOffload(false, 1448), out _));
        var icmp = new byte[56];
        icmp[0] = 0x45;
        icmp[9] = 1;
        Assert.False(TryCreate(icmp, new SendOffload(true, 0), out _));
        Assert.False(TryCreate(Segment(0).AsSpan(0, 30), new SendOffload(true, 0), out _));
        var badOffset = Segment(10);
        badOffset[20 + 12] = 0x10; // data offset 4 bytes
        Assert.False(TryCreate(badOffset, new SendOffload(true, 0), out _));
    }

    [Fact]
    public void TheTunRulesUntrackAndForwardWhatEntersTheDeviceInOneTransactionPerTable()
    {
        var rules = new TunRules("glass6", 6);
        Assert.Equal(
            "*raw\n-I PREROUTING -i glass6 -m comment --comment glass-translator-6 -j CT --notrack\nCOMMIT\n" +
            "*filter\n-I FORWARD -i glass6 -m comment --comment glass-translator-6 -j ACCEPT\nCOMMIT\n",
            rules.Script("-I"));
        Assert.StartsWith("*raw\n-D PREROUTING -i glass6 ", rules.Script("-D"));
        Assert.Contains("iptables -t filter -I FORWARD -i glass6", rules.Describe());
    }
}
