using System.Net;
using System.Net.Sockets;
using Glass.Protocol;

namespace Glass.Client;

/// <summary>
/// Listens on a local port and forwards every local connection to a channel, each through its own
/// freshly requested router endpoint. The requests share one persistent controller connection
/// (<see cref="ControllerSession"/>).
/// </summary>
public sealed class GlassForwarder : IDisposable, IAcceptTarget
{
    private readonly Socket _listener;
    private readonly CancellationTokenSource _stop = new();
    private long _connections, _active, _sent, _received, _failures;
    private Task? _run;
    private AcceptOperation? _accept;

    private readonly string? _secret;
    private readonly ControllerSession _controller;

    // One endpoint asked for ahead of the next local connection, so that connection does not wait
    // for the controller. The binder hears of a link only once the connector's SYN arrives, so
    // an unused one costs it nothing; it is given back (CANCEL) when it grows old or at stop.
    private sealed record Spare(Task<IPEndPoint> Endpoint, long RequestedAt);
    private Spare? _spare;
    private readonly Timer _expiry;

    /// <summary>
    /// How long a spare endpoint is used: well inside any router's pending time (60 s by default),
    /// after which the router refuses a dial to it.
    /// </summary>
    internal static readonly TimeSpan SpareLifetime = TimeSpan.FromSeconds(5);

    /// <summary>
    /// How long a dial to a spare endpoint may take before a fresh one is asked for: a splice
    /// takes milliseconds, and a SYN to a link the router no longer holds is never answered.
    /// </summary>
    internal static readonly TimeSpan SpareDialPatience = TimeSpan.FromSeconds(2);

    private GlassForwarder(Socket listener, ControllerSession controller, IPEndPoint router, string channelId, string? secret)
    {
        _listener = listener;
        _controller = controller;
        controller.Notice = m => Message?.Invoke(m, true);
        Router = router;
        ChannelId = channelId;
        _secret = secret;
        // A spare is given back between one and 1.2 lifetimes after it was asked for.
        var period = SpareLifetime / 5;
        _expiry = new Timer(static f => ((GlassForwarder)f!).ExpireSpare(), this, period, period);
    }

    public string ChannelId { get; }
    public IPEndPoint Router { get; }
    public IPEndPoint LocalEndPoint => (IPEndPoint)_listener.LocalEndPoint!;
    public long Connections => Interlocked.Read(ref _connections);
    public long ActiveConnections => Interlocked.Read(ref _active);
    public long BytesSent => Interlocked.Read(ref _sent);
    public long BytesReceived => Interlocked.Read(ref _received);
    public long Failures => Interlocked.Read(ref _failures);

    public event Action<string, bool>? Message;

    /// <summary>A local connection failed (and was reset); the exception names the cause.</summary>
    public event Action<Exception>? ConnectionFailed;

    public Task Completion => _run ?? Task.CompletedTask;

    /// <summary>Checks that the channel exists, then listens on <paramref name="listen"/>.</summary>
    public static async Task<GlassForwarder> StartAsync(IPEndPoint router, string channelId, IPEndPoint listen,
        string? secret = null, string? token = null, CancellationToken ct = default, TimeSpan? patience = null, RouterTrust? trust = null)
    {
        var id = ControllerConnection.Normalize(channelId);
        // The event loops exist before any connection needs them (and before descriptors run short).
        SocketLoop.EnsureStarted();
        var controller = new ControllerSession(router, token, patience, trust);
        Socket s;
        try
        {
            // Through the session, which is then open for the first connection.
            await controller.RequestAsync(new ControllerRequest { Verb = ControllerVerb.Lookup, ChannelId = id }, ct).ConfigureAwait(false);
            s = TcpSockets.Listen(listen, 1024);
        }
        catch (GlassException e) when (e.ErrorId == GlassErrors.AddressInUse)
        {
            controller.Dispose();
            throw new GlassException(e.ErrorId, $"Cannot listen on {listen}: another listener holds it.", e);
        }
        catch (SocketException e)
        {
            controller.Dispose();
            throw new GlassException("listen-failed", $"Cannot listen on {listen}: {e.Message}. Pick another -LocalPort.", e);
        }
        catch
        {
            controller.Dispose();
            throw;
        }
        var f = new GlassForwarder(s, controller, router, id, secret);
        DescriptorReserve.TryFill();
        if (SocketLoop.IsSupported)
        {
            // Accepted on an event loop, where the connection's dial and pump then stay.
            f._accept = AcceptOperation.Start(s, f);
            f._run = f._accept.Completion;
        }
        else
            f._run = f.AcceptLoop();
        return f;
    }

    // Set from an accept that failed for want of descriptors until the reserve could be filled again.
    private bool _outOfDescriptors;

    void IAcceptTarget.Accepted(Socket client)
    {
        if (_outOfDescriptors && DescriptorReserve.TryFill())
            _outOfDescriptors = false;
        Serve(client, _stop.Token);
    }

    // ENFILE or EMFILE: refuse what waits at once if the reserve freed descriptors; else (and for
    // ENOBUFS, ENOMEM) try again in 100 ms, as .NET's accept loop below does.
    TimeSpan IAcceptTarget.AcceptFailed(int errno) =>
        errno is Interop.Libc.ENFILE or Interop.Libc.EMFILE && OutOfDescriptors() ? TimeSpan.Zero : TimeSpan.FromMilliseconds(100);

    /// <summary>
    /// An accept found no descriptor: the reserve goes back so the waiting connections can be
    /// taken and refused, and the process can still say why; until it can be filled again,
    /// connections are refused. True when the reserve was released (try again at once).
    /// </summary>
    private bool OutOfDescriptors()
    {
        var released = DescriptorReserve.Release();
        if (!_outOfDescriptors)
        {
            _outOfDescriptors = true;
            ConnectionFailed?.Invoke(new GlassException(GlassErrors.OutOfDescriptors,
                TcpSockets.OutOfDescriptors($"Channel {ChannelId} refuses local connections for now")));
        }
        return released;
    }

    // A configured socket: the loop's accept set no Nagle already.
    private void Serve(Socket client, CancellationToken ct)
    {
        if (_outOfDescriptors)
        {
            // Refused with a reset, so the application sees a failure now rather than a hang.
            Interlocked.Increment(ref _failures);
            TcpSockets.Reset(client);
            return;
        }
        _ = ServeAsync(client, ct);
    }

    // .NET's accept, where there is no event loop of ours.
    private async Task AcceptLoop()
    {
        var ct = _stop.Token;
        while (!ct.IsCancellationRequested)
        {
            if (_outOfDescriptors && DescriptorReserve.TryFill())
                _outOfDescriptors = false;
            Socket client;
            try
            {
                client = await _listener.AcceptAsync(ct).ConfigureAwait(false);
            }
            catch (Exception) when (ct.IsCancellationRequested)
            {
                return;
            }
            catch (SocketException e) when (TcpSockets.IsOutOfDescriptors(e))
            {
                if (!OutOfDescriptors())
                {
                    try
                    {
                        await Task.Delay(100, ct).ConfigureAwait(false);
                    }
                    catch (OperationCanceledException)
                    {
                        return;
                    }
                }
                continue;
            }
            catch (SocketException)
            {
                continue;
            }
            Serve(TcpSockets.Configure(client), ct);
        }
    }

    private async Task ServeAsync(Socket client, CancellationToken ct)
    {
        Interlocked.Increment(ref _connections);
        Interlocked.Increment(ref _active);
        var local = client;
        Socket? remote = null;
        IPEndPoint? endpoint = null;
        var failed = false;
        try
        {
            var spare = Interlocked.Exchange(ref _spare, null);
            if (spare is not null && Environment.TickCount64 - spare.RequestedAt >= (long)SpareLifetime.TotalMilliseconds)
            {
                _ = GiveBackAsync(spare);
                spare = null;
            }
            endpoint = spare is null ? await RequestEndpointAsync(ct).ConfigureAwait(false) : await UseSpareAsync(spare, ct).ConfigureAwait(false);
            // The SYN goes first; the next connection's endpoint is asked for on another thread
            // while this one dials (writing that request costs about as much as the dial), so this
            // one is already awaiting its dial, whose loop then starts the pump without a hand-off.
            var dial = spare is null ? null : TryDialAsync(endpoint, SpareDialPatience, ct);
            ThreadPool.UnsafeQueueUserWorkItem(static s => s.Forwarder.PrepareSpare(s.ct), (Forwarder: this, ct), preferLocal: false);
            remote = dial is null ? null : await dial.ConfigureAwait(false);
            if (remote is null)
            {
                if (spare is not null)
                {
                    // The spare's link is gone (a translator that restarted forgets its links, and a
                    // router whose pending time is shorter refuses the dial), or slow: once more, fresh.
                    _ = _controller.CancelAsync((ushort)endpoint.Port);
                    endpoint = await RequestEndpointAsync(ct).ConfigureAwait(false);
                }
                remote = await DialAsync(endpoint, ControllerConnection.ReplyTimeout, ct).ConfigureAwait(false);
            }
            var (sent, received) = await StreamPump.RunAsync(local, remote, ct).ConfigureAwait(false);
            Interlocked.Add(ref _sent, sent);
            Interlocked.Add(ref _received, received);
            Message?.Invoke($"A connection through router endpoint {endpoint} ended: {sent} bytes sent, {received} received.", false);
        }
        catch (Exception e) when (e is GlassException or SocketException or OperationCanceledException or IOException)
        {
            failed = true;
            if (!ct.IsCancellationRequested)
            {
                Interlocked.Increment(ref _failures);
                ConnectionFailed?.Invoke(TcpSockets.IsOutOfDescriptors(e)
                    ? new GlassException(GlassErrors.OutOfDescriptors, TcpSockets.OutOfDescriptors($"A local connection to channel {ChannelId} was reset"), e)
                    : new GlassException(e is GlassException g ? g.ErrorId : "connection-failed",
                        $"A local connection to channel {ChannelId} was reset: {e.Message}", e));
                // Given up before the splice: the link ends now rather than keep the binder's side waiting.
                if (endpoint is not null && remote?.Connected != true)
                    await _controller.CancelAsync((ushort)endpoint.Port).ConfigureAwait(false);
            }
        }
        finally
        {
            // A local application must not take a failure for a peer with nothing to say.
            if (failed)
                TcpSockets.Reset(local);
            else
                local.Dispose();
            remote?.Dispose();
            Interlocked.Decrement(ref _active);
        }
    }

    private async Task<IPEndPoint> RequestEndpointAsync(CancellationToken ct, bool ahead = false)
    {
        var words = await _controller.RequestAsync(new ControllerRequest { Verb = ControllerVerb.Connect, ChannelId = ChannelId, Secret = _secret, Ahead = ahead }, ct).ConfigureAwait(false);
        return ControllerConnection.ParseEndpoint(words, Router);
    }

    private async Task<IPEndPoint> UseSpareAsync(Spare spare, CancellationToken ct)
    {
        try
        {
            return await spare.Endpoint.WaitAsync(ct).ConfigureAwait(false);
        }
        catch (Exception e) when (e is GlassException or SocketException or IOException)
        {
            // Asked for earlier: what the controller says now is what counts.
            return await RequestEndpointAsync(ct).ConfigureAwait(false);
        }
    }

    private static async Task<Socket> DialAsync(IPEndPoint endpoint, TimeSpan patience, CancellationToken ct)
    {
        using var timeout = CancellationTokenSource.CreateLinkedTokenSource(ct);
        timeout.CancelAfter(patience);
        return await TcpSockets.ConnectAsync(endpoint, timeout.Token, inTurn: true).ConfigureAwait(false);
    }

    /// <summary>Null when the dial was refused or took longer than <paramref name="patience"/>.</summary>
    private static async Task<Socket?> TryDialAsync(IPEndPoint endpoint, TimeSpan patience, CancellationToken ct)
    {
        try
        {
            return await DialAsync(endpoint, patience, ct).ConfigureAwait(false);
        }
        catch (Exception e) when (e is SocketException || (e is OperationCanceledException && !ct.IsCancellationRequested))
        {
            return null;
        }
    }

    private void PrepareSpare(CancellationToken ct)
    {
        if (ct.IsCancellationRequested || Volatile.Read(ref _spare) is not null)
            return;
        // Ahead: its binder dials the router now, so this connection's SYN finds the other side waiting.
        var next = new Spare(RequestEndpointAsync(ct, ahead: true), Environment.TickCount64);
        if (Interlocked.CompareExchange(ref _spare, next, null) is not null)
            _ = GiveBackAsync(next); // another connection prepared one first
    }

    /// <summary>
    /// Gives back a spare nobody took within its lifetime, so its router ports are free again. One
    /// timer for the forwarder rather than one per spare: a busy forwarder prepares hundreds a second.
    /// </summary>
    private void ExpireSpare()
    {
        if (Volatile.Read(ref _spare) is { } spare
            && Environment.TickCount64 - spare.RequestedAt >= (long)SpareLifetime.TotalMilliseconds
            && Interlocked.CompareExchange(ref _spare, null, spare) == spare)
            _ = GiveBackAsync(spare);
    }

    /// <summary>Ends a spare's link at the router rather than let it wait out its pending time.</summary>
    private async Task GiveBackAsync(Spare spare)
    {
        try
        {
            var endpoint = await spare.Endpoint.ConfigureAwait(false);
            await _controller.CancelAsync((ushort)endpoint.Port).ConfigureAwait(false);
        }
        catch (Exception)
        {
            // Never answered, or the session is gone: the router ends the link after its pending time.
        }
    }

    public void Stop()
    {
        _stop.Cancel();
        _expiry.Dispose();
        // Off the loop before the descriptor closes, so the loop never accepts on a reused number.
        _accept?.Stop();
        _listener.Dispose();
        if (Interlocked.Exchange(ref _spare, null) is { Endpoint.IsCompletedSuccessfully: true } spare)
            GiveBackAsync(spare).Wait(TimeSpan.FromSeconds(2));
        _controller.Dispose();
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
