using System.Runtime.InteropServices;
using System.Text;
using Glass.Translator;

namespace Glass.Interop;

/// <summary>
/// A tun device (IFF_TUN | IFF_NO_PI | IFF_VNET_HDR) that the translator writes relayed packets
/// into. The kernel takes each write as a packet received on the device and forwards it like a
/// router: a GSO super-packet with a partial checksum stays one packet all the way to the
/// receiver, cut into segments only where a device needs it, instead of being cut and checksummed
/// in the queue and sent one raw sendto per segment.
/// </summary>
/// <remarks>
/// The device has no address and no route points at it, so nothing is ever read from it. For the
/// kernel to forward what enters it, only this device is configured (net/ipv4/conf/DEV): forwarding
/// (decided by the input device), accept_local (the packets come from the router's own address),
/// route_localnet (to peers on this host over 127.0.0.0/8; only the translator writes here) and
/// rp_filter 0, which must also be 0 for "all" since the kernel uses the larger of the two
/// (fib_validate_source). The device lives as long as its descriptor, which this object owns.
/// </remarks>
internal sealed unsafe partial class TunDevice : IPacketSender, IDisposable
{
    // linux/if_tun.h: _IOW('T', nr, int)
    public const uint TUNSETIFF = 0x400454CA;
    public const uint TUNSETVNETHDRSZ = 0x400454D8;
    public const uint TUNSETVNETLE = 0x400454DC;
    public const short IFF_TUN = 0x0001;
    public const short IFF_NO_PI = 0x1000;
    public const short IFF_VNET_HDR = 0x4000;

    // linux/sockios.h, linux/if.h
    public const uint SIOCGIFFLAGS = 0x8913;
    public const uint SIOCSIFFLAGS = 0x8914;
    public const uint SIOCSIFMTU = 0x8922;
    public const short IFF_UP = 0x1;
    // drivers/net/tun.c: MAX_MTU, the most the device takes
    public const int TunMaxMtu = 65535;
    public const int IFNAMSIZ = 16;

    // asm-generic/fcntl.h
    private const int O_RDWR = 2;
    private const int O_CLOEXEC = 0x80000;

    private const int SOCK_DGRAM = 2;

    /// <summary>struct ifreq (linux/if.h): the name, then a 24-byte union of which we use ifr_flags or ifr_mtu.</summary>
    [StructLayout(LayoutKind.Explicit, Size = 40)]
    private struct IfReq
    {
        [FieldOffset(0)] public fixed byte Name[IFNAMSIZ];
        [FieldOffset(IFNAMSIZ)] public short Flags;
        [FieldOffset(IFNAMSIZ)] public int Mtu;
    }

    [LibraryImport("libc", EntryPoint = "open", SetLastError = true, StringMarshalling = StringMarshalling.Utf8)]
    private static partial int open(string path, int flags);

    [LibraryImport("libc", SetLastError = true)]
    private static partial int ioctl(SafeFileDescriptor fd, nuint request, void* arg);

    [LibraryImport("libc", SetLastError = true)]
    private static partial nint writev(SafeFileDescriptor fd, Mmsg.IoVec* iov, int iovcnt);

    private readonly SafeFileDescriptor _fd;

    public string Name { get; }
    public long SendErrors;
    public int LastErrno;

    private TunDevice(SafeFileDescriptor fd, string name)
    {
        _fd = fd;
        Name = name;
    }

    /// <summary>
    /// Creates the device, brings it up and lets the kernel forward what enters it. Throws a
    /// <see cref="KernelException"/> naming the step that failed (no /dev/net/tun, not root,
    /// rp_filter on for "all").
    /// </summary>
    public static TunDevice Open(string name, string procSys = "/proc/sys")
    {
        if (name.Length == 0 || Encoding.ASCII.GetByteCount(name) >= IFNAMSIZ)
            throw new ArgumentException($"A device name has 1 to {IFNAMSIZ - 1} characters: '{name}'.", nameof(name));
        var all = ReadSysctl(procSys, "net/ipv4/conf/all/rp_filter");
        if (all is not null && all != "0")
            throw new KernelException("forwarding through a tun device", Libc.EPERM,
                $"net.ipv4.conf.all.rp_filter is {all}, and the kernel applies the larger of it and the device's own, which drops what the translator sends through {name}. Set it to 0 and keep reverse-path filtering per interface (net.ipv4.conf.IFACE.rp_filter), or the translator sends with a raw socket, slower");

        var raw = open("/dev/net/tun", O_RDWR | O_CLOEXEC);
        if (raw < 0)
            throw new KernelException("open(/dev/net/tun)", Marshal.GetLastPInvokeError(), "The kernel needs the tun driver (CONFIG_TUN) and the translator CAP_NET_ADMIN.");
        var fd = new SafeFileDescriptor(raw);
        try
        {
            var req = Request(name, IFF_TUN | IFF_NO_PI | IFF_VNET_HDR);
            Ioctl(fd, TUNSETIFF, &req, $"TUNSETIFF({name})");
            var size = VirtioNetHeader.Length;
            Ioctl(fd, TUNSETVNETHDRSZ, &size, "TUNSETVNETHDRSZ");
            var littleEndian = 1;
            Ioctl(fd, TUNSETVNETLE, &littleEndian, "TUNSETVNETLE");

            // IPv6 would only send router solicitations into a device nobody reads.
            TryWriteSysctl(procSys, $"net/ipv6/conf/{name}/disable_ipv6", "1");
            WriteSysctl(procSys, $"net/ipv4/conf/{name}/forwarding", "1");
            WriteSysctl(procSys, $"net/ipv4/conf/{name}/accept_local", "1");
            WriteSysctl(procSys, $"net/ipv4/conf/{name}/rp_filter", "0");
            // Relayed packets to a peer on this host over loopback carry 127.0.0.0/8 addresses, which
            // the kernel drops as martians when they come in on any device but lo unless this is set.
            WriteSysctl(procSys, $"net/ipv4/conf/{name}/route_localnet", "1");
            SetUp(name);
            return new TunDevice(fd, name);
        }
        catch
        {
            fd.Dispose();
            throw;
        }
    }

    private static IfReq Request(string name, short flags)
    {
        var req = new IfReq { Flags = flags };
        var bytes = Encoding.ASCII.GetBytes(name);
        for (var i = 0; i < bytes.Length; i++)
            req.Name[i] = bytes[i];
        return req;
    }

    private static void Ioctl(SafeFileDescriptor fd, uint request, void* arg, string what)
    {
        if (ioctl(fd, request, arg) != 0)
            throw new KernelException(what, Marshal.GetLastPInvokeError());
    }

    private static void SetUp(string name)
    {
        var s = Libc.socket(Libc.AF_INET, SOCK_DGRAM | Libc.SOCK_CLOEXEC, 0);
        if (s < 0)
            throw new KernelException("socket(AF_INET, SOCK_DGRAM)", Marshal.GetLastPInvokeError());
        using var fd = new SafeFileDescriptor(s);
        // Nothing is routed out through the device, so its MTU limits nothing; at the maximum it
        // also stays out of the smallest-link MSS clamp (TranslatorHost.SmallestLinkMss).
        var mtu = Request(name, 0);
        mtu.Mtu = TunMaxMtu;
        Ioctl(fd, SIOCSIFMTU, &mtu, $"SIOCSIFMTU({name}, {TunMaxMtu})");
        var req = Request(name, 0);
        Ioctl(fd, SIOCGIFFLAGS, &req, $"SIOCGIFFLAGS({name})");
        req.Flags |= IFF_UP;
        Ioctl(fd, SIOCSIFFLAGS, &req, $"SIOCSIFFLAGS({name}, IFF_UP)");
    }

    private static string? ReadSysctl(string procSys, string key)
    {
        try
        {
            return File.ReadAllText(Path.Combine(procSys, key)).Trim();
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            return null;
        }
    }

    private static void WriteSysctl(string procSys, string key, string value)
    {
        try
        {
            File.WriteAllText(Path.Combine(procSys, key), value);
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            throw new KernelException($"setting {key.Replace('/', '.')} = {value}", Libc.EPERM, e.Message);
        }
    }

    private static void TryWriteSysctl(string procSys, string key, string value)
    {
        try
        {
            File.WriteAllText(Path.Combine(procSys, key), value);
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
        }
    }

    /// <summary>Sends a finished datagram: the kernel forwards it as it is.</summary>
    public bool Send(ReadOnlySpan<byte> packet, uint destination) => Send(packet, destination, default);

    /// <summary>
    /// One writev of the virtio_net_hdr and the datagram. The kernel routes by the datagram's own
    /// destination, so <paramref name="destination"/> is not needed here.
    /// </summary>
    public bool Send(ReadOnlySpan<byte> packet, uint destination, SendOffload offload)
    {
        if (!VirtioNetHeader.TryCreate(packet, offload, out var fields))
        {
            LastErrno = 22; // EINVAL: nothing the kernel could finish
            SendErrors++;
            return false;
        }
        Span<byte> header = stackalloc byte[VirtioNetHeader.Length];
        VirtioNetHeader.Write(header, fields);
        fixed (byte* h = header)
        fixed (byte* p = packet)
        {
            var iov = stackalloc Mmsg.IoVec[2];
            iov[0] = new Mmsg.IoVec { Base = h, Length = (nuint)header.Length };
            iov[1] = new Mmsg.IoVec { Base = p, Length = (nuint)packet.Length };
            while (true)
            {
                if (writev(_fd, iov, 2) >= 0)
                    return true;
                var errno = Marshal.GetLastPInvokeError();
                if (errno == Libc.EINTR)
                    continue;
                // One packet lost (no route, no memory); TCP retransmits end to end.
                LastErrno = errno;
                SendErrors++;
                return false;
            }
        }
    }

    public void Dispose() => _fd.Dispose();
}

/// <summary>
/// The rules the tun path needs, each set installed and removed as one iptables-restore transaction:
/// <list type="bullet">
/// <item>raw PREROUTING: what the translator sends through the device is not tracked, like what it
/// sent through the raw socket (OUTPUT) before: no conntrack entry per relayed flow, none to clash
/// with entries of the relayed flows themselves;</item>
/// <item>filter FORWARD: what enters on the device is forwarded even under a DROP policy, first.</item>
/// </list>
/// </summary>
internal sealed class TunRules
{
    public TunRules(string device, ushort queue)
    {
        Device = device;
        Comment = $"glass-translator-{queue}";
    }

    public string Device { get; }
    public string Comment { get; }

    public IReadOnlyList<(string Table, string Chain, string[] Rule)> Rules =>
    [
        ("raw", "PREROUTING", ["-i", Device, "-m", "comment", "--comment", Comment, "-j", "CT", "--notrack"]),
        ("filter", "FORWARD", ["-i", Device, "-m", "comment", "--comment", Comment, "-j", "ACCEPT"]),
    ];

    public string Describe() => string.Join("; ", Rules.Select(r => $"iptables -t {r.Table} -I {r.Chain} {string.Join(' ', r.Rule)}"));

    /// <summary>The iptables-restore input that inserts (-I) or deletes (-D) every rule.</summary>
    internal string Script(string op)
    {
        var sb = new StringBuilder();
        foreach (var table in Rules.Select(r => r.Table).Distinct())
        {
            sb.Append('*').Append(table).Append('\n');
            foreach (var r in Rules.Where(r => r.Table == table))
                sb.Append(op).Append(' ').Append(r.Chain).Append(' ').Append(string.Join(' ', r.Rule)).Append('\n');
            sb.Append("COMMIT\n");
        }
        return sb.ToString();
    }

    public void Install()
    {
        Remove(); // copies left by a run that was killed
        var (code, err) = Restore(Script("-I"));
        if (code != 0)
            throw new InvalidOperationException($"iptables-restore failed (exit {code}): {err.Trim()}. The rules: {Describe()}");
    }

    public void Remove()
    {
        // All at once while every rule is there; a rule already gone fails the transaction, so
        // then delete one at a time, up to a few stale copies each.
        for (var i = 0; i < 16; i++)
        {
            int code;
            try
            {
                code = Restore(Script("-D")).Code;
            }
            catch (InvalidOperationException)
            {
                return; // no iptables-restore: it cannot have installed any either
            }
            if (code != 0)
                break;
        }
        foreach (var (table, chain, rule) in Rules)
        {
            for (var i = 0; i < 16 && Restore($"*{table}\n-D {chain} {string.Join(' ', rule)}\nCOMMIT\n").Code == 0; i++)
            {
            }
        }
    }

    private static (int Code, string Error) Restore(string script)
    {
        var psi = new System.Diagnostics.ProcessStartInfo("iptables-restore")
        {
            RedirectStandardInput = true,
            RedirectStandardError = true,
            RedirectStandardOutput = true,
            UseShellExecute = false,
        };
        psi.ArgumentList.Add("-w");
        psi.ArgumentList.Add("--noflush");
        System.Diagnostics.Process started;
        try
        {
            started = System.Diagnostics.Process.Start(psi)!;
        }
        catch (System.ComponentModel.Win32Exception e)
        {
            throw new InvalidOperationException($"iptables-restore could not be started ({e.Message}). Install iptables (apt-get install iptables) or pass -SkipFirewall.", e);
        }
        using var p = started;
        p.StandardInput.Write(script);
        p.StandardInput.Close();
        var err = p.StandardError.ReadToEnd();
        p.StandardOutput.ReadToEnd();
        p.WaitForExit();
        return (p.ExitCode, err);
    }
}
