using Glass.Packets;

namespace Glass.Tests.Packets;

public class AllocationTests
{
    [Fact]
    public void HotPathsDoNotAllocate()
    {
        byte[] syn = new PacketSpec
        {
            TcpOptions = [2, 4, 5, 0xB4, 4, 2, 8, 10, 0, 0, 0, 1, 0, 0, 0, 0, 1, 3, 3, 7],
            Payload = new byte[100],
        }.Build();
        byte[] reply = new byte[TcpSegmentBuilder.MaxSynAckLength];
        byte[] withOptions = new PacketSpec { IpOptions = [7, 7, 4, 10, 1, 1, 1, 0], Flags = TcpFlags.Ack, Payload = new byte[100] }.Build();
        byte[] scratch = new byte[withOptions.Length];
        var synAck = new SynAckOptions { Mss = 1460, WindowScale = 7, SackPermitted = true, HasTimestamps = true, TsVal = 1, TsEcr = 2 };

        long checksum = Run(syn, reply, synAck, 10) + Strip(withOptions, scratch, 10); // warm up (JIT, tiering)
        long before = GC.GetAllocatedBytesForCurrentThread();
        checksum += Run(syn, reply, synAck, 1000);
        checksum += Strip(withOptions, scratch, 1000);
        long allocated = GC.GetAllocatedBytesForCurrentThread() - before;

        Assert.Equal(0, allocated);
        Assert.NotEqual(0, checksum);
    }

    private static long Strip(byte[] template, byte[] scratch, int n)
    {
        long acc = 0;
        for (int i = 0; i < n; i++)
        {
            template.CopyTo(scratch, 0);
            acc += Ipv4Options.Strip(scratch, 28, template.Length);
        }
        return acc;
    }

    private static long Run(byte[] packet, byte[] reply, SynAckOptions synAck, int n)
    {
        long acc = 0;
        for (int i = 0; i < n; i++)
        {
            if (!TcpPacket.TryParse(packet, out var tcp))
                return -1;
            ReadOnlySpan<byte> options = packet.AsSpan(tcp.OptionsOffset, tcp.OptionsLength);
            TcpSynOptions.TryParse(options, out var o);
            TcpTimestamps.TryFind(options, out uint tsVal, out _);
            acc += o.Mss + tsVal + (Checksum.VerifyTcp(packet, tcp) ? 1 : 0) + (Checksum.VerifyIpv4Header(packet) ? 1 : 0);
            TcpRewriter.Rewrite(packet, tcp, (uint)i, (ushort)i, ~(uint)i, (ushort)~i);
            TcpRewriter.RewritePartial(packet, tcp, (uint)i, (ushort)i, ~(uint)i, (ushort)~i);
            TcpRewriter.RewriteToPartial(packet, tcp, (uint)i, (ushort)i, ~(uint)i, (ushort)~i);
            Checksum.CompletePartialTcp(packet, tcp);
            Glass.Interop.VirtioNetHeader.TryCreate(packet, new Glass.Translator.SendOffload(true, 1448), out var vnet);
            Glass.Interop.VirtioNetHeader.Write(reply, vnet);
            acc += vnet.HdrLen;
            acc += TcpSegmentBuilder.WriteSynAck(reply, 1, 2, 3, 4, 5, 6, 7, (i & 1) == 0, synAck);
            acc += TcpSegmentBuilder.WriteRst(reply, 1, 2, 3, 4, 5, (i & 1) == 0 ? 9u : null);
        }
        return acc;
    }
}
