using System.Net;
using System.Net.Sockets;

namespace Glass.Client;

/// <summary>
/// Listens on a local port and forwards every local connection to a channel, each through its own
/// freshly requested router endpoint.
/// </summary>
public sealed class GlassForwarder : IDisposable
{
    private readonly Socket _listener;
    private readonly CancellationTokenSource _stop = new();
    private long _connections, _active, _sent, _received, _failures;
    private Task? _run;

    private readonly string? _secret, _token;

    private GlassForwarder(Socket listener, IPEndPoint router, string channelId, string? secret, string? token)
    {
        _listener = listener;
        Router = router;
        ChannelId = channelId;
        _secret = secret;
        _token = token;
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
        string? secret = null, string? token = null, CancellationToken ct = default)
    {
        var id = await ControllerConnection.LookupAsync(router, channelId, token, ct).ConfigureAwait(false);
        Socket s;
        try
        {
            s = TcpSockets.Listen(listen, 1024);
        }
        catch (SocketException e)
        {
            throw new GlassException("listen-failed", $"Cannot listen on {listen}: {e.Message}. Pick another -LocalPort.", e);
        }
        var f = new GlassForwarder(s, router, id, secret, token);
        f._run = f.AcceptLoop();
        return f;
    }

    private async Task AcceptLoop()
    {
        var ct = _stop.Token;
        while (!ct.IsCancellationRequested)
        {
            Socket client;
            try
            {
                client = await _listener.AcceptAsync(ct).ConfigureAwait(false);
            }
            catch (Exception) when (ct.IsCancellationRequested)
            {
                return;
            }
            catch (SocketException)
            {
                continue;
            }
            _ = ServeAsync(TcpSockets.Configure(client), ct);
        }
    }

    private async Task ServeAsync(Socket client, CancellationToken ct)
    {
        Interlocked.Increment(ref _connections);
        Interlocked.Increment(ref _active);
        var local = client;
        using var remote = TcpSockets.Create(Router.AddressFamily);
        var failed = false;
        try
        {
            var endpoint = await ControllerConnection.RequestEndpointAsync(Router, ChannelId, _secret, _token, ct).ConfigureAwait(false);
            using (var timeout = CancellationTokenSource.CreateLinkedTokenSource(ct))
            {
                timeout.CancelAfter(ControllerConnection.ReplyTimeout);
                await remote.ConnectAsync(endpoint, timeout.Token).ConfigureAwait(false);
            }
            Message?.Invoke($"Connection {Connections} to channel {ChannelId}: relaying local {client.RemoteEndPoint} through {endpoint}.", false);
            var (sent, received) = await StreamPump.RunAsync(local, remote, ct).ConfigureAwait(false);
            Interlocked.Add(ref _sent, sent);
            Interlocked.Add(ref _received, received);
        }
        catch (Exception e) when (e is GlassException or SocketException or OperationCanceledException or IOException)
        {
            failed = true;
            if (!ct.IsCancellationRequested)
            {
                Interlocked.Increment(ref _failures);
                ConnectionFailed?.Invoke(new GlassException(e is GlassException g ? g.ErrorId : "connection-failed",
                    $"A local connection to channel {ChannelId} was reset: {e.Message}", e));
            }
        }
        finally
        {
            // A local application must not take a failure for a peer with nothing to say.
            if (failed)
                TcpSockets.Reset(local);
            else
                local.Dispose();
            Interlocked.Decrement(ref _active);
        }
    }

    public void Stop()
    {
        _stop.Cancel();
        _listener.Dispose();
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
