using System.Net;
using System.Net.Sockets;
using Glass.Protocol;

namespace Glass.Client;

/// <summary>
/// Exposes a local TCP server on a fresh channel id: keeps the control connection to the
/// controller, and for each pushed "CONNECT router port" dials that router endpoint and the local
/// server and copies bytes both ways.
/// </summary>
public sealed class GlassBinding : IDisposable
{
    private static readonly TimeSpan HeartbeatInterval = TimeSpan.FromSeconds(15);
    private readonly LineConnection _control;
    private readonly CancellationTokenSource _stop = new();
    private long _connections, _active, _toLocal, _fromLocal, _failures;
    private Task? _run;

    private GlassBinding(LineConnection control, string channelId, IPEndPoint router, IPEndPoint localTarget)
    {
        _control = control;
        ChannelId = channelId;
        Router = router;
        LocalTarget = localTarget;
    }

    public string ChannelId { get; }
    public IPEndPoint Router { get; }
    public IPEndPoint LocalTarget { get; }
    public long Connections => Interlocked.Read(ref _connections);
    public long ActiveConnections => Interlocked.Read(ref _active);
    public long BytesToLocal => Interlocked.Read(ref _toLocal);
    public long BytesFromLocal => Interlocked.Read(ref _fromLocal);
    public long Failures => Interlocked.Read(ref _failures);

    /// <summary>What happened, for the job's verbose and warning streams. Handlers must be quick.</summary>
    public event Action<string, bool>? Message;

    /// <summary>Ends when the binding stops: normally after Stop, faulted when the controller connection is lost.</summary>
    public Task Completion => _run ?? Task.CompletedTask;

    public static async Task<GlassBinding> StartAsync(IPEndPoint router, IPEndPoint localTarget, CancellationToken ct = default)
    {
        var conn = await ControllerConnection.OpenAsync(router, ct).ConfigureAwait(false);
        try
        {
            await conn.WriteLineAsync("GLASS/1 BIND", ct).ConfigureAwait(false);
            var words = await ControllerConnection.ReadAnswerAsync(conn, router, ct).ConfigureAwait(false);
            if (words.Length != 1 || !Controller.ChannelId.TryNormalize(words[0], out var id))
                throw new GlassException(GlassErrors.ProtocolError, $"The controller at {router} answered BIND with '{string.Join(' ', words)}'.");
            var binding = new GlassBinding(conn, id, router, localTarget);
            binding._run = binding.RunAsync();
            return binding;
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
        var heartbeat = HeartbeatAsync(ct);
        try
        {
            while (await _control.ReadLineAsync(ct).ConfigureAwait(false) is { } line)
            {
                var f = line.Split(' ');
                if (f.Length == 3 && f[0] == "CONNECT" && IPAddress.TryParse(f[1], out var addr) && ushort.TryParse(f[2], out var port))
                    _ = ServeAsync(new IPEndPoint(addr, port), ct);
                else if (line != "PONG")
                    Message?.Invoke($"Ignored an unexpected line from the controller: '{line}'.", true);
            }
            if (!ct.IsCancellationRequested)
                throw new GlassException(GlassErrors.RouterUnreachable, $"The controller at {Router} closed the control connection of channel {ChannelId}.");
        }
        catch (Exception e) when (ct.IsCancellationRequested && e is OperationCanceledException or SocketException or ObjectDisposedException or IOException)
        {
        }
        catch (Exception e) when (e is SocketException or IOException or ProtocolException)
        {
            throw new GlassException(GlassErrors.RouterUnreachable, $"The control connection of channel {ChannelId} to {Router} was lost: {e.Message}", e);
        }
        finally
        {
            _stop.Cancel();
            await heartbeat.ConfigureAwait(false);
        }
    }

    private async Task HeartbeatAsync(CancellationToken ct)
    {
        try
        {
            while (true)
            {
                await Task.Delay(HeartbeatInterval, ct).ConfigureAwait(false);
                await _control.WriteLineAsync("PING", ct).ConfigureAwait(false);
            }
        }
        catch (Exception e) when (e is OperationCanceledException or SocketException or IOException or ObjectDisposedException)
        {
            // The read loop notices a dead connection and reports it.
        }
    }

    private async Task ServeAsync(IPEndPoint routerEndpoint, CancellationToken ct)
    {
        Interlocked.Increment(ref _connections);
        Interlocked.Increment(ref _active);
        using var remote = new Socket(AddressFamily.InterNetwork, SocketType.Stream, ProtocolType.Tcp) { NoDelay = true };
        using var local = new Socket(LocalTarget.AddressFamily, SocketType.Stream, ProtocolType.Tcp) { NoDelay = true };
        try
        {
            using (var timeout = CancellationTokenSource.CreateLinkedTokenSource(ct))
            {
                timeout.CancelAfter(ControllerConnection.ReplyTimeout);
                await Task.WhenAll(
                    remote.ConnectAsync(routerEndpoint, timeout.Token).AsTask(),
                    local.ConnectAsync(LocalTarget, timeout.Token).AsTask()).ConfigureAwait(false);
            }
            Message?.Invoke($"Connection {Connections} of channel {ChannelId}: relaying {routerEndpoint} to local {LocalTarget}.", false);
            var (toLocal, fromLocal) = await StreamPump.RunAsync(remote, local, ct).ConfigureAwait(false);
            Interlocked.Add(ref _toLocal, toLocal);
            Interlocked.Add(ref _fromLocal, fromLocal);
        }
        catch (Exception e) when (e is SocketException or OperationCanceledException or IOException)
        {
            if (!ct.IsCancellationRequested)
            {
                Interlocked.Increment(ref _failures);
                var which = local.Connected ? $"the router endpoint {routerEndpoint}" : $"the local server {LocalTarget}";
                Message?.Invoke($"A connection to channel {ChannelId} failed: {which} could not be reached ({e.Message}).", true);
            }
        }
        finally
        {
            Interlocked.Decrement(ref _active);
        }
    }

    public void Stop()
    {
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
