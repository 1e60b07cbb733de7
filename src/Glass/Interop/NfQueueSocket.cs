using static Glass.Interop.NfQueueMessages;

namespace Glass.Interop;

/// <summary>
/// A netlink socket bound to one NFQUEUE queue: receives queued IPv4 packets and returns verdicts.
/// Owns its descriptor; one reader thread at a time.
/// </summary>
internal sealed class NfQueueSocket : IDisposable
{
    // Large enough for a 64 KiB packet plus its netlink attributes.
    public const int ReceiveBufferSize = 70_000;

    private readonly NetfilterSocket _socket;
    private readonly byte[] _send = new byte[128];

    public ushort Queue { get; }

    private NfQueueSocket(NetfilterSocket socket, ushort queue)
    {
        _socket = socket;
        Queue = queue;
    }

    /// <summary>
    /// Binds queue <paramref name="queue"/>. With <paramref name="gso"/> (NFQA_CFG_F_GSO) the kernel
    /// queues GSO super-packets whole and leaves partial checksums unfinished, instead of cutting
    /// each into MTU-sized segments and checksumming them first; only ask for it when whatever
    /// sends the packets on can hand such packets back to the kernel.
    /// </summary>
    public static NfQueueSocket Open(ushort queue, uint maxQueueLength = 4096, int receiveTimeoutMs = 200, bool gso = false)
    {
        // A deep kernel-side buffer absorbs bursts (whole GSO packets need more of it); NO_ENOBUFS
        // keeps an overrun from failing recv.
        var sock = new NfQueueSocket(NetfilterSocket.Open(0, gso ? 32 << 20 : 8 << 20, receiveTimeoutMs, noEnobufs: true), queue);
        try
        {
            var b = sock._send.AsSpan();
            sock.Request(b.Slice(0, WriteConfigCommand(b, sock._socket.NextSequence(), queue, NFQNL_CFG_CMD_BIND)), $"binding NFQUEUE {queue}");
            sock.Request(b.Slice(0, WriteConfigParams(b, sock._socket.NextSequence(), queue, 0xFFFF, maxQueueLength)), $"configuring NFQUEUE {queue}");
            if (gso)
                sock.Request(b.Slice(0, WriteConfigFlags(b, sock._socket.NextSequence(), queue, NFQA_CFG_F_GSO, NFQA_CFG_F_GSO)), $"asking NFQUEUE {queue} for whole GSO packets");
            return sock;
        }
        catch
        {
            sock.Dispose();
            throw;
        }
    }

    /// <summary>Sends a request that asks for an acknowledgement and waits for it.</summary>
    private void Request(ReadOnlySpan<byte> message, string what)
    {
        var errno = _socket.Execute(message);
        if (errno == Libc.ETIMEDOUT)
            throw new TimeoutException($"The kernel did not acknowledge {what} within 5 s.");
        if (errno != 0)
        {
            var hint = errno == Libc.EBUSY || errno == Libc.EPERM
                ? "Another process may already own this queue; pick another with -Queue."
                : null;
            throw new KernelException(what, errno, hint);
        }
    }

    private void Send(ReadOnlySpan<byte> message, string what)
    {
        var errno = _socket.Send(message);
        if (errno != 0)
            throw new KernelException(what, errno);
    }

    /// <summary>
    /// Receives one datagram. Returns its length, 0 when the receive timeout passed (or nothing is
    /// ready with <paramref name="dontWait"/>), and throws on any other failure.
    /// </summary>
    public int Receive(Span<byte> buffer, bool dontWait = false) => Math.Max(0, _socket.Receive(buffer, dontWait));

    /// <summary>
    /// Receives up to a batch of queued packets with one recvmmsg (see <see cref="ReceiveBatch.Receive"/>):
    /// the number of datagrams, 0 when the receive timeout passed.
    /// </summary>
    public int Receive(ReceiveBatch batch, bool dontWait = false) => batch.Receive(_socket.Descriptor, dontWait);

    /// <summary>A verdict (NF_ACCEPT or NF_DROP) for one queued packet.</summary>
    public void Verdict(uint packetId, uint verdict) =>
        Send(_send.AsSpan(0, WriteVerdict(_send, _socket.NextSequence(), Queue, packetId, verdict, batch: false)), "NFQUEUE verdict");

    /// <summary>Drops every queued packet whose id is at most <paramref name="lastId"/>.</summary>
    public void DropUpTo(uint lastId) =>
        Send(_send.AsSpan(0, WriteVerdict(_send, _socket.NextSequence(), Queue, lastId, NF_DROP, batch: true)), "NFQUEUE verdict");

    public void Dispose()
    {
        if (!_socket.Descriptor.IsClosed)
        {
            // Best effort: closing the socket unbinds the queue as well.
            _socket.Send(_send.AsSpan(0, WriteConfigCommand(_send, _socket.NextSequence(), Queue, NFQNL_CFG_CMD_UNBIND)));
        }
        _socket.Dispose();
    }
}
