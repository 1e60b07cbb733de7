using System.Buffers.Binary;
using System.Net;
using System.Net.Security;
using System.Net.Sockets;
using System.Security.Authentication;
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
    /// <summary>How long a new connection may take to send its first request, whole (a TLS handshake included).</summary>
    public TimeSpan RequestTimeout { get; init; } = TimeSpan.FromSeconds(5);
    /// <summary>A binder silent for this long (no PING) is taken for dead.</summary>
    public TimeSpan BinderTimeout { get; init; } = TimeSpan.FromSeconds(15);
    /// <summary>How long a channel stays reserved for its binder after the binder's connection dropped.</summary>
    public TimeSpan LeaseTime { get; init; } = TimeSpan.FromMinutes(5);
    /// <summary>Token binders must present (token=...), or null for none.</summary>
    public string? BindToken { get; init; }
    /// <summary>Token connectors must present, or null for none.</summary>
    public string? ConnectToken { get; init; }
    public int MaxBindingsPerAddress { get; init; } = 64;
    /// <summary>Router ports one address may hold at once (each pending or live link holds one).</summary>
    public int MaxLinksPerAddress { get; init; } = 512;
    /// <summary>Connect requests per second from one public address (bursts of twice that); a NAT may hide a whole office.</summary>
    public int ConnectRatePerAddress { get; init; } = 2000;
    /// <summary>Sessions (GLASS/1 SESSION connections) one address may hold at once.</summary>
    public int MaxSessionsPerAddress { get; init; } = 256;
    /// <summary>
    /// Open connections of any kind (requests being read, binders, sessions) one address may hold:
    /// above its bindings and sessions together, so only a flood of idle or half-sent ones meets it.
    /// </summary>
    public int MaxConnectionsPerAddress { get; init; } = 1024;
    /// <summary>A session without a request for this long is closed.</summary>
    public TimeSpan SessionIdleTimeout { get; init; } = TimeSpan.FromMinutes(5);
    /// <summary>The durable channel registry (a SQLite file), or null to keep channels in memory only.</summary>
    public string? RegistryPath { get; init; }

    /// <summary>
    /// Where a controller on <paramref name="port"/> keeps its registry unless told
    /// (<see cref="StateFile"/>). Port 0 (any free port, so never the same twice) keeps channels
    /// in memory: null.
    /// </summary>
    public static string? DefaultRegistryPath(int port) => StateFile(port, "db");

    /// <summary>
    /// A controller's state file (its registry, its key) unless told otherwise: /var/lib/glass
    /// for root, else $XDG_STATE_HOME/glass (~/.local/state/glass); one per port, as
    /// controller-PORT.EXTENSION. Null for port 0, which is never the same twice.
    /// </summary>
    public static string? StateFile(int port, string extension)
    {
        if (port == 0)
            return null;
        var dir = !OperatingSystem.IsWindows() && Environment.UserName == "root"
            ? "/var/lib/glass"
            : Path.Combine(Config.XdgBase.Directory("XDG_STATE_HOME", Path.Combine(".local", "state")), "glass");
        return Path.Combine(dir, $"controller-{port}.{extension}");
    }

    /// <summary>The key and certificate presented in TLS; null makes one for this run only.</summary>
    public RouterIdentity? Identity { get; init; }
    /// <summary>
    /// Whether plain GLASS/1 (not in TLS) and the original design's binary BIND/CONN are served:
    /// unauthenticated and readable on the wire. Plain STATUS from loopback is always answered.
    /// </summary>
    public bool AllowPlaintext { get; init; }
    public IClock Clock { get; init; } = SystemClock.Instance;
}

/// <summary>Controller counters, read as a snapshot.</summary>
/// <param name="RequestTimeouts">Connections closed because no whole first request (TLS handshake included) arrived within the request timeout.</param>
public sealed record ControllerStatus(int Bindings, int Channels, int PortsInUse, long Connects, long Refused, long BadRequests, int Sessions = 0,
    IReadOnlyDictionary<string, long>? RefusedByCode = null, string? Fingerprint = null, long TlsFailures = 0, long RequestTimeouts = 0);

/// <summary>
/// The rendezvous service (docs/protocol.md): binders register channel ids and keep their control
/// connection; a connector names a channel id, and the controller allocates a router port for each
/// side, links them in the translator, pushes one endpoint to the binder and answers the other.
/// Peers learn only the router's address, never each other's. Clients speak to it in TLS, pinning
/// the router's key; plain GLASS/1 and the original design's binary BIND/CONN messages are served
/// on the same port only where the options allow them (the first byte tells TLS from plain).
/// </summary>
public sealed class ControllerHost : IDisposable
{
    /// <summary>Requests of one session being handled at once; further ones wait to be read.</summary>
    private const int MaxPipelined = 64;

    private readonly ControllerOptions _options;
    private readonly TranslatorClient _translator;
    private readonly PortAllocator _ports;
    private readonly ChannelRegistry _channels;
    private readonly Dictionary<uint, (double Tokens, long At)> _buckets = new();
    private readonly HashSet<LineConnection> _binderConnections = new();
    // Links the translator took (LINK answered OK) and has not yet reported paired or released.
    private readonly Dictionary<long, PendingLink> _links = new();
    // Links whose connector's SYN the translator reported before this controller stored them.
    private readonly HashSet<long> _arrivedEarly = new();
    // A watch connection is up, so the translator's ARRIVED events reach this controller: binders
    // are told to dial when the connector's SYN is in. Without one, they are told at once.
    private volatile bool _watching;
    private readonly Dictionary<uint, int> _sessionsByAddress = new();
    private readonly Dictionary<uint, int> _connectionsByAddress = new();
    private readonly object _gate = new();
    private readonly CancellationTokenSource _stop = new();
    private Socket? _listener;
    private Task? _accept, _watch;
    // What the translator and this controller disagree on, while they do; connects are refused meanwhile.
    private volatile string? _mismatch;
    private long _connects, _refused, _badRequests, _tlsFailures, _requestTimeouts;
    private readonly RouterIdentity _identity;
    private readonly bool _ownsIdentity;
    private readonly SslServerAuthenticationOptions _tls;
    // Refusals (bad requests included) by error id, for the operator's metrics.
    private readonly System.Collections.Concurrent.ConcurrentDictionary<string, long> _refusedByCode = new();

    public ControllerHost(ControllerOptions options)
    {
        _options = options;
        _translator = new TranslatorClient(options.ControlSocket);
        _ports = new PortAllocator(options.PortRange);
        _channels = new ChannelRegistry(options.Clock, options.LeaseTime);
        _ownsIdentity = options.Identity is null;
        _identity = options.Identity ?? RouterIdentity.Ephemeral();
        _tls = new SslServerAuthenticationOptions
        {
            ServerCertificateContext = _identity.Context,
            EnabledSslProtocols = SslProtocols.Tls13,
            ClientCertificateRequired = false,
            CertificateRevocationCheckMode = System.Security.Cryptography.X509Certificates.X509RevocationMode.NoCheck,
        };
    }

    public ControllerOptions Options => _options;

    /// <summary>What clients pin: the SHA-256 of the router's public key (<see cref="Protocol.RouterFingerprint"/>).</summary>
    public string Fingerprint => _identity.Fingerprint;

    /// <summary>The key and certificate this controller presents.</summary>
    public RouterIdentity Identity => _identity;

    /// <summary>The endpoint actually listened on (port 0 in the options picks a free one).</summary>
    public IPEndPoint? LocalEndPoint => _listener?.LocalEndPoint as IPEndPoint;

    public event Action<string>? Problem;

    /// <summary>Channels the durable registry brought back at start (bound or leased when the last controller stopped).</summary>
    public int Restored { get; private set; }

    /// <summary>The durable registry's file, once started with one.</summary>
    public string? RegistryFile { get; private set; }

    /// <summary>What went wrong but did not stop the start (a corrupt registry moved aside), for the caller to show.</summary>
    public IReadOnlyList<string> StartWarnings => _startWarnings;
    private readonly List<string> _startWarnings = new();

    public void Start()
    {
        // A translator that already runs must relay the range this controller hands out.
        if (CheckTranslator(throwOnMismatch: true).GetAwaiter().GetResult() is { } mismatch)
            throw new GlassException(GlassErrors.ConfigMismatch, mismatch);
        Socket s;
        try
        {
            s = Client.TcpSockets.Listen(new IPEndPoint(_options.Address, _options.Port), 512);
        }
        catch (GlassException e) when (e.ErrorId == GlassErrors.AddressInUse)
        {
            throw new GlassException(e.ErrorId, $"The controller cannot listen on {_options.Address}:{_options.Port}: another listener holds it.", e);
        }
        catch (SocketException e)
        {
            throw new GlassException("listen-failed", $"The controller cannot listen on {_options.Address}:{_options.Port}: {e.Message}. Pick another -Port or stop what holds it.", e);
        }
        if (_options.RegistryPath is { } path)
        {
            RegistryStore store;
            try
            {
                store = RegistryStore.Open(path, _startWarnings.Add);
            }
            catch
            {
                s.Dispose();
                throw;
            }
            try
            {
                lock (_gate)
                    Restored = _channels.Attach(store);
            }
            catch (Exception e) when (e is not GlassException)
            {
                store.Dispose();
                s.Dispose();
                throw new GlassException(GlassErrors.RegistryUnavailable, $"The channel registry {store.Path} could not be read: {e.Message}", e);
            }
            _channels.StoreProblem += m => Problem?.Invoke(m);
            RegistryFile = store.Path;
        }
        _listener = s;
        _watch = _translator.WatchAsync(OnReleased, m => Problem?.Invoke($"Translator control socket: {m}"), _stop.Token, OnWatching,
            OnArrived, () => _watching = false);
        _accept = AcceptLoop();
    }

    /// <summary>A watch connection to the translator is up: binders are told to dial when the connector's SYN is in.</summary>
    internal bool Watching => _watching;

    public ControllerStatus GetStatus()
    {
        lock (_gate)
        {
            _channels.Expire();
            return new ControllerStatus(_channels.Bound, _channels.Count, _ports.InUse,
                Interlocked.Read(ref _connects), Interlocked.Read(ref _refused), Interlocked.Read(ref _badRequests),
                _sessionsByAddress.Values.Sum(), new Dictionary<string, long>(_refusedByCode), _identity.Fingerprint, Interlocked.Read(ref _tlsFailures),
                Interlocked.Read(ref _requestTimeouts));
        }
    }

    // A new watch connection: the translator may have restarted, or events were lost meanwhile.
    private async Task OnWatching()
    {
        // From here on no ARRIVED is missed; links made before are settled by Reconcile.
        _watching = true;
        await CheckTranslator(throwOnMismatch: false).ConfigureAwait(false);
        await Reconcile().ConfigureAwait(false);
    }

    /// <summary>
    /// Frees the router ports of links whose PAIRED or RELEASED this controller missed (its watch
    /// connection dropped, or the translator restarted and forgot them), by asking the translator
    /// which sessions it holds, and tells the binders of links still pending that were not told
    /// to dial (their ARRIVED may have been missed). Links made after the question are left
    /// alone: the translator had every link asked about before it answered.
    /// </summary>
    internal async Task<int> Reconcile()
    {
        KeyValuePair<long, PendingLink>[] links;
        lock (_gate)
            links = _links.ToArray();
        if (links.Length == 0)
            return 0;
        Dictionary<long, SessionState> held;
        try
        {
            var json = await _translator.QueryAsync("SESSIONS", _stop.Token).ConfigureAwait(false);
            held = (System.Text.Json.JsonSerializer.Deserialize<List<SessionInfo>>(json) ?? new()).ToDictionary(s => s.Id, s => s.State);
        }
        catch (Exception e) when (e is GlassException or System.Text.Json.JsonException or IOException or SocketException)
        {
            Problem?.Invoke($"Could not compare this controller's router ports with the translator's sessions: {e.Message}");
            return 0;
        }
        var freed = 0;
        foreach (var (id, pending) in links)
        {
            var link = pending.Link;
            if (held.TryGetValue(id, out var state) && state is SessionState.Pending or SessionState.Handshake)
            {
                if (TakeTelling(pending))
                    _ = TellBinder(pending);
                continue;
            }
            // Gone (a missed RELEASED) or paired (a missed PAIRED): either way its ports are free,
            // unless the event came after all while the translator answered.
            lock (_gate)
            {
                if (!_links.Remove(id))
                    continue;
                _ports.Release(link.PeerA, link.RouterPortA, id);
                _ports.Release(link.PeerB, link.RouterPortB, id);
            }
            freed++;
        }
        if (freed > 0)
            Problem?.Invoke($"{freed} link(s) were paired or ended while this controller was not watching the translator; their router ports are free again.");
        return freed;
    }

    // Ports are free once the translator paired the link (it then keys the session by its
    // flows), or when a link ended without ever pairing. A paired link's RELEASED, or an event
    // that comes after Reconcile freed its link, finds its ports free or another link's: the
    // allocator frees a port only for the link that holds it.
    internal void OnReleased(LinkRelease r)
    {
        lock (_gate)
        {
            _links.Remove(r.SessionId);
            _arrivedEarly.Remove(r.SessionId);
            _ports.Release(r.PeerA, r.RouterPortA, r.SessionId);
            _ports.Release(r.PeerB, r.RouterPortB, r.SessionId);
        }
    }

    // The connector's SYN reached its router port: now its binder dials.
    private void OnArrived(LinkRelease r)
    {
        PendingLink? pending;
        lock (_gate)
        {
            if (!_links.TryGetValue(r.SessionId, out pending))
            {
                // Before Connect stored it (a SYN that raced the LINK answer), or not this controller's link.
                if (_arrivedEarly.Count >= 4096)
                    _arrivedEarly.Clear(); // bounded: such a link's binder is then told by Reconcile or never needed
                _arrivedEarly.Add(r.SessionId);
                return;
            }
        }
        if (TakeTelling(pending))
            _ = TellBinder(pending);
    }

    /// <summary>Marks a link told; false when it was already.</summary>
    private bool TakeTelling(PendingLink pending)
    {
        lock (_gate)
        {
            if (pending.Told)
                return false;
            pending.Told = true;
            return true;
        }
    }

    /// <summary>Tells a link's binder to dial; when it cannot be reached the link ends, which refuses the connector's SYN.</summary>
    private async Task<bool> TellBinder(PendingLink pending, bool countRefusal = true, bool ahead = false)
    {
        try
        {
            await pending.Binder.Push(pending.Binder.Router, pending.Link.RouterPortB, ahead).ConfigureAwait(false);
            return true;
        }
        catch (Exception e) when (e is SocketException or IOException or ObjectDisposedException or OperationCanceledException)
        {
            if (countRefusal)
            {
                _refusedByCode.AddOrUpdate(GlassErrors.BinderUnavailable, 1, static (_, n) => n + 1);
                Interlocked.Increment(ref _refused);
            }
            await UnlinkQuietly(pending.Link.PeerA, pending.Link.RouterPortA).ConfigureAwait(false);
            return false;
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
            Client.TcpSockets.Configure(client);
            var peer = AddressOf(client.RemoteEndPoint);
            if (!Admit(peer))
            {
                // Said without waiting for the request (nor a TLS handshake): a flood of half-sent
                // ones is what this stops. A TLS client reads the line in place of the handshake.
                _ = RefuseAndClose(new LineConnection(client, 256), Refusal(GlassErrors.LimitExceeded, $"this address already holds {_options.MaxConnectionsPerAddress} open connections"));
                continue;
            }
            _ = ServeCounted(client, peer);
        }
    }

    /// <summary>Counts an open connection of <paramref name="peer"/>; false when it holds its maximum.</summary>
    private bool Admit(uint peer)
    {
        lock (_gate)
        {
            var open = _connectionsByAddress.GetValueOrDefault(peer);
            if (open >= _options.MaxConnectionsPerAddress)
                return false;
            _connectionsByAddress[peer] = open + 1;
            return true;
        }
    }

    private async Task ServeCounted(Socket client, uint peer)
    {
        // One deadline for the whole first request, so a trickle cannot hold the slot longer.
        var deadline = Environment.TickCount64 + (long)_options.RequestTimeout.TotalMilliseconds;
        try
        {
            if (await OpenAsync(client, deadline).ConfigureAwait(false) is { } conn)
                await Serve(conn, deadline).ConfigureAwait(false);
        }
        finally
        {
            lock (_gate)
                CountOut(_connectionsByAddress, peer);
        }
    }

    /// <summary>One fewer for <paramref name="peer"/>; an address at zero leaves the table. Under _gate.</summary>
    private static void CountOut(Dictionary<uint, int> counts, uint peer)
    {
        if (counts[peer] == 1)
            counts.Remove(peer);
        else
            counts[peer]--;
    }

    /// <summary>
    /// The connection's line protocol: inside TLS when the client opens with a TLS record (its
    /// first byte is 0x16, the handshake record type; GLASS/1 and BIND/CONN begin with a letter),
    /// else plain. Null when the client sent nothing in time or its handshake failed (closed).
    /// </summary>
    private async Task<LineConnection?> OpenAsync(Socket client, long until)
    {
        using var deadline = CancellationTokenSource.CreateLinkedTokenSource(_stop.Token);
        deadline.CancelAfter(Left(until));
        var first = new byte[1];
        SslStream? tls = null;
        try
        {
            if (await client.ReceiveAsync(first, SocketFlags.Peek, deadline.Token).ConfigureAwait(false) == 0)
            {
                client.Dispose();
                return null;
            }
            if (first[0] != TlsHandshakeRecord)
                return new LineConnection(client, 256);
            tls = new SslStream(new NetworkStream(client, ownsSocket: true));
            await tls.AuthenticateAsServerAsync(_tls, deadline.Token).ConfigureAwait(false);
            return new LineConnection(client, tls, 256);
        }
        catch (Exception e) when (e is AuthenticationException or IOException or SocketException or OperationCanceledException or ObjectDisposedException)
        {
            if (e is OperationCanceledException && !_stop.IsCancellationRequested)
                Interlocked.Increment(ref _requestTimeouts);
            else if (tls is not null && e is not OperationCanceledException)
                Interlocked.Increment(ref _tlsFailures);
            tls?.Dispose();
            client.Dispose();
            return null;
        }
    }

    // RFC 8446 section 5.1: ContentType handshake(22).
    private const byte TlsHandshakeRecord = 0x16;

    /// <summary>What is left until <paramref name="until"/> (an <see cref="Environment.TickCount64"/>), never negative.</summary>
    private static TimeSpan Left(long until) => TimeSpan.FromMilliseconds(Math.Max(0, until - Environment.TickCount64));

    private string PlaintextRefusal() => Refusal(GlassErrors.PlaintextRefused,
        "this router speaks the controller protocol only inside TLS (update the client, or drop -Plaintext); plain GLASS/1 is served only where the router's config sets tls.allowPlaintext: true");

    private async Task RefuseAndClose(LineConnection conn, string refusal)
    {
        await TrySend(conn, refusal).ConfigureAwait(false);
        conn.Dispose();
    }

    private async Task Serve(LineConnection conn, long deadline)
    {
        try
        {
            var head = await conn.PeekAsync(4, Left(deadline), _stop.Token).ConfigureAwait(false);
            if (head.Length == 4 && (head.Span.SequenceEqual("BIND"u8) || head.Span.SequenceEqual("CONN"u8)))
            {
                // No secrets and no pinning: only where the operator allowed the unauthenticated kinds.
                if (_options.AllowPlaintext)
                    await ServeLegacy(conn, head.Span[0] == (byte)'B', deadline).ConfigureAwait(false);
                else
                    await RefuseLegacy(conn, head.Span[0] == (byte)'B').ConfigureAwait(false);
                return;
            }
            var line = await conn.ReadLineAsync(Left(deadline), _stop.Token).ConfigureAwait(false);
            if (line is null)
                return;
            if (!ControllerRequest.TryParse(line, out var request, out var code, out var error))
            {
                await TrySend(conn, Refusal(code, error)).ConfigureAwait(false);
                return;
            }
            var loopback = conn.Socket.RemoteEndPoint is IPEndPoint { Address: var from } && IPAddress.IsLoopback(from);
            // STATUS carries counters and the public fingerprint only, so this host may ask in plain.
            if (!conn.IsEncrypted && !_options.AllowPlaintext && !(request.Verb == ControllerVerb.Status && loopback))
            {
                await TrySend(conn, PlaintextRefusal()).ConfigureAwait(false);
                return;
            }
            if (request.Verb == ControllerVerb.Status)
            {
                if (loopback)
                    await conn.WriteLineAsync("OK " + System.Text.Json.JsonSerializer.Serialize(GetStatus()), _stop.Token).ConfigureAwait(false);
                else
                    await TrySend(conn, Refusal(GlassErrors.Unauthorized, "STATUS is answered on loopback only")).ConfigureAwait(false);
                return;
            }
            var required = request.Verb == ControllerVerb.Bind ? _options.BindToken : _options.ConnectToken;
            if (required is not null && (request.Token is null || !ChannelRegistry.SecretsEqual(required, request.Token)))
            {
                await TrySend(conn, Refusal(GlassErrors.Unauthorized, $"this router requires a valid {(request.Verb == ControllerVerb.Bind ? "bind" : "connect")} token (-Token)")).ConfigureAwait(false);
                return;
            }
            var peer = AddressOf(conn.Socket.RemoteEndPoint);
            var router = AddressOf(conn.Socket.LocalEndPoint);
            switch (request.Verb)
            {
                case ControllerVerb.Bind:
                    await ServeBinder(conn, request).ConfigureAwait(false);
                    break;
                case ControllerVerb.Session:
                    await ServeSession(conn, peer, router).ConfigureAwait(false);
                    break;
                case ControllerVerb.Cancel:
                    await TrySend(conn, Refusal(GlassErrors.BadRequest, "CANCEL names a router port given in the same session (GLASS/1 SESSION)")).ConfigureAwait(false);
                    break;
                default:
                    await conn.WriteLineAsync(await Answer(request, peer, router).ConfigureAwait(false), _stop.Token).ConfigureAwait(false);
                    break;
            }
        }
        catch (ProtocolException e)
        {
            // Half a request when the time ran out (what was left of it: named whole), an over-long
            // line, or one cut short by the close.
            var timeout = e.Code == "timeout";
            if (timeout)
                Interlocked.Increment(ref _requestTimeouts);
            await TrySend(conn, Refusal(GlassErrors.BadRequest,
                timeout ? $"No complete request arrived within {_options.RequestTimeout.TotalSeconds:0.#} s." : e.Message)).ConfigureAwait(false);
        }
        catch (Exception e) when (e is SocketException or IOException or OperationCanceledException or ObjectDisposedException)
        {
            // One client's broken connection touches nothing else.
        }
        finally
        {
            conn.Dispose();
        }
    }

    /// <summary>
    /// Asks the translator for its settings (at start, and each time the watch reconnects, as it
    /// may have restarted with others); returns what disagrees, or null. An unreachable
    /// translator is checked again once it answers.
    /// </summary>
    private async Task<string?> CheckTranslator(bool throwOnMismatch)
    {
        TranslatorSettings? t;
        try
        {
            t = await _translator.GetSettingsAsync(_stop.Token).ConfigureAwait(false);
        }
        catch (GlassException)
        {
            return null;
        }
        var mismatch = t is null || t.PortRange == _options.PortRange.ToString() ? null
            : $"The translator on {_options.ControlSocket} relays ports {t.PortRange} (queue {t.Queue}), but this controller hands out {_options.PortRange}: "
              + "every connection would fail. Give both the same portRange (one YAML for both, or the same -PortRange).";
        _mismatch = mismatch;
        if (mismatch is not null && !throwOnMismatch)
            Problem?.Invoke(mismatch);
        return mismatch;
    }

    /// <summary>The answer line to a CONNECT or LOOKUP: OK with its words, or ERR.</summary>
    private async Task<string> Answer(ControllerRequest request, uint peer, uint router, object? owner = null)
    {
        if (request.Verb == ControllerVerb.Connect && _mismatch is { } mismatch)
            return Refusal(GlassErrors.ConfigMismatch, mismatch);
        if (request.Verb == ControllerVerb.Lookup)
        {
            var (channel, problem) = FindChannel(request.ChannelId!, null, checkSecret: false);
            return channel is null ? Refusal(problem!.Value.Code, problem.Value.Text) : "OK";
        }
        var answer = await Connect(peer, request.ChannelId!, request.Secret, owner, request.Ahead).ConfigureAwait(false);
        return answer.Error is { } e ? Refusal(e.Code, e.Text) : $"OK {Ipv4.Format(router)} {answer.Port}";
    }

    /// <summary>
    /// A connector's persistent connection: CONNECT and LOOKUP requests, pipelined and answered in
    /// order, each handled as soon as it arrives. Saves the client a TCP handshake per request.
    /// </summary>
    private async Task ServeSession(LineConnection conn, uint peer, uint router)
    {
        lock (_gate)
        {
            var held = _sessionsByAddress.GetValueOrDefault(peer);
            if (held >= _options.MaxSessionsPerAddress)
                peer = 0;
            else
                _sessionsByAddress[peer] = held + 1;
        }
        if (peer == 0)
        {
            await TrySend(conn, Refusal(GlassErrors.LimitExceeded, $"this address already holds {_options.MaxSessionsPerAddress} sessions")).ConfigureAwait(false);
            return;
        }
        try
        {
            await conn.WriteLineAsync("OK", _stop.Token).ConfigureAwait(false);
            // Bounded: a client that pipelines without reading its answers stops being read.
            var answers = System.Threading.Channels.Channel.CreateBounded<Task<string>>(
                new System.Threading.Channels.BoundedChannelOptions(MaxPipelined) { SingleReader = true, SingleWriter = true });
            // A writer that fails ends the reading too, even one waiting for room among the answers.
            using var ended = CancellationTokenSource.CreateLinkedTokenSource(_stop.Token);
            var writer = WriteAnswers(conn, answers.Reader, ended);
            try
            {
                while (await conn.ReadLineAsync(_options.SessionIdleTimeout, ended.Token).ConfigureAwait(false) is { } line)
                    await answers.Writer.WriteAsync(AnswerInSession(line, peer, router, conn), ended.Token).ConfigureAwait(false);
            }
            catch (ProtocolException e) when (e.Code == "timeout")
            {
                // Idle for long: closing is the answer; the client opens a new session when it needs one.
            }
            catch (OperationCanceledException) when (ended.IsCancellationRequested && !_stop.IsCancellationRequested)
            {
                // The answers could not be written: the connection is gone.
            }
            finally
            {
                answers.Writer.TryComplete();
                await writer.ConfigureAwait(false);
            }
        }
        finally
        {
            lock (_gate)
                CountOut(_sessionsByAddress, peer);
        }
    }

    private Task<string> AnswerInSession(string line, uint peer, uint router, LineConnection session)
    {
        if (!ControllerRequest.TryParse(line, out var request, out var code, out var error))
            return Task.FromResult(Refusal(code, error));
        if (request.Verb == ControllerVerb.Cancel)
            return Cancel(session, request.Port);
        if (request.Verb is not (ControllerVerb.Connect or ControllerVerb.Lookup))
            return Task.FromResult(Refusal(GlassErrors.BadRequest, "a session carries only CONNECT, LOOKUP and CANCEL"));
        return Answer(request, peer, router, session);
    }

    /// <summary>
    /// A connector gave up on a router port this session was given (its dial failed): the link ends
    /// at once, so its binder's dial is refused instead of waiting for a peer that never comes.
    /// </summary>
    private async Task<string> Cancel(LineConnection session, ushort port)
    {
        if (FindPending(p => ReferenceEquals(p.Owner, session) && p.Link.RouterPortA == port) is not { } pending)
            return Refusal(GlassErrors.NotFound, $"no link of this session waits on router port {port}");
        await UnlinkQuietly(pending.Link.PeerA, pending.Link.RouterPortA).ConfigureAwait(false);
        return "OK";
    }

    /// <summary>Writes each answer once it is ready, in the order the requests came.</summary>
    private async Task WriteAnswers(LineConnection conn, System.Threading.Channels.ChannelReader<Task<string>> answers, CancellationTokenSource ended)
    {
        try
        {
            await foreach (var answer in answers.ReadAllAsync(_stop.Token).ConfigureAwait(false))
                await conn.WriteLineAsync(await answer.ConfigureAwait(false), _stop.Token).ConfigureAwait(false);
        }
        catch (Exception e) when (e is SocketException or IOException or OperationCanceledException or ObjectDisposedException)
        {
            conn.Socket.Dispose();
            ended.Cancel();
        }
    }

    /// <summary>Counts a refusal and returns its answer line.</summary>
    private string Refusal(string code, string text)
    {
        Interlocked.Increment(ref code == GlassErrors.BadRequest || code == "version" ? ref _badRequests : ref _refused);
        _refusedByCode.AddOrUpdate(code, 1, static (_, n) => n + 1);
        return $"ERR {code} {text}";
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

    /// <summary>Registers the channel, answers, then serves heartbeats until the binder leaves.</summary>
    private async Task ServeBinder(LineConnection conn, ControllerRequest request)
    {
        // A connector may find the channel as soon as it is registered, before its OK is written:
        // its CONNECT waits for the OK, which the binder must read first.
        var answered = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        var binder = new BinderInfo(
            async (router, port, ahead) =>
            {
                await answered.Task.ConfigureAwait(false);
                await conn.WriteLineAsync($"CONNECT {Ipv4.Format(router)} {port}{(ahead ? " ahead" : "")}", _stop.Token).ConfigureAwait(false);
            },
            AddressOf(conn.Socket.RemoteEndPoint), AddressOf(conn.Socket.LocalEndPoint));
        string? id = null;
        try
        {
            id = await Register(conn, binder, request.ChannelId, request.Secret, request.ConnectSecret).ConfigureAwait(false);
        }
        finally
        {
            // Refused, or the OK could not be written (then unbound again): a waiting CONNECT finds the binder gone.
            if (id is null)
                answered.TrySetCanceled();
            else
                answered.TrySetResult();
        }
        if (id is null)
            return;
        try
        {
            while (await conn.ReadLineAsync(_options.BinderTimeout, _stop.Token).ConfigureAwait(false) is { } line)
            {
                if (line == "PING")
                {
                    await conn.WriteLineAsync("PONG", _stop.Token).ConfigureAwait(false);
                }
                else if (line == "AHEAD")
                {
                    // No answer: from now on, links asked for ahead are pushed at once.
                    binder.DialsAhead = true;
                }
                else if (line == "BYE")
                {
                    lock (_gate)
                        _channels.Release(id, binder);
                    return;
                }
                else if (line.StartsWith("CANCEL ", StringComparison.Ordinal) && ushort.TryParse(line.AsSpan(7), out var port))
                {
                    // Only a link this binder was told to dial: no answer, the link just ends.
                    if (FindLink(binder, port))
                        await UnlinkQuietly(binder.Peer, port).ConfigureAwait(false);
                }
                else
                    await conn.WriteLineAsync($"ERR {GlassErrors.BadRequest} a binder may only send PING, AHEAD, CANCEL or BYE", _stop.Token).ConfigureAwait(false);
            }
        }
        catch (ProtocolException)
        {
            // Silent for too long, or garbage: the binder is gone; its lease remains.
        }
        finally
        {
            Unregister(conn, binder, id);
        }
    }

    /// <summary>Whether <paramref name="binder"/> was told to dial router port <paramref name="port"/> for a link not yet paired.</summary>
    private bool FindLink(BinderInfo binder, ushort port) =>
        FindPending(p => ReferenceEquals(p.Binder, binder) && p.Link.RouterPortB == port) is not null;

    /// <summary>The first link not yet paired that <paramref name="match"/> accepts, or null.</summary>
    private PendingLink? FindPending(Func<PendingLink, bool> match)
    {
        lock (_gate)
        {
            foreach (var p in _links.Values)
            {
                if (match(p))
                    return p;
            }
            return null;
        }
    }

    /// <summary>Claims the channel and answers OK; on refusal answers ERR and returns null.</summary>
    private async Task<string?> Register(LineConnection conn, BinderInfo binder, string? id, string? secret, string? connectSecret, bool legacy = false)
    {
        BindResult r;
        lock (_gate)
        {
            r = _channels.BoundFrom(binder.Peer) >= _options.MaxBindingsPerAddress
                ? BindResult.Fail(GlassErrors.LimitExceeded, $"this address already holds {_options.MaxBindingsPerAddress} bindings")
                : legacy ? _channels.BindLegacy(id!, binder) : _channels.Bind(id, secret, connectSecret, binder);
            if (r.Success)
                _binderConnections.Add(conn);
        }
        if (!r.Success)
        {
            // The prototype's BIND learns of a refusal only from the close; it is counted all the same.
            var refusal = Refusal(r.ErrorCode!, r.Message!);
            if (!legacy)
                await TrySend(conn, refusal).ConfigureAwait(false);
            return null;
        }
        if (!legacy)
        {
            try
            {
                await conn.WriteLineAsync($"OK {r.Id} {r.Secret} ports={_options.PortRange}", _stop.Token).ConfigureAwait(false);
            }
            catch
            {
                // The binder never learnt its channel: it must not stay bound to a dead connection.
                Unregister(conn, binder, r.Id!);
                throw;
            }
        }
        return r.Id;
    }

    private void Unregister(LineConnection conn, BinderInfo binder, string id)
    {
        lock (_gate)
        {
            _channels.Detach(id, binder);
            _binderConnections.Remove(conn);
        }
    }

    private (ChannelRegistry.Channel? Channel, (string Code, string Text)? Problem) FindChannel(string requested, string? secret, bool checkSecret)
    {
        ChannelRegistry.Channel? c;
        lock (_gate)
            c = _channels.Find(requested);
        if (c is null)
            return (null, (GlassErrors.UnknownChannel, $"no binding has channel id {requested}"));
        if (checkSecret && !ChannelRegistry.ConnectSecretMatches(c, secret))
            return (null, (GlassErrors.Unauthorized, $"channel {c.Id} needs its connect secret (-Secret)"));
        if (c.Binder is null)
            return (null, (GlassErrors.BinderUnavailable, $"the binder of channel {c.Id} is temporarily unavailable; try again shortly"));
        return (c, null);
    }

    private bool TakeConnectToken(uint address)
    {
        var now = _options.Clock.NowMilliseconds;
        double capacity = 2.0 * _options.ConnectRatePerAddress;
        var (tokens, at) = _buckets.GetValueOrDefault(address, (capacity, now));
        tokens = Math.Min(capacity, tokens + (now - at) * _options.ConnectRatePerAddress / 1000.0);
        if (tokens < 1)
        {
            _buckets[address] = (tokens, now);
            return false;
        }
        _buckets[address] = (tokens - 1, now);
        if (_buckets.Count > 65536)
            _buckets.Clear(); // bounded: forgetting buckets only forgives
        return true;
    }

    /// <summary>Allocates, links and pushes; returns the connector's router port or the refusal.</summary>
    /// <param name="owner">The connector's session, which may CANCEL the link; null for a request on its own connection.</param>
    private async Task<(ushort Port, (string Code, string Text)? Error)> Connect(uint connector, string requested, string? secret, object? owner = null, bool ahead = false)
    {
        var (channel, problem) = FindChannel(requested, secret, checkSecret: true);
        if (channel is null)
            return (0, problem);
        var binder = channel.Binder!;
        lock (_gate)
        {
            if (!TakeConnectToken(connector))
                return (0, (GlassErrors.LimitExceeded, $"more than {_options.ConnectRatePerAddress} connect requests per second from this address"));
            if (_ports.CountFor(connector) >= _options.MaxLinksPerAddress)
                return (0, (GlassErrors.LimitExceeded, $"this address already holds {_options.MaxLinksPerAddress} router ports"));
            // The binder's side too: connectors from many addresses must not pin all of its ports
            // (and make it dial its local server for links that never complete).
            if (_ports.CountFor(binder.Peer) >= _options.MaxLinksPerAddress)
                return (0, (GlassErrors.LimitExceeded, $"the binder of channel {channel.Id} already holds {_options.MaxLinksPerAddress} router ports for connections being set up"));
        }

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
                return (0, (e.ErrorId, e.Message));
            }
            if (link.Success || link.ErrorCode != "port-in-use" || attempt == 3)
                break; // a refusal's ports are released below, once
            // The next attempt draws other ports at random.
            ReleasePorts(connector, pc, binder.Peer, pb);
        }
        if (pc == 0 || pb == 0)
            return (0, (GlassErrors.RouterFull, $"no free router port in {_options.PortRange} for this link"));
        if (!link.Success)
        {
            ReleasePorts(connector, pc, binder.Peer, pb);
            var code = link.ErrorCode == "full" ? GlassErrors.RouterFull : link.ErrorCode ?? GlassErrors.ProtocolError;
            return (0, (code, $"the translator refused the link: {link.Message}"));
        }
        var pending = new PendingLink(new LinkRelease(connector, pc, binder.Peer, pb, "", link.SessionId), binder, owner);
        bool tellNow;
        // A forwarder's spare (ahead=1) is dialed soon: a binder that dials ahead is told now and
        // dials only the router, so its local server still waits for the connector's SYN.
        ahead = ahead && binder.DialsAhead;
        lock (_gate)
        {
            _links[link.SessionId] = pending;
            // No PAIRED or RELEASED of this link can come before this: its binder is told below.
            _ports.Assign(connector, pc, link.SessionId);
            _ports.Assign(binder.Peer, pb, link.SessionId);
            // The binder dials once the connector's SYN is in (ARRIVED), so a connector that never
            // dials costs it nothing; without a watch, or when the SYN came first, it dials now.
            var arrived = _arrivedEarly.Remove(link.SessionId);
            tellNow = !_watching || arrived || ahead;
            ahead = ahead && !arrived;
            pending.Told = tellNow;
        }
        if (tellNow && !await TellBinder(pending, countRefusal: false, ahead).ConfigureAwait(false))
        {
            return (0, (GlassErrors.BinderUnavailable, $"the binder of channel {channel.Id} could not be reached"));
        }
        Interlocked.Increment(ref _connects);
        return (pc, null);
    }

    /// <summary>
    /// The original design's messages: "BIND" or "CONN" and a 16-byte channel id. CONN is answered
    /// with 8 bytes (IPv4 address, port, two zero bytes; all zero on refusal); a binder's
    /// connection stays open and receives one such 8-byte record per connection request.
    /// </summary>
    private async Task ServeLegacy(LineConnection conn, bool bind, long deadline)
    {
        var message = await conn.PeekAsync(20, Left(deadline), _stop.Token).ConfigureAwait(false);
        if (message.Length < 20)
        {
            _ = Refusal(GlassErrors.BadRequest, "the connection closed in the middle of a BIND or CONN");
            return;
        }
        var id = Convert.ToHexStringLower(message.Span[4..20]);
        conn.Consume(20);
        var required = bind ? _options.BindToken : _options.ConnectToken;
        if (bind)
        {
            if (required is not null)
            {
                _ = Refusal(GlassErrors.Unauthorized, "a router with a bind token refuses the prototype's BIND");
                return;
            }
            var binder = new BinderInfo((router, port, _) => conn.WriteAsync(Record(router, port), _stop.Token).AsTask(),
                AddressOf(conn.Socket.RemoteEndPoint), AddressOf(conn.Socket.LocalEndPoint));
            if (await Register(conn, binder, id, null, null, legacy: true).ConfigureAwait(false) is null)
                return;
            try
            {
                // The old design's binder never speaks again, so it cannot heartbeat: TCP keepalive
                // finds one that vanished (no FIN, no RST) within about twice the binder timeout.
                var idle = Math.Max(1, (int)_options.BinderTimeout.TotalSeconds);
                conn.Socket.SetSocketOption(SocketOptionLevel.Socket, SocketOptionName.KeepAlive, true);
                conn.Socket.SetSocketOption(SocketOptionLevel.Tcp, SocketOptionName.TcpKeepAliveTime, idle);
                conn.Socket.SetSocketOption(SocketOptionLevel.Tcp, SocketOptionName.TcpKeepAliveInterval, Math.Max(1, idle / 3));
                conn.Socket.SetSocketOption(SocketOptionLevel.Tcp, SocketOptionName.TcpKeepAliveRetryCount, 3);
                // Nothing is expected from a legacy binder; its closing ends the binding.
                await conn.PeekAsync(1, Timeout.InfiniteTimeSpan, _stop.Token).ConfigureAwait(false);
            }
            finally
            {
                Unregister(conn, binder, id);
            }
            return;
        }
        var answer = required is null
            ? await Connect(AddressOf(conn.Socket.RemoteEndPoint), id, null).ConfigureAwait(false)
            : (0, (GlassErrors.Unauthorized, ""));
        if (answer.Error is { } refusal)
        {
            Interlocked.Increment(ref _refused);
            _refusedByCode.AddOrUpdate(refusal.Code, 1, static (_, n) => n + 1);
        }
        await conn.WriteAsync(answer.Error is null ? Record(AddressOf(conn.Socket.LocalEndPoint), answer.Port) : new byte[8], _stop.Token).ConfigureAwait(false);
    }

    /// <summary>A binary BIND or CONN on a router that does not allow them: CONN learns it from eight zero bytes, BIND from the close.</summary>
    private async Task RefuseLegacy(LineConnection conn, bool bind)
    {
        Interlocked.Increment(ref _refused);
        _refusedByCode.AddOrUpdate(GlassErrors.PlaintextRefused, 1, static (_, n) => n + 1);
        if (!bind)
            await conn.WriteAsync(new byte[8], _stop.Token).ConfigureAwait(false);
    }

    private static byte[] Record(uint address, ushort port)
    {
        var r = new byte[8];
        BinaryPrimitives.WriteUInt32BigEndian(r, address);
        BinaryPrimitives.WriteUInt16BigEndian(r.AsSpan(4), port);
        return r;
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
        RegistryStore? registry;
        lock (_gate)
        {
            // Binders are away from now on; the registry keeps their leases for the next controller.
            registry = _channels.Close();
            foreach (var c in _binderConnections)
                c.Dispose();
            _binderConnections.Clear();
        }
        registry?.Dispose();
        try
        {
            Task.WaitAll(new[] { _accept ?? Task.CompletedTask, _watch ?? Task.CompletedTask }, TimeSpan.FromSeconds(2));
        }
        catch (AggregateException)
        {
        }
        _translator.Dispose();
        if (_ownsIdentity)
            _identity.Dispose();
    }

    public void Dispose() => Stop();

    /// <summary>A link the translator took and has not reported paired or released.</summary>
    private sealed class PendingLink(LinkRelease link, BinderInfo binder, object? owner)
    {
        public LinkRelease Link { get; } = link;
        public BinderInfo Binder { get; } = binder;
        /// <summary>The connector's session that asked for it (it may cancel it), or null.</summary>
        public object? Owner { get; } = owner;
        /// <summary>The binder was told to dial (under the controller's lock).</summary>
        public bool Told { get; set; }
    }
}
