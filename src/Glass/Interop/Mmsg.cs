using System.Buffers.Binary;
using System.Runtime.InteropServices;

namespace Glass.Interop;

/// <summary>
/// recvmmsg(2) and sendmmsg(2): many datagrams per system call. Structs as laid out on 64-bit
/// Linux (linux/socket.h, linux/uio.h); flags from linux/socket.h.
/// </summary>
internal static unsafe partial class Mmsg
{
    // linux/socket.h
    public const int MSG_TRUNC = 0x20;
    public const int MSG_DONTWAIT = 0x40;
    public const int MSG_WAITFORONE = 0x10000;

    /// <summary>struct iovec (linux/uio.h).</summary>
    [StructLayout(LayoutKind.Sequential)]
    public struct IoVec
    {
        public void* Base;
        public nuint Length;
    }

    /// <summary>struct user_msghdr (linux/socket.h): 56 bytes on 64-bit.</summary>
    [StructLayout(LayoutKind.Sequential)]
    public struct MsgHdr
    {
        public void* Name;
        public int NameLength;
        public IoVec* Iov;
        public nuint IovLength;
        public void* Control;
        public nuint ControlLength;
        public int Flags;
    }

    /// <summary>struct mmsghdr (linux/socket.h): a msghdr and the bytes that call moved.</summary>
    [StructLayout(LayoutKind.Sequential)]
    public struct MMsgHdr
    {
        public MsgHdr Header;
        public uint Length;
    }

    [LibraryImport("libc", SetLastError = true)]
    public static partial int recvmmsg(SafeFileDescriptor fd, MMsgHdr* msgvec, uint vlen, int flags, void* timeout);

    [LibraryImport("libc", SetLastError = true)]
    public static partial int sendmmsg(SafeFileDescriptor fd, MMsgHdr* msgvec, uint vlen, int flags);
}

/// <summary>
/// Slots for one recvmmsg call: each a buffer of <see cref="SlotSize"/> bytes behind one iovec.
/// Everything lives on the pinned heap, allocated once, so the kernel writes straight into it and
/// nothing is allocated per call. One reader at a time.
/// </summary>
internal sealed unsafe class ReceiveBatch
{
    private readonly Mmsg.MMsgHdr[] _headers;
    private readonly Mmsg.IoVec[] _iovecs;
    private readonly byte[] _buffer;

    public ReceiveBatch(int slots, int slotSize)
    {
        ArgumentOutOfRangeException.ThrowIfLessThan(slots, 1);
        ArgumentOutOfRangeException.ThrowIfLessThan(slotSize, 1);
        Capacity = slots;
        SlotSize = slotSize;
        _headers = GC.AllocateArray<Mmsg.MMsgHdr>(slots, pinned: true);
        _iovecs = GC.AllocateArray<Mmsg.IoVec>(slots, pinned: true);
        _buffer = GC.AllocateUninitializedArray<byte>(checked(slots * slotSize), pinned: true);
        var iov = (Mmsg.IoVec*)Marshal.UnsafeAddrOfPinnedArrayElement(_iovecs, 0);
        var data = (byte*)Marshal.UnsafeAddrOfPinnedArrayElement(_buffer, 0);
        for (int i = 0; i < slots; i++)
            iov[i] = new Mmsg.IoVec { Base = data + (long)i * slotSize, Length = (nuint)slotSize };
    }

    public int Capacity { get; }
    public int SlotSize { get; }
    /// <summary>Datagrams the last <see cref="Receive"/> filled.</summary>
    public int Count { get; private set; }

    /// <summary>Datagram <paramref name="i"/> of the last receive (writable: the engine rewrites in place).</summary>
    public Span<byte> this[int i]
    {
        get
        {
            ArgumentOutOfRangeException.ThrowIfGreaterThanOrEqual((uint)i, (uint)Count);
            var n = (int)Math.Min(_headers[i].Length, (uint)SlotSize);
            return _buffer.AsSpan(i * SlotSize, n);
        }
    }

    /// <summary>True when datagram <paramref name="i"/> was longer than its slot and was cut (MSG_TRUNC).</summary>
    public bool Truncated(int i) => (_headers[i].Header.Flags & Mmsg.MSG_TRUNC) != 0;

    /// <summary>
    /// One recvmmsg: waits (up to the socket's SO_RCVTIMEO) for the first datagram unless
    /// <paramref name="dontWait"/>, then takes whatever else is ready, up to <see cref="Capacity"/>.
    /// Returns how many arrived, 0 on timeout; throws on any other failure.
    /// </summary>
    public int Receive(SafeFileDescriptor fd, bool dontWait = false)
    {
        var h = (Mmsg.MMsgHdr*)Marshal.UnsafeAddrOfPinnedArrayElement(_headers, 0);
        var iov = (Mmsg.IoVec*)Marshal.UnsafeAddrOfPinnedArrayElement(_iovecs, 0);
        for (int i = 0; i < Capacity; i++)
            h[i] = new Mmsg.MMsgHdr { Header = new Mmsg.MsgHdr { Iov = iov + i, IovLength = 1 } };
        var flags = Mmsg.MSG_WAITFORONE | (dontWait ? Mmsg.MSG_DONTWAIT : 0);
        while (true)
        {
            var n = Mmsg.recvmmsg(fd, h, (uint)Capacity, flags, null);
            if (n >= 0)
                return Count = n;
            var errno = Marshal.GetLastPInvokeError();
            if (errno == Libc.EINTR)
                continue;
            Count = 0;
            if (errno == Libc.EAGAIN || errno == Libc.ENOBUFS)
                return 0;
            throw new KernelException("recvmmsg", errno);
        }
    }
}

/// <summary>
/// IPv4 datagrams queued for one sendmmsg call, each copied into its own slot with its own
/// destination (struct sockaddr_in). Pinned and allocated once; one writer at a time.
/// </summary>
internal sealed unsafe class SendBatch
{
    private readonly Mmsg.MMsgHdr[] _headers;
    private readonly Mmsg.IoVec[] _iovecs;
    private readonly Libc.SockAddrIn[] _addresses;
    private readonly byte[] _buffer;

    public SendBatch(int slots, int slotSize)
    {
        ArgumentOutOfRangeException.ThrowIfLessThan(slots, 1);
        ArgumentOutOfRangeException.ThrowIfLessThan(slotSize, 1);
        Capacity = slots;
        SlotSize = slotSize;
        _headers = GC.AllocateArray<Mmsg.MMsgHdr>(slots, pinned: true);
        _iovecs = GC.AllocateArray<Mmsg.IoVec>(slots, pinned: true);
        _addresses = GC.AllocateArray<Libc.SockAddrIn>(slots, pinned: true);
        _buffer = GC.AllocateUninitializedArray<byte>(checked(slots * slotSize), pinned: true);
    }

    public int Capacity { get; }
    public int SlotSize { get; }
    public int Count { get; private set; }
    public bool IsFull => Count == Capacity;

    /// <summary>
    /// Copies <paramref name="datagram"/> into the next slot, to <paramref name="destination"/>
    /// (host order; <paramref name="port"/> stays 0 for raw sockets); false when it does not fit or
    /// the batch is full.
    /// </summary>
    public bool TryAdd(ReadOnlySpan<byte> datagram, uint destination, ushort port = 0)
    {
        if (Count == Capacity || datagram.Length > SlotSize)
            return false;
        var i = Count++;
        datagram.CopyTo(_buffer.AsSpan(i * SlotSize));
        _iovecs[i] = new Mmsg.IoVec
        {
            Base = (byte*)Marshal.UnsafeAddrOfPinnedArrayElement(_buffer, i * SlotSize),
            Length = (nuint)datagram.Length,
        };
        _addresses[i] = new Libc.SockAddrIn
        {
            Family = Libc.AF_INET,
            PortBigEndian = BitConverter.IsLittleEndian ? BinaryPrimitives.ReverseEndianness(port) : port,
            AddressBigEndian = BitConverter.IsLittleEndian ? BinaryPrimitives.ReverseEndianness(destination) : destination,
        };
        _headers[i] = new Mmsg.MMsgHdr
        {
            Header = new Mmsg.MsgHdr
            {
                Name = (void*)Marshal.UnsafeAddrOfPinnedArrayElement(_addresses, i),
                NameLength = sizeof(Libc.SockAddrIn),
                Iov = (Mmsg.IoVec*)Marshal.UnsafeAddrOfPinnedArrayElement(_iovecs, i),
                IovLength = 1,
            },
        };
        return true;
    }

    /// <summary>Datagram <paramref name="i"/> as queued, and where it goes (for tests).</summary>
    public ReadOnlySpan<byte> Queued(int i, out uint destination)
    {
        ArgumentOutOfRangeException.ThrowIfGreaterThanOrEqual((uint)i, (uint)Count);
        var a = _addresses[i].AddressBigEndian;
        destination = BitConverter.IsLittleEndian ? BinaryPrimitives.ReverseEndianness(a) : a;
        return _buffer.AsSpan(i * SlotSize, (int)_iovecs[i].Length);
    }

    /// <summary>
    /// Sends every queued datagram with as few sendmmsg calls as the kernel allows and empties the
    /// batch. A datagram the kernel refuses is skipped and counted (its errno in
    /// <paramref name="lastErrno"/>); TCP retransmits it end to end. Returns how many were refused.
    /// </summary>
    public int Flush(SafeFileDescriptor fd, out int lastErrno)
    {
        lastErrno = 0;
        var refused = 0;
        var h = (Mmsg.MMsgHdr*)Marshal.UnsafeAddrOfPinnedArrayElement(_headers, 0);
        var next = 0;
        while (next < Count)
        {
            var n = Mmsg.sendmmsg(fd, h + next, (uint)(Count - next), 0);
            if (n > 0)
            {
                next += n;
                continue;
            }
            var errno = Marshal.GetLastPInvokeError();
            if (n < 0 && errno == Libc.EINTR)
                continue;
            // The datagram at 'next' failed (sendmmsg reports an error only for the first one it tried).
            lastErrno = errno;
            refused++;
            next++;
        }
        Count = 0;
        return refused;
    }

    /// <summary>Forgets what was queued without sending it.</summary>
    public void Clear() => Count = 0;
}
