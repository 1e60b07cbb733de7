using System.Net;
using System.Net.Sockets;
using Glass.Protocol;

namespace Glass.Client;

/// <summary>How a binding identifies itself to the router.</summary>
public sealed record BindingOptions
{
    /// <summary>A channel id to claim or reclaim (with <see cref="Secret"/>); null for a fresh one.</summary>
    public string? ChannelId { get; init; }
    public string? Secret { get; init; }
    /// <summary>A secret connectors must present, or null.</summary>
    public string? ConnectSecret { get; init; }
    /// <summary>The router's bind token, where it requires one.</summary>
    public string? Token { get; init; }
    /// <summary>How often to PING; three intervals without an answer count as a lost connection.</summary>
    public TimeSpan Heartbeat { get; init; } = TimeSpan.FromSeconds(5);
    /// <summary>The longest pause between reconnection attempts.</summary>
    public TimeSpan MaxBackoff { get; init; } = TimeSpan.FromSeconds(10);
    /// <summary>How long to wait for the controller's connection and for its answer to BIND.</summary>
    public TimeSpan Patience { get; init; } = ControllerConnection.ReplyTimeout;
    /// <summary>How the router is authenticated; null: inside TLS, the first key seen pinned for the binding's life.</summary>
    public RouterTrust? Trust { get; init; }
}

/// <summary>
/// Exposes a local TCP server on a channel id: keeps a control connection to the controller
/// (reconnecting with backoff, reclaiming the same id, when it drops), and for each pushed
/// "CONNECT router port" dials that router endpoint and the local server and copies bytes both ways.
/// </summary>
public sealed class GlassBinding : IDisposable
{
    private readonly CancellationTokenSource _stop = new();
    private readonly BindingOptions _options;
    private LineConnection _control;
    // The router ports the controller said it hands out; a CONNECT naming another is refused.
    private PortRange? _routerPorts;
    private long _connections, _active, _toLocal, _fromLocal, _failures, _reconnects;
    private Task? _run;

    private GlassBinding(LineConnection control, string channelId, string secret, IPEndPoint router, IPEndPoint localTarget, BindingOptions options)
    {
        _control = control;
        ChannelId = channelId;
        Secret = secret;
        Router = router;
        LocalTarget = localTarget;
        _options = options;
    }

    public string ChannelId { get; }
    /// <summary>Proves ownership of <see cref="ChannelId"/> when binding it again.</summary>
    public string Secret { get; }
    public IPEndPoint Router { get; }
    public IPEndPoint LocalTarget { get; }
    /// <summary>Connected, or Reconnecting while the control connection is being restored.</summary>
    public string ControlState { get; private set; } = "Connected";
    public long Reconnects => Interlocked.Read(ref _reconnects);
    public long Connections => Interlocked.Read(ref _connections);
    public long ActiveConnections => Interlocked.Read(ref _active);
    public long BytesToLocal => Interlocked.Read(ref _toLocal);
    public long BytesFromLocal => Interlocked.Read(ref _fromLocal);
    public long Failures => Interlocked.Read(ref _failures);

    /// <summary>What happened, for the job's verbose and warning streams. Handlers must be quick.</summary>
    public event Action<string, bool>? Message;

    /// <summary>Ends when the binding stops: normally after Stop, faulted when the router refuses it for good.</summary>
    public Task Completion => _run ?? Task.CompletedTask;

    public static async Task<GlassBinding> StartAsync(IPEndPoint router, IPEndPoint localTarget, BindingOptions? options = null, CancellationToken ct = default)
    {
        // The event loops exist before any connection needs them (and before descriptors run short).
        SocketLoop.EnsureStarted();
        options ??= new BindingOptions();
        // One trust for every reconnection: a key learnt at the first bind holds for the rest.
        options = options with { Trust = options.Trust ?? RouterTrust.FirstUse(router.ToString()) };
        // Rebinding right after a Stop can race the router's handling of our BYE: give it a moment.
        var patience = Environment.TickCount64 + 3000;
        Bound bound;
        while (true)
        {
            try
            {
                bound = await BindAsync(router, options, options.ChannelId, options.Secret, ct).ConfigureAwait(false);
                break;
            }
            catch (GlassException e) when (e.ErrorId == GlassErrors.ChannelInUse && Environment.TickCount64 < patience)
            {
                await Task.Delay(100, ct).ConfigureAwait(false);
            }
        }
        var binding = new GlassBinding(bound.Control, bound.Id, bound.Secret, router, localTarget, options) { _routerPorts = bound.Ports };
        binding._run = binding.RunAsync();
        return binding;
    }

    /// <summary>An accepted BIND: the control connection, the channel, and the router ports the controller hands out (if it said).</summary>
    private readonly record struct Bound(LineConnection Control, string Id, string Secret, PortRange? Ports);

    private static async Task<Bound> BindAsync(IPEndPoint router, BindingOptions o, string? id, string? secret, CancellationToken ct)
    {
        var conn = await ControllerConnection.OpenAsync(router, o.Trust!, ct, o.Patience).ConfigureAwait(false);
        try
        {
            var request = new ControllerRequest { Verb = ControllerVerb.Bind, ChannelId = id, Secret = secret, ConnectSecret = o.ConnectSecret, Token = o.Token };
            await ControllerConnection.SendAsync(conn, request.Format(), router, ct).ConfigureAwait(false);
            var words = await ControllerConnection.ReadAnswerAsync(conn, router, ct, o.Patience).ConfigureAwait(false);
            // OK ID SECRET [ports=FIRST-LAST]; a controller from before the range says only the first two.
            PortRange? ports = null;
            if (words.Length is not (2 or 3) || !Controller.ChannelId.TryNormalize(words[0], out var bound)
                || (words.Length == 3 && !(words[2].StartsWith("ports=", StringComparison.Ordinal) && PortRange.TryParse(words[2][6..], out ports, out _))))
                throw new GlassException(GlassErrors.ProtocolError, $"The controller at {router} answered BIND with '{string.Join(' ', words)}'.");
            return new Bound(conn, bound, words[1], ports);
        }
        catch
        {
            conn.Dispose();
            throw;
        }
    }

    private async Task RunAsync()
    {
        var ct = _stop.Token;
        var backoff = TimeSpan.FromMilliseconds(250);
        while (true)
        {
            var lost = await ServeControlAsync(ct).ConfigureAwait(false);
            if (ct.IsCancellationRequested)
                return;
            ControlState = "Reconnecting";
            Message?.Invoke($"The control connection of channel {ChannelId} to {Router} was lost ({lost}); reconnecting.", true);
            while (true)
            {
                try
                {
                    await Task.Delay(backoff, ct).ConfigureAwait(false);
                }
                catch (OperationCanceledException)
                {
                    return;
                }
                backoff = TimeSpan.FromTicks(Math.Min(backoff.Ticks * 2, _options.MaxBackoff.Ticks));
                try
                {
                    var again = await BindAsync(Router, _options, ChannelId, Secret, ct).ConfigureAwait(false);
                    _control = again.Control;
                    _routerPorts = again.Ports;
                    break;
                }
                catch (GlassException e) when (e.ErrorId is GlassErrors.Unauthorized or GlassErrors.RouterFingerprintMismatch or GlassErrors.PlaintextRefused)
                {
                    // Retrying cannot help, and a router with another key must not get our secret.
                    throw new GlassException(e.ErrorId, $"Channel {ChannelId} can no longer be bound: {e.Message}", e);
                }
                catch (GlassException e)
                {
                    // Unreachable, or the router still holds our old connection: try again.
                    Message?.Invoke($"Reconnecting channel {ChannelId}: {e.Message}", false);
                }
                catch (OperationCanceledException) when (ct.IsCancellationRequested)
                {
                    return;
                }
            }
            Interlocked.Increment(ref _reconnects);
            backoff = TimeSpan.FromMilliseconds(250);
            ControlState = "Connected";
            Message?.Invoke($"Channel {ChannelId} is bound again at {Router}.", false);
        }
    }

    /// <summary>Serves one control connection until it is lost; returns why.</summary>
    private async Task<string> ServeControlAsync(CancellationToken ct)
    {
        var control = _control;
        using var connectionEnded = CancellationTokenSource.CreateLinkedTokenSource(ct);
        var heartbeat = HeartbeatAsync(control, connectionEnded.Token);
        try
        {
            // Links a forwarder keeps for its next connection may be pushed ahead of the connector's SYN.
            await control.WriteLineAsync("AHEAD", ct).ConfigureAwait(false);
            // Any line (a PONG at least) must arrive within three heartbeats.
            while (await control.ReadLineAsync(_options.Heartbeat * 3, ct).ConfigureAwait(false) is { } line)
            {
                var f = line.Split(' ');
                if ((f.Length == 3 || (f.Length == 4 && f[3] == "ahead")) && f[0] == "CONNECT"
                    && IPAddress.TryParse(f[1], out var addr) && ushort.TryParse(f[2], out var port))
                {
                    // The binder dials only its own router's relay ports: a control connection that names
                    // anything else (a forged or confused controller) must not turn it into a port scanner.
                    if (addr.Equals(Router.Address) && port != 0 && _routerPorts?.Contains(port) != false)
                        _ = ServeAsync(new IPEndPoint(addr, port), ahead: f.Length == 4, ct);
                    else
                    {
                        Interlocked.Increment(ref _failures);
                        Message?.Invoke(addr.Equals(Router.Address)
                            ? $"Refused to dial {addr}:{port}: the controller may only name a port of its relay range {_routerPorts}."
                            : $"Refused to dial {addr}:{port}: the controller may only name its own address {Router.Address}.", true);
                    }
                }
                else if (line != "PONG")
                    Message?.Invoke($"Ignored an unexpected line from the controller: '{line}'.", true);
            }
            return "closed by the controller";
        }
        catch (Exception e) when (e is SocketException or IOException or ProtocolException or ObjectDisposedException or OperationCanceledException)
        {
            return e.Message;
        }
        finally
        {
            connectionEnded.Cancel();
            control.Dispose();
            await heartbeat.ConfigureAwait(false);
        }
    }

    private async Task HeartbeatAsync(LineConnection control, CancellationToken ct)
    {
        try
        {
            while (true)
            {
                await Task.Delay(_options.Heartbeat, ct).ConfigureAwait(false);
                await control.WriteLineAsync("PING", ct).ConfigureAwait(false);
            }
        }
        catch (Exception e) when (e is OperationCanceledException or SocketException or IOException or ObjectDisposedException)
        {
            // The read loop notices a dead connection and reports it.
        }
    }

    private async Task ServeAsync(IPEndPoint routerEndpoint, bool ahead, CancellationToken ct)
    {
        Socket? remote = null, local = null;
        var counted = false;
        try
        {
            DescriptorReserve.TryFill();
            using (var timeout = CancellationTokenSource.CreateLinkedTokenSource(ct))
            {
                timeout.CancelAfter(ControllerConnection.ReplyTimeout);
                // Told before the connector's SYN (a forwarder's spare): the router answers this dial
                // only once that SYN is in, and only then is the local server dialed.
                if (ahead && (remote = await DialAheadAsync(routerEndpoint, timeout.Token, ct).ConfigureAwait(false)) is null)
                    return;
                counted = true;
                CountConnection();
                if (ahead)
                    local = await TcpSockets.ConnectAsync(LocalTarget, timeout.Token).ConfigureAwait(false);
                else
                {
                    var routerDial = TcpSockets.ConnectAsync(routerEndpoint, timeout.Token);
                    var localDial = TcpSockets.ConnectAsync(LocalTarget, timeout.Token);
                    try
                    {
                        await Task.WhenAll(routerDial, localDial).ConfigureAwait(false);
                    }
                    finally
                    {
                        // Whichever dial succeeded is disposed below, and says which one failed.
                        remote = routerDial.IsCompletedSuccessfully ? routerDial.Result : null;
                        local = localDial.IsCompletedSuccessfully ? localDial.Result : null;
                    }
                }
            }
            var (toLocal, fromLocal) = await StreamPump.RunAsync(remote!, local!, ct).ConfigureAwait(false);
            Interlocked.Add(ref _toLocal, toLocal);
            Interlocked.Add(ref _fromLocal, fromLocal);
            Message?.Invoke($"A connection through router endpoint {routerEndpoint} ended: {toLocal} bytes to {LocalTarget}, {fromLocal} from it.", false);
        }
        catch (Exception e) when (e is SocketException or OperationCanceledException or IOException)
        {
            if (!ct.IsCancellationRequested)
            {
                Interlocked.Increment(ref _failures);
                if (TcpSockets.IsOutOfDescriptors(e))
                {
                    // Descriptors for the rest of the process (the CANCEL, the error's output).
                    DescriptorReserve.Release();
                    Message?.Invoke(TcpSockets.OutOfDescriptors($"A connection to channel {ChannelId} failed"), true);
                }
                else
                {
                    var which = local is not null ? $"the router endpoint {routerEndpoint}" : $"the local server {LocalTarget}";
                    Message?.Invoke($"A connection to channel {ChannelId} failed: {which} could not be reached ({e.Message}).", true);
                }
                if (remote is null)
                    await CancelLinkAsync(routerEndpoint.Port).ConfigureAwait(false);
            }
        }
        finally
        {
            remote?.Dispose();
            local?.Dispose();
            if (counted)
                Interlocked.Decrement(ref _active);
        }
    }

    private void CountConnection()
    {
        Interlocked.Increment(ref _connections);
        Interlocked.Increment(ref _active);
    }

    /// <summary>
    /// Dials a link told ahead; null when it went unused: the forwarder gave its spare back (the
    /// router refuses the dial) or never dialed in time (the link is cancelled). Neither is a failure.
    /// </summary>
    private async Task<Socket?> DialAheadAsync(IPEndPoint routerEndpoint, CancellationToken timeout, CancellationToken ct)
    {
        try
        {
            return await TcpSockets.ConnectAsync(routerEndpoint, timeout).ConfigureAwait(false);
        }
        catch (Exception e) when (!ct.IsCancellationRequested && e is SocketException or OperationCanceledException)
        {
            if (e is OperationCanceledException)
                await CancelLinkAsync(routerEndpoint.Port).ConfigureAwait(false);
            Message?.Invoke($"A link told ahead through router endpoint {routerEndpoint} went unused ({(e is SocketException se ? se.SocketErrorCode : "no connector in time")}).", false);
            return null;
        }
    }

    /// <summary>
    /// This side gave up on a link: the controller ends it at once, so a connector that dials its
    /// endpoint late is refused (a reset) instead of paired with a side nobody holds.
    /// </summary>
    private async Task CancelLinkAsync(int routerPort)
    {
        try
        {
            await _control.WriteLineAsync($"CANCEL {routerPort}", _stop.Token).ConfigureAwait(false);
        }
        catch (Exception e) when (e is SocketException or IOException or ObjectDisposedException or OperationCanceledException)
        {
            // The link then ends when its pending time runs out.
        }
    }

    /// <summary>Stops serving and tells the router the channel is gone (not merely away).</summary>
    public void Stop()
    {
        if (ControlState == "Connected" && !_stop.IsCancellationRequested)
        {
            try
            {
                _control.WriteLineAsync("BYE", CancellationToken.None).AsTask().Wait(TimeSpan.FromSeconds(1));
            }
            catch (AggregateException)
            {
                // The router will expire the lease instead.
            }
        }
        _stop.Cancel();
        _control.Dispose();
        try
        {
            _run?.Wait(TimeSpan.FromSeconds(2));
        }
        catch (AggregateException)
        {
        }
    }

    public void Dispose() => Stop();
}
