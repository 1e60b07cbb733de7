using System.Net;
using System.Net.Sockets;
using Glass.Packets;
using Glass.Protocol;
using Glass.Translator;

namespace Glass.Controller;

/// <summary>What a controller is started with.</summary>
public sealed record ControllerOptions
{
    public IPAddress Address { get; init; } = IPAddress.Any;
    public int Port { get; init; } = 7000;
    public string ControlSocket { get; init; } = TranslatorOptions.DefaultControlSocket;
    public PortRange PortRange { get; init; } = PortRange.Default;
    /// <summary>How long a new connection may take to send its first line.</summary>
    public TimeSpan RequestTimeout { get; init; } = TimeSpan.FromSeconds(5);
    /// <summary>A binder silent for this long (no PING) is taken for dead.</summary>
    public TimeSpan BinderTimeout { get; init; } = TimeSpan.FromSeconds(45);
}

/// <summary>Controller counters, read as a snapshot.</summary>
public sealed record ControllerStatus(int Bindings, int PortsInUse, long Connects, long Refused, long BadRequests);

/// <summary>
/// The rendezvous service (docs/protocol.md): binders register channel ids and keep their control
/// connection; a connector names a channel id, and the controller allocates a router port for each
/// side, links them in the translator, pushes one endpoint to the binder and answers the other.
/// Peers learn only the router's address, never each other's.
/// </summary>
public sealed class ControllerHost : IDisposable
{
    private readonly ControllerOptions _options;
    private readonly TranslatorClient _translator;
    private readonly PortAllocator _ports;
    private readonly Dictionary<string, Binder> _channels = new();
    private readonly object _gate = new();
    private readonly CancellationTokenSource _stop = new();
    private Socket? _listener;
    private Task? _accept, _watch;
    private long _connects, _refused, _badRequests;

    public ControllerHost(ControllerOptions options)
    {
        _options = options;
        _translator = new TranslatorClient(options.ControlSocket);
        _ports = new PortAllocator(options.PortRange);
    }

    public ControllerOptions Options => _options;

    /// <summary>The endpoint actually listened on (port 0 in the options picks a free one).</summary>
    public IPEndPoint? LocalEndPoint => _listener?.LocalEndPoint as IPEndPoint;

    public event Action<string>? Problem;

    public void Start()
    {
        var s = new Socket(AddressFamily.InterNetwork, SocketType.Stream, ProtocolType.Tcp);
        try
        {
            s.SetSocketOption(SocketOptionLevel.Socket, SocketOptionName.ReuseAddress, true);
            s.Bind(new IPEndPoint(_options.Address, _options.Port));
            s.Listen(512);
        }
        catch (SocketException e)
        {
            s.Dispose();
            throw new GlassException("listen-failed", $"The controller cannot listen on {_options.Address}:{_options.Port}: {e.Message}. Pick another -Port or stop what holds it.", e);
        }
        _listener = s;
        _watch = _translator.WatchAsync(OnReleased, m => Problem?.Invoke(m), _stop.Token);
        _accept = AcceptLoop();
    }

    public ControllerStatus GetStatus()
    {
        lock (_gate)
            return new ControllerStatus(_channels.Count, _ports.InUse, Interlocked.Read(ref _connects), Interlocked.Read(ref _refused), Interlocked.Read(ref _badRequests));
    }

    private void OnReleased(LinkRelease r)
    {
        lock (_gate)
        {
            _ports.Release(r.PeerA, r.RouterPortA);
            _ports.Release(r.PeerB, r.RouterPortB);
        }
    }

    private async Task AcceptLoop()
    {
        while (!_stop.IsCancellationRequested)
        {
            Socket client;
            try
            {
                client = await _listener!.AcceptAsync(_stop.Token).ConfigureAwait(false);
            }
            catch (Exception) when (_stop.IsCancellationRequested)
            {
                return;
            }
            catch (SocketException)
            {
                continue;
            }
            _ = Serve(new LineConnection(client, 256));
        }
    }

    private async Task Serve(LineConnection conn)
    {
        var keep = false;
        try
        {
            var line = await conn.ReadLineAsync(_options.RequestTimeout, _stop.Token).ConfigureAwait(false);
            if (line is null)
                return;
            var f = line.Split(' ', StringSplitOptions.RemoveEmptyEntries);
            if (f.Length < 2 || !f[0].StartsWith("GLASS/", StringComparison.Ordinal))
            {
                await Refuse(conn, GlassErrors.BadRequest, "expected 'GLASS/1 BIND' or 'GLASS/1 CONNECT <channel-id>'").ConfigureAwait(false);
                return;
            }
            if (f[0] != "GLASS/1")
            {
                await Refuse(conn, "version", $"this controller speaks GLASS/1, not {f[0]}").ConfigureAwait(false);
                return;
            }
            switch (f[1])
            {
                case "BIND" when f.Length == 2:
                    keep = true;
                    await ServeBinder(conn).ConfigureAwait(false);
                    break;
                case "LOOKUP" when f.Length == 3:
                    await ServeLookup(conn, f[2]).ConfigureAwait(false);
                    break;
                case "CONNECT" when f.Length == 3:
                    await ServeConnector(conn, f[2]).ConfigureAwait(false);
                    break;
                default:
                    await Refuse(conn, GlassErrors.BadRequest, $"unknown request '{f[1]}'").ConfigureAwait(false);
                    break;
            }
        }
        catch (ProtocolException e)
        {
            Interlocked.Increment(ref _badRequests);
            await TrySend(conn, $"ERR {GlassErrors.BadRequest} {e.Message}").ConfigureAwait(false);
        }
        catch (Exception e) when (e is SocketException or IOException or OperationCanceledException)
        {
            // One client's broken connection touches nothing else.
        }
        finally
        {
            if (!keep)
                conn.Dispose();
        }
    }

    private async Task Refuse(LineConnection conn, string code, string text)
    {
        Interlocked.Increment(ref code == GlassErrors.BadRequest || code == "version" ? ref _badRequests : ref _refused);
        await TrySend(conn, $"ERR {code} {text}").ConfigureAwait(false);
    }

    private async Task TrySend(LineConnection conn, string line)
    {
        try
        {
            await conn.WriteLineAsync(line, _stop.Token).ConfigureAwait(false);
        }
        catch (Exception e) when (e is SocketException or IOException or OperationCanceledException or ObjectDisposedException)
        {
        }
    }

    private static uint AddressOf(EndPoint? ep) =>
        Ipv4.Parse(((IPEndPoint)ep!).Address.MapToIPv4().ToString());

    private async Task ServeBinder(LineConnection conn)
    {
        var binder = new Binder(conn, AddressOf(conn.Socket.RemoteEndPoint), AddressOf(conn.Socket.LocalEndPoint));
        string id;
        lock (_gate)
        {
            do
                id = ChannelId.New();
            while (_channels.ContainsKey(id));
            _channels[id] = binder;
        }
        try
        {
            await conn.WriteLineAsync($"OK {id}", _stop.Token).ConfigureAwait(false);
            while (await conn.ReadLineAsync(_options.BinderTimeout, _stop.Token).ConfigureAwait(false) is { } line)
            {
                if (line == "PING")
                    await conn.WriteLineAsync("PONG", _stop.Token).ConfigureAwait(false);
                else
                    await conn.WriteLineAsync($"ERR {GlassErrors.BadRequest} a binder may only send PING", _stop.Token).ConfigureAwait(false);
            }
        }
        catch (Exception e) when (e is ProtocolException or SocketException or IOException or OperationCanceledException)
        {
        }
        finally
        {
            lock (_gate)
                _channels.Remove(id);
            conn.Dispose();
        }
    }

    private Binder? FindBinder(string requested)
    {
        if (!ChannelId.TryNormalize(requested, out var id))
            return null;
        lock (_gate)
            return _channels.GetValueOrDefault(id);
    }

    private async Task ServeLookup(LineConnection conn, string requested)
    {
        if (FindBinder(requested) is null)
            await Refuse(conn, GlassErrors.UnknownChannel, $"no binding has channel id {requested}").ConfigureAwait(false);
        else
            await conn.WriteLineAsync("OK", _stop.Token).ConfigureAwait(false);
    }

    private async Task ServeConnector(LineConnection conn, string requested)
    {
        var binder = FindBinder(requested);
        if (binder is null)
        {
            await Refuse(conn, GlassErrors.UnknownChannel, $"no binding has channel id {requested}").ConfigureAwait(false);
            return;
        }

        var connector = AddressOf(conn.Socket.RemoteEndPoint);
        var routerForConnector = AddressOf(conn.Socket.LocalEndPoint);
        LinkResult link = default;
        ushort pc = 0, pb = 0;
        // A port the translator still holds (e.g. from before a controller restart) is skipped and retried.
        for (var attempt = 0; attempt < 4; attempt++)
        {
            lock (_gate)
            {
                if (!_ports.TryAllocate(connector, out pc))
                    break;
                if (!_ports.TryAllocate(binder.Peer, out pb))
                {
                    _ports.Release(connector, pc);
                    pc = 0;
                    break;
                }
            }
            try
            {
                link = await _translator.LinkAsync(connector, pc, binder.Peer, pb, _stop.Token).ConfigureAwait(false);
            }
            catch (GlassException e)
            {
                ReleasePorts(connector, pc, binder.Peer, pb);
                await Refuse(conn, e.ErrorId, e.Message).ConfigureAwait(false);
                return;
            }
            if (link.Success || link.ErrorCode != "port-in-use")
                break;
            // The rotating cursor moves the next attempt on to other ports.
            ReleasePorts(connector, pc, binder.Peer, pb);
        }
        if (pc == 0 || pb == 0)
        {
            await Refuse(conn, GlassErrors.RouterFull, $"no free router port in {_options.PortRange} for this link").ConfigureAwait(false);
            return;
        }
        if (!link.Success)
        {
            ReleasePorts(connector, pc, binder.Peer, pb);
            var code = link.ErrorCode == "full" ? GlassErrors.RouterFull : link.ErrorCode ?? GlassErrors.ProtocolError;
            await Refuse(conn, code, $"the translator refused the link: {link.Message}").ConfigureAwait(false);
            return;
        }
        try
        {
            await binder.Connection.WriteLineAsync($"CONNECT {Ipv4.Format(binder.Router)} {pb}", _stop.Token).ConfigureAwait(false);
        }
        catch (Exception e) when (e is SocketException or IOException or ObjectDisposedException)
        {
            await UnlinkQuietly(connector, pc).ConfigureAwait(false);
            await Refuse(conn, GlassErrors.BinderUnavailable, "the binder of this channel could not be reached").ConfigureAwait(false);
            return;
        }
        Interlocked.Increment(ref _connects);
        await conn.WriteLineAsync($"OK {Ipv4.Format(routerForConnector)} {pc}", _stop.Token).ConfigureAwait(false);
    }

    private void ReleasePorts(uint a, ushort pa, uint b, ushort pb)
    {
        lock (_gate)
        {
            _ports.Release(a, pa);
            _ports.Release(b, pb);
        }
    }

    private async Task UnlinkQuietly(uint peer, ushort port)
    {
        try
        {
            await _translator.UnlinkAsync(peer, port).ConfigureAwait(false);
        }
        catch (GlassException)
        {
        }
    }

    public void Stop()
    {
        if (_stop.IsCancellationRequested)
            return;
        _stop.Cancel();
        _listener?.Dispose();
        lock (_gate)
        {
            foreach (var b in _channels.Values)
                b.Connection.Dispose();
            _channels.Clear();
        }
        try
        {
            Task.WaitAll(new[] { _accept ?? Task.CompletedTask, _watch ?? Task.CompletedTask }, TimeSpan.FromSeconds(2));
        }
        catch (AggregateException)
        {
        }
        _translator.Dispose();
    }

    public void Dispose() => Stop();

    /// <summary>A bound channel: its control connection, its public address and the router address it reached.</summary>
    private sealed record Binder(LineConnection Connection, uint Peer, uint Router);
}
