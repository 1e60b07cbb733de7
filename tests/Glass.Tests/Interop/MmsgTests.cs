using System.Runtime.InteropServices;
using Glass.Interop;

namespace Glass.Tests.Interop;

/// <summary>
/// The recvmmsg/sendmmsg batches against a real kernel: an AF_UNIX datagram socket pair, which
/// needs no privileges and keeps datagram boundaries as netlink and raw sockets do.
/// </summary>
public sealed unsafe partial class MmsgTests
{
    private const int AF_UNIX = 1, SOCK_DGRAM = 2;

    [LibraryImport("libc", SetLastError = true)]
    private static partial int socketpair(int domain, int type, int protocol, int* sv);

    [LibraryImport("libc", SetLastError = true)]
    private static partial nint send(SafeFileDescriptor fd, byte* buf, nuint len, int flags);

    private static (SafeFileDescriptor A, SafeFileDescriptor B) Pair()
    {
        int* sv = stackalloc int[2];
        Assert.Equal(0, socketpair(AF_UNIX, SOCK_DGRAM | Libc.SOCK_CLOEXEC, 0, sv));
        return (new SafeFileDescriptor(sv[0]), new SafeFileDescriptor(sv[1]));
    }

    private static void Send(SafeFileDescriptor fd, byte[] data)
    {
        fixed (byte* p = data)
            Assert.Equal(data.Length, (int)send(fd, p, (nuint)data.Length, 0));
    }

    private static byte[] Datagram(int length, byte seed) => Enumerable.Range(0, length).Select(i => (byte)(i * 7 + seed)).ToArray();

    [Fact]
    public void OneReceiveTakesEveryReadyDatagramUpToCapacityEachInItsSlot()
    {
        var (a, b) = Pair();
        using (a)
        using (b)
        {
            var sent = new[] { Datagram(1, 1), Datagram(1500, 2), Datagram(0, 3), Datagram(64, 4), Datagram(9, 5) };
            foreach (var d in sent)
                Send(a, d);

            var batch = new ReceiveBatch(slots: 3, slotSize: 2048);
            Assert.Equal(3, batch.Receive(b, dontWait: true));
            for (var i = 0; i < 3; i++)
            {
                Assert.Equal(sent[i], batch[i].ToArray());
                Assert.False(batch.Truncated(i));
            }
            Assert.Throws<ArgumentOutOfRangeException>(() => batch[3].Length);

            // The rest on the next call; then nothing is ready and the call says so instead of blocking.
            Assert.Equal(2, batch.Receive(b, dontWait: true));
            Assert.Equal(sent[3], batch[0].ToArray());
            Assert.Equal(sent[4], batch[1].ToArray());
            Assert.Equal(0, batch.Receive(b, dontWait: true));
            Assert.Equal(0, batch.Count);
        }
    }

    [Fact]
    public void ADatagramLongerThanItsSlotIsMarkedTruncated()
    {
        var (a, b) = Pair();
        using (a)
        using (b)
        {
            Send(a, Datagram(100, 9));
            Send(a, Datagram(10, 8));
            var batch = new ReceiveBatch(slots: 4, slotSize: 64);
            Assert.Equal(2, batch.Receive(b, dontWait: true));
            Assert.True(batch.Truncated(0));
            Assert.Equal(Datagram(100, 9)[..64], batch[0].ToArray());
            Assert.False(batch.Truncated(1));
            Assert.Equal(10, batch[1].Length);
        }
    }

    [Fact]
    public void ReceiveWaitsForTheFirstDatagramOnly()
    {
        var (a, b) = Pair();
        using (a)
        using (b)
        {
            var tv = new Libc.TimeVal { Microseconds = 50_000 };
            Assert.Equal(0, Libc.setsockopt(b, Libc.SOL_SOCKET, Libc.SO_RCVTIMEO, &tv, sizeof(Libc.TimeVal)));
            var batch = new ReceiveBatch(slots: 8, slotSize: 64);
            Assert.Equal(0, batch.Receive(b)); // the timeout passes: 0, not an exception

            var late = new Thread(() =>
            {
                Thread.Sleep(20);
                Send(a, Datagram(5, 1));
            });
            late.Start();
            tv.Microseconds = 0;
            tv.Seconds = 5;
            Assert.Equal(0, Libc.setsockopt(b, Libc.SOL_SOCKET, Libc.SO_RCVTIMEO, &tv, sizeof(Libc.TimeVal)));
            // Blocks for the first, then returns with what there is (MSG_WAITFORONE), not 8.
            Assert.Equal(1, batch.Receive(b));
            late.Join();
        }
    }

    [Fact]
    public void QueuedDatagramsAreCopiedWithTheirDestinationsAndSentInOneFlush()
    {
        using var receiver = new System.Net.Sockets.Socket(System.Net.Sockets.AddressFamily.InterNetwork,
            System.Net.Sockets.SocketType.Dgram, System.Net.Sockets.ProtocolType.Udp);
        receiver.Bind(new System.Net.IPEndPoint(System.Net.IPAddress.Loopback, 0));
        receiver.ReceiveTimeout = 5000;
        var port = (ushort)((System.Net.IPEndPoint)receiver.LocalEndPoint!).Port;
        using var sender = new SafeFileDescriptor(Libc.socket(Libc.AF_INET, SOCK_DGRAM | Libc.SOCK_CLOEXEC, 0));
        Assert.False(sender.IsInvalid);
        const uint loopback = 0x7F000001;

        var batch = new SendBatch(slots: 4, slotSize: 256);
        var first = Datagram(200, 1);
        Assert.True(batch.TryAdd(first, loopback, port));
        first[0] ^= 0xFF; // the batch holds its own copy
        Assert.True(batch.TryAdd(Datagram(3, 2), loopback, port));
        Assert.False(batch.TryAdd(new byte[257], loopback, port)); // longer than a slot
        Assert.Equal(2, batch.Count);
        Assert.Equal(Datagram(200, 1), batch.Queued(0, out var destination).ToArray());
        Assert.Equal(loopback, destination);

        Assert.Equal(0, batch.Flush(sender, out _));
        Assert.Equal(0, batch.Count);
        var buffer = new byte[512];
        Assert.Equal(Datagram(200, 1), buffer[..receiver.Receive(buffer)]);
        Assert.Equal(Datagram(3, 2), buffer[..receiver.Receive(buffer)]);
    }

    [Fact]
    public void ADatagramTheKernelRefusesIsCountedAndTheRestStillGo()
    {
        using var receiver = new System.Net.Sockets.Socket(System.Net.Sockets.AddressFamily.InterNetwork,
            System.Net.Sockets.SocketType.Dgram, System.Net.Sockets.ProtocolType.Udp);
        receiver.Bind(new System.Net.IPEndPoint(System.Net.IPAddress.Loopback, 0));
        receiver.ReceiveTimeout = 5000;
        var port = (ushort)((System.Net.IPEndPoint)receiver.LocalEndPoint!).Port;
        using var sender = new SafeFileDescriptor(Libc.socket(Libc.AF_INET, SOCK_DGRAM | Libc.SOCK_CLOEXEC, 0));

        var batch = new SendBatch(slots: 4, slotSize: 64);
        batch.TryAdd(Datagram(4, 1), 0x7F000001, port);
        batch.TryAdd(Datagram(4, 2), 0x7F000001, 0); // UDP to port 0: EINVAL
        batch.TryAdd(Datagram(4, 3), 0x7F000001, port);
        Assert.Equal(1, batch.Flush(sender, out var errno));
        Assert.Equal(22, errno); // EINVAL
        var buffer = new byte[64];
        Assert.Equal(Datagram(4, 1), buffer[..receiver.Receive(buffer)]);
        Assert.Equal(Datagram(4, 3), buffer[..receiver.Receive(buffer)]);
    }

    [Fact]
    public void AFullBatchRefusesMore()
    {
        var batch = new SendBatch(slots: 2, slotSize: 16);
        Assert.True(batch.TryAdd(new byte[16], 1));
        Assert.True(batch.TryAdd(new byte[1], 2));
        Assert.True(batch.IsFull);
        Assert.False(batch.TryAdd(new byte[1], 3));
        batch.Clear();
        Assert.Equal(0, batch.Count);
        Assert.True(batch.TryAdd(new byte[1], 3));
    }
}
