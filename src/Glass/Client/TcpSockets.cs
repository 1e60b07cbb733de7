using System.Net;
using System.Net.Sockets;

namespace Glass.Client;

/// <summary>
/// Every TCP socket Glass creates or accepts gets its options here: no Nagle (a relay that waits
/// for the application's delayed ACK adds tens of milliseconds to every small exchange).
/// </summary>
public static class TcpSockets
{
    /// <summary>A new stream socket of <paramref name="family"/>, configured.</summary>
    public static Socket Create(AddressFamily family = AddressFamily.InterNetwork) =>
        Configure(new Socket(family, SocketType.Stream, ProtocolType.Tcp));

    /// <summary>
    /// A new socket, configured and connected to <paramref name="endpoint"/>. On Linux it is dialed
    /// on one of the client's event loops, which then also pumps it (<see cref="StreamPump"/>):
    /// the caller's own loop, or with <paramref name="inTurn"/> the next in turn (connections that
    /// all start on one loop, as a forwarder accepts them, are spread over the cores).
    /// </summary>
    public static async Task<Socket> ConnectAsync(IPEndPoint endpoint, CancellationToken ct, bool inTurn = false)
    {
        if (SocketLoop.IsSupported)
            return await SocketLoop.ConnectAsync(endpoint, ct, inTurn).ConfigureAwait(false);
        var s = Create(endpoint.AddressFamily);
        try
        {
            await s.ConnectAsync(endpoint, ct).ConfigureAwait(false);
            return s;
        }
        catch
        {
            s.Dispose();
            throw;
        }
    }

    /// <summary>Sets Glass's options on a socket it created or accepted; returns it.</summary>
    public static Socket Configure(Socket s)
    {
        s.NoDelay = true;
        return s;
    }

    /// <summary>Whether <paramref name="e"/> says this process (EMFILE) or the system (ENFILE) is out of descriptors.</summary>
    public static bool IsOutOfDescriptors(Exception e) =>
        e is SocketException { SocketErrorCode: SocketError.TooManyOpenSockets } or SocketException { NativeErrorCode: Interop.Libc.ENFILE or Interop.Libc.EMFILE };

    /// <summary>What to tell a user who ran out of descriptors: the limit, how many are open, and what to do.</summary>
    public static string OutOfDescriptors(string what)
    {
        var limit = Interop.ResourceLimits.OpenFiles();
        var open = Interop.ResourceLimits.OpenDescriptors();
        var limits = limit is { } l ? $"its open-files limit is {l.Soft} (hard limit {l.Hard})" : "its open-files limit is reached";
        return $"{what}: this process is out of file descriptors ({limits}{(open >= 0 ? $"; {open} are open" : "")}). "
            + "Each forwarded connection needs two. Raise the limit (ulimit -n, or LimitNOFILE= in a systemd unit; the hard limit needs root) or spread the connections over more processes.";
    }

    /// <summary>Closes with a reset (SO_LINGER 0), so the peer learns of a failure rather than an empty answer.</summary>
    public static void Reset(Socket s)
    {
        try
        {
            s.LingerState = new LingerOption(true, 0);
        }
        catch (Exception e) when (e is SocketException or ObjectDisposedException)
        {
        }
        s.Dispose();
    }

    /// <summary>
    /// A listening socket on <paramref name="endPoint"/> that owns its port: a second listener
    /// there fails with <see cref="GlassErrors.AddressInUse"/>.
    /// </summary>
    public static Socket Listen(IPEndPoint endPoint, int backlog)
    {
        var s = Create(endPoint.AddressFamily);
        try
        {
            // SO_REUSEADDR alone: a restart may bind over its old connections in TIME_WAIT. .NET's
            // ReuseAddress also sets SO_REUSEPORT on Linux, which would let a second listener share
            // the port and silently take half of its connections.
            s.SetRawSocketOption(Interop.Libc.SOL_SOCKET, Interop.Libc.SO_REUSEADDR, BitConverter.GetBytes(1));
            s.Bind(endPoint);
            s.Listen(backlog);
            return s;
        }
        catch (SocketException e) when (e.SocketErrorCode == SocketError.AddressAlreadyInUse)
        {
            s.Dispose();
            throw new GlassException(GlassErrors.AddressInUse, $"{endPoint} is already in use by another listener.", e);
        }
        catch
        {
            s.Dispose();
            throw;
        }
    }
}
