using System.Net.Sockets;
using System.Text.Json;
using System.Threading.Channels;
using Glass.Packets;
using Glass.Protocol;

namespace Glass.Translator;

/// <summary>
/// The translator's control socket (a Unix stream socket): the controller links and unlinks
/// peer pairs, reads status, and watches for released links. Lines, one request, one answer:
/// <code>
/// LINK a.b.c.d PORT e.f.g.h PORT  -> OK SESSION-ID | ERR CODE TEXT
/// UNLINK a.b.c.d PORT             -> OK | ERR not-found TEXT
/// STATUS                          -> OK {counters as JSON}
/// SESSIONS                        -> OK [sessions as JSON]
/// WATCH                           -> OK, then "ARRIVED a PORT b PORT ID" (A's first SYN),
///                                    "PAIRED a PORT b PORT ID" and
///                                    "RELEASED a PORT b PORT REASON ID" lines
/// </code>
/// Beside it, a Unix datagram socket at the same path plus ".dgram" takes the original design's
/// 16-byte LINK datagram: two records of IPv4 address (4 bytes), port (2), two zero bytes, all
/// big-endian. It has no answer; a malformed datagram is counted and ignored.
/// </summary>
public sealed class ControlServer : IDisposable
{
    // Translators of this process by full socket path: a controller in the same process (the
    // router run as one) asks and watches its translator directly, which saves a socket round
    // trip per link and a socket hop per event.
    private static readonly System.Collections.Concurrent.ConcurrentDictionary<string, ControlServer> s_inProcess = new(StringComparer.Ordinal);

    private readonly SpliceEngine _engine;
    private readonly string _path;
    private readonly Socket _listener;
    private readonly Socket? _datagrams;
    private long _badDatagrams, _datagramLinks;
    private readonly CancellationTokenSource _stop = new();
    private readonly List<Channel<string>> _watchers = new();
    private Task? _accept;

    private readonly TranslatorSettings? _settings;

    /// <param name="settings">What CONFIG answers, so a controller can check it serves the same router.</param>
    public ControlServer(SpliceEngine engine, string path, TranslatorSettings? settings = null)
    {
        _engine = engine;
        _settings = settings;
        _path = path;
        _listener = Listen(path);
        try
        {
            _datagrams = ListenDatagrams(DatagramPath);
        }
        catch
        {
            _listener.Dispose();
            throw;
        }
        _engine.Released += OnReleased;
        _engine.Paired += OnPaired;
        _engine.Arrived += OnArrived;
        s_inProcess[System.IO.Path.GetFullPath(path)] = this;
    }

    /// <summary>The translator of this process listening on <paramref name="path"/>, if there is one.</summary>
    internal static bool TryGetInProcess(string path, out ControlServer server) =>
        s_inProcess.TryGetValue(System.IO.Path.GetFullPath(path), out server!);

    public string Path => _path;

    public string DatagramPath => _path + ".dgram";

    /// <summary>Datagrams on the legacy socket that were not a well-formed LINK.</summary>
    public long BadDatagrams => Interlocked.Read(ref _badDatagrams);

    public long DatagramLinks => Interlocked.Read(ref _datagramLinks);

    private static Socket ListenDatagrams(string path)
    {
        // Only our own translator binds here, and Listen() above proved none is alive.
        if (File.Exists(path))
            File.Delete(path);
        var s = new Socket(AddressFamily.Unix, SocketType.Dgram, ProtocolType.Unspecified);
        try
        {
            s.Bind(new UnixDomainSocketEndPoint(path));
            return s;
        }
        catch
        {
            s.Dispose();
            throw;
        }
    }

    private async Task DatagramLoop()
    {
        var buffer = new byte[64];
        while (!_stop.IsCancellationRequested)
        {
            int n;
            try
            {
                n = await _datagrams!.ReceiveAsync(buffer, SocketFlags.None, _stop.Token).ConfigureAwait(false);
            }
            catch (Exception) when (_stop.IsCancellationRequested)
            {
                return;
            }
            catch (SocketException)
            {
                continue;
            }
            if (TryReadLegacyLink(buffer.AsSpan(0, n), out var a, out var pa, out var b, out var pb) && _engine.Link(a, pa, b, pb).Success)
                Interlocked.Increment(ref _datagramLinks);
            else
                Interlocked.Increment(ref _badDatagrams);
        }
    }

    /// <summary>Reads the original design's LINK datagram: (address, port, 0, 0) twice, big-endian.</summary>
    internal static bool TryReadLegacyLink(ReadOnlySpan<byte> d, out uint a, out ushort pa, out uint b, out ushort pb)
    {
        a = b = 0;
        pa = pb = 0;
        if (d.Length != 16 || d[6] != 0 || d[7] != 0 || d[14] != 0 || d[15] != 0)
            return false;
        a = System.Buffers.Binary.BinaryPrimitives.ReadUInt32BigEndian(d);
        pa = System.Buffers.Binary.BinaryPrimitives.ReadUInt16BigEndian(d[4..]);
        b = System.Buffers.Binary.BinaryPrimitives.ReadUInt32BigEndian(d[8..]);
        pb = System.Buffers.Binary.BinaryPrimitives.ReadUInt16BigEndian(d[12..]);
        return true;
    }

    private static Socket Listen(string path)
    {
        var dir = System.IO.Path.GetDirectoryName(path);
        if (!string.IsNullOrEmpty(dir))
            Directory.CreateDirectory(dir);
        if (File.Exists(path))
        {
            // A live translator answers; a stale socket file from a killed one is replaced.
            using var probe = new Socket(AddressFamily.Unix, SocketType.Stream, ProtocolType.Unspecified);
            try
            {
                probe.Connect(new UnixDomainSocketEndPoint(path));
                throw new InvalidOperationException($"Another translator is already listening on control socket {path}; stop it or pick another -ControlSocket.");
            }
            catch (SocketException)
            {
                File.Delete(path);
            }
        }
        var s = new Socket(AddressFamily.Unix, SocketType.Stream, ProtocolType.Unspecified);
        try
        {
            s.Bind(new UnixDomainSocketEndPoint(path));
            s.Listen(64);
            return s;
        }
        catch
        {
            s.Dispose();
            throw;
        }
    }

    public void Start()
    {
        _accept = AcceptLoop();
        _datagramLoop = DatagramLoop();
    }

    private Task? _datagramLoop;

    private async Task AcceptLoop()
    {
        while (!_stop.IsCancellationRequested)
        {
            Socket client;
            try
            {
                client = await _listener.AcceptAsync(_stop.Token).ConfigureAwait(false);
            }
            catch (Exception) when (_stop.IsCancellationRequested)
            {
                return;
            }
            catch (SocketException)
            {
                // Out of descriptors, or a connection that went before it was taken: the listener
                // stays, and the next one is served once there is room.
                try
                {
                    await Task.Delay(100, _stop.Token).ConfigureAwait(false);
                }
                catch (OperationCanceledException)
                {
                    return;
                }
                continue;
            }
            _ = Serve(new LineConnection(client));
        }
    }

    private async Task Serve(LineConnection conn)
    {
        using (conn)
        {
            try
            {
                while (await conn.ReadLineAsync(_stop.Token).ConfigureAwait(false) is { } line)
                {
                    if (line == "WATCH")
                    {
                        await Watch(conn).ConfigureAwait(false);
                        return;
                    }
                    await conn.WriteLineAsync(Handle(line), _stop.Token).ConfigureAwait(false);
                }
            }
            catch (Exception e) when (e is ProtocolException or SocketException or OperationCanceledException or IOException)
            {
                // A broken client affects only its own connection.
            }
        }
    }

    /// <summary>Answers one request line (not WATCH), as the socket would.</summary>
    internal string Handle(string line)
    {
        var f = line.Split(' ', StringSplitOptions.RemoveEmptyEntries);
        if (f.Length == 0)
            return "ERR bad-request empty line";
        switch (f[0])
        {
            case "LINK" when f.Length == 5
                && Ipv4.TryParse(f[1], out var a) && ushort.TryParse(f[2], out var pa)
                && Ipv4.TryParse(f[3], out var b) && ushort.TryParse(f[4], out var pb):
                var r = _engine.Link(a, pa, b, pb);
                return r.Success ? $"OK {r.SessionId}" : $"ERR {r.ErrorCode} {r.Message}";
            case "UNLINK" when f.Length == 3 && Ipv4.TryParse(f[1], out var u) && ushort.TryParse(f[2], out var pu):
                return _engine.Unlink(u, pu) ? "OK" : "ERR not-found no session holds that address and port";
            case "STATUS" when f.Length == 1:
                return "OK " + JsonSerializer.Serialize(_engine.GetCounters());
            case "SESSIONS" when f.Length == 1:
                return "OK " + JsonSerializer.Serialize(_engine.GetSessions());
            case "CONFIG" when f.Length == 1 && _settings is not null:
                return "OK " + JsonSerializer.Serialize(_settings);
            default:
                return $"ERR bad-request unknown or malformed command '{(line.Length > 40 ? line[..40] + "..." : line)}'";
        }
    }

    /// <summary>
    /// The event lines from now on, for a socket watcher or a controller in this process (which
    /// reads them here rather than from a socket: one write, one read and a thread hop fewer on the
    /// setup path). The channel completes when this server stops.
    /// </summary>
    internal ChannelReader<string> Subscribe(out Action unsubscribe)
    {
        var ch = Channel.CreateBounded<string>(new BoundedChannelOptions(WatcherBacklog) { SingleReader = true });
        lock (_watchers)
        {
            if (_stop.IsCancellationRequested)
                ch.Writer.TryComplete();
            else
                _watchers.Add(ch);
        }
        unsubscribe = () =>
        {
            lock (_watchers)
                _watchers.Remove(ch);
        };
        return ch.Reader;
    }

    private async Task Watch(LineConnection conn)
    {
        var events = Subscribe(out var unsubscribe);
        try
        {
            await conn.WriteLineAsync("OK", _stop.Token).ConfigureAwait(false);
            // Notice a watcher that hangs up even while no event is due.
            var closed = conn.ReadLineAsync(_stop.Token).AsTask();
            while (true)
            {
                var next = events.WaitToReadAsync(_stop.Token).AsTask();
                if (await Task.WhenAny(next, closed).ConfigureAwait(false) == closed || !await next.ConfigureAwait(false))
                    return;
                while (events.TryRead(out var ev))
                    await conn.WriteLineAsync(ev, _stop.Token).ConfigureAwait(false);
            }
        }
        finally
        {
            unsubscribe();
        }
    }

    private void OnPaired(LinkRelease r) =>
        Broadcast($"PAIRED {Ipv4.Format(r.PeerA)} {r.RouterPortA} {Ipv4.Format(r.PeerB)} {r.RouterPortB} {r.SessionId}");

    private void OnArrived(LinkRelease r) =>
        Broadcast($"ARRIVED {Ipv4.Format(r.PeerA)} {r.RouterPortA} {Ipv4.Format(r.PeerB)} {r.RouterPortB} {r.SessionId}");

    private void OnReleased(LinkRelease r) =>
        Broadcast($"RELEASED {Ipv4.Format(r.PeerA)} {r.RouterPortA} {Ipv4.Format(r.PeerB)} {r.RouterPortB} {r.Reason} {r.SessionId}");

    /// <summary>
    /// Events a watcher may fall behind by (about 20 s of setups at 1,000 a second): one that stops
    /// reading is dropped rather than let grow without end, and on watching again reconciles.
    /// </summary>
    internal const int WatcherBacklog = 65_536;

    private void Broadcast(string line)
    {
        lock (_watchers)
        {
            for (var i = _watchers.Count - 1; i >= 0; i--)
            {
                var w = _watchers[i];
                if (w.Writer.TryWrite(line))
                    continue;
                w.Writer.TryComplete(new IOException($"The watcher fell {WatcherBacklog} events behind and was dropped; watching again reconciles what it missed."));
                _watchers.RemoveAt(i);
            }
        }
    }

    public void Dispose()
    {
        s_inProcess.TryRemove(new KeyValuePair<string, ControlServer>(System.IO.Path.GetFullPath(_path), this));
        _engine.Released -= OnReleased;
        _engine.Paired -= OnPaired;
        _engine.Arrived -= OnArrived;
        lock (_watchers)
        {
            _stop.Cancel();
            // In-process watchers see the end as a socket watcher sees its connection close.
            foreach (var w in _watchers)
                w.Writer.TryComplete();
        }
        _listener.Dispose();
        _datagrams?.Dispose();
        try
        {
            Task.WaitAll(new[] { _accept ?? Task.CompletedTask, _datagramLoop ?? Task.CompletedTask }, TimeSpan.FromSeconds(2));
        }
        catch (AggregateException)
        {
        }
        foreach (var path in new[] { _path, DatagramPath })
        {
            try
            {
                File.Delete(path);
            }
            catch (IOException)
            {
            }
        }
    }
}

/// <summary>The settings a controller must agree with (control protocol CONFIG).</summary>
public sealed record TranslatorSettings(int Queue, string PortRange, int MaxSessions);
