using System.Net.Sockets;
using Glass.Packets;
using Glass.Protocol;

namespace Glass.Translator;

/// <summary>
/// The controller's side of the translator's control socket: one request at a time on a lazily
/// (re)opened connection, and a watch loop for released links. A translator in this same process
/// answers requests and reports events directly, with the same lines, without the socket.
/// </summary>
public sealed class TranslatorClient : IDisposable
{
    private readonly TimeSpan RequestTimeout;
    private readonly string _path;
    private readonly SemaphoreSlim _lock = new(1, 1);
    private LineConnection? _conn;

    private readonly bool _inProcess;

    /// <param name="path">The translator's control socket.</param>
    /// <param name="inProcess">Ask a translator of this process directly when it listens on <paramref name="path"/>.</param>
    /// <param name="requestTimeout">How long an answer may take; 5 s when null.</param>
    public TranslatorClient(string path, bool inProcess = true, TimeSpan? requestTimeout = null)
    {
        _path = path;
        _inProcess = inProcess;
        RequestTimeout = requestTimeout ?? TimeSpan.FromSeconds(5);
    }

    public string Path => _path;

    private async Task<LineConnection> ConnectAsync(CancellationToken ct)
    {
        var s = new Socket(AddressFamily.Unix, SocketType.Stream, ProtocolType.Unspecified);
        try
        {
            await s.ConnectAsync(new UnixDomainSocketEndPoint(_path), ct).ConfigureAwait(false);
            return new LineConnection(s, 1 << 20);
        }
        catch (SocketException e)
        {
            s.Dispose();
            throw new GlassException(GlassErrors.TranslatorUnavailable,
                $"The translator is not running: nothing answers on its control socket {_path} ({e.SocketErrorCode}). Start it with Start-GlassTranslator -ControlSocket {_path}.", e);
        }
    }

    /// <summary>Sends one request line and returns the answer line.</summary>
    public async Task<string> RequestAsync(string line, CancellationToken ct = default)
    {
        if (_inProcess && ControlServer.TryGetInProcess(_path, out var local))
            return local.Handle(line);
        await _lock.WaitAsync(ct).ConfigureAwait(false);
        try
        {
            // One retry on a fresh connection covers a translator that restarted since the last request.
            for (var attempt = 0; ; attempt++)
            {
                _conn ??= await ConnectAsync(ct).ConfigureAwait(false);
                try
                {
                    await _conn.WriteLineAsync(line, ct).ConfigureAwait(false);
                    return await _conn.ReadLineAsync(RequestTimeout, ct).ConfigureAwait(false)
                        ?? throw new IOException("The translator closed its control connection.");
                }
                catch (Exception e) when (e is IOException or SocketException or ProtocolException)
                {
                    _conn.Dispose();
                    _conn = null;
                    // A translator that is up but slow may still carry the request out (a LINK
                    // would then be made twice): only a connection found dead is tried again.
                    if (attempt > 0 || e is ProtocolException { Code: "timeout" })
                        throw new GlassException(GlassErrors.TranslatorUnavailable, $"The translator on {_path} did not answer: {e.Message}", e);
                }
            }
        }
        finally
        {
            _lock.Release();
        }
    }

    public async Task<LinkResult> LinkAsync(uint peerA, ushort portA, uint peerB, ushort portB, CancellationToken ct = default)
    {
        var answer = await RequestAsync($"LINK {Ipv4.Format(peerA)} {portA} {Ipv4.Format(peerB)} {portB}", ct).ConfigureAwait(false);
        if (answer.StartsWith("OK ", StringComparison.Ordinal) && long.TryParse(answer.AsSpan(3), out var id))
            return LinkResult.Ok(id);
        var f = answer.Split(' ', 3);
        return LinkResult.Fail(f.Length > 1 ? f[1] : GlassErrors.ProtocolError, f.Length > 2 ? f[2] : answer);
    }

    public async Task UnlinkAsync(uint peer, ushort port, CancellationToken ct = default) =>
        await RequestAsync($"UNLINK {Ipv4.Format(peer)} {port}", ct).ConfigureAwait(false);

    /// <summary>The translator's settings (CONFIG); null from a translator that predates CONFIG.</summary>
    public async Task<TranslatorSettings?> GetSettingsAsync(CancellationToken ct = default)
    {
        var answer = await RequestAsync("CONFIG", ct).ConfigureAwait(false);
        if (!answer.StartsWith("OK ", StringComparison.Ordinal))
            return null;
        try
        {
            return System.Text.Json.JsonSerializer.Deserialize<TranslatorSettings>(answer.AsSpan(3));
        }
        catch (System.Text.Json.JsonException e)
        {
            throw new GlassException(GlassErrors.ProtocolError, $"The translator on {_path} answered CONFIG with '{answer}'.", e);
        }
    }

    /// <summary>Returns the JSON of a STATUS or SESSIONS answer.</summary>
    public async Task<string> QueryAsync(string command, CancellationToken ct = default)
    {
        var answer = await RequestAsync(command, ct).ConfigureAwait(false);
        if (!answer.StartsWith("OK ", StringComparison.Ordinal))
            throw new GlassException(GlassErrors.ProtocolError, $"The translator refused {command}: {answer}");
        return answer.Substring(3);
    }

    /// <summary>
    /// Reports every paired and every released link until cancelled, reconnecting (with a short pause) whenever the
    /// translator goes away, so a restarted translator is picked up again.
    /// </summary>
    /// <param name="onWatching">Called each time a watch connection is made (the translator may have restarted).</param>
    /// <param name="onArrived">Called when the first SYN reaches side A of a link (reason <see cref="LinkRelease.ArrivedReason"/>).</param>
    /// <param name="onLost">Called each time a watch connection is lost: events may be missed until the next <paramref name="onWatching"/>.</param>
    public async Task WatchAsync(Action<LinkRelease> onRelease, Action<string>? onProblem, CancellationToken ct, Func<Task>? onWatching = null,
        Action<LinkRelease>? onArrived = null, Action? onLost = null)
    {
        while (!ct.IsCancellationRequested)
        {
            try
            {
                if (_inProcess && ControlServer.TryGetInProcess(_path, out var local))
                {
                    var events = local.Subscribe(out var unsubscribe);
                    try
                    {
                        if (onWatching is not null)
                            await onWatching().ConfigureAwait(false);
                        while (await events.WaitToReadAsync(ct).ConfigureAwait(false))
                        {
                            while (events.TryRead(out var line))
                                Dispatch(line, onRelease, onArrived);
                        }
                    }
                    finally
                    {
                        unsubscribe();
                    }
                }
                else
                {
                    using var conn = await ConnectAsync(ct).ConfigureAwait(false);
                    await conn.WriteLineAsync("WATCH", ct).ConfigureAwait(false);
                    if (await conn.ReadLineAsync(RequestTimeout, ct).ConfigureAwait(false) != "OK")
                        throw new IOException("The translator refused WATCH.");
                    if (onWatching is not null)
                        await onWatching().ConfigureAwait(false);
                    while (await conn.ReadLineAsync(ct).ConfigureAwait(false) is { } line)
                        Dispatch(line, onRelease, onArrived);
                }
            }
            catch (OperationCanceledException) when (ct.IsCancellationRequested)
            {
                return;
            }
            catch (Exception e) when (e is GlassException or IOException or SocketException or ProtocolException)
            {
                onProblem?.Invoke(e.Message);
            }
            onLost?.Invoke();
            try
            {
                await Task.Delay(500, ct).ConfigureAwait(false);
            }
            catch (OperationCanceledException)
            {
                return;
            }
        }
    }

    private static void Dispatch(string line, Action<LinkRelease> onRelease, Action<LinkRelease>? onArrived)
    {
        // ARRIVED a pa b pb id | PAIRED a pa b pb id | RELEASED a pa b pb reason id
        var f = line.Split(' ');
        if (f.Length < 5 || !Ipv4.TryParse(f[1], out var a) || !ushort.TryParse(f[2], out var pa)
            || !Ipv4.TryParse(f[3], out var b) || !ushort.TryParse(f[4], out var pb))
            return;
        var idField = f[0] == "RELEASED" ? 6 : 5;
        var id = f.Length > idField && long.TryParse(f[idField], out var n) ? n : 0;
        switch (f[0])
        {
            case "ARRIVED":
                onArrived?.Invoke(new LinkRelease(a, pa, b, pb, LinkRelease.ArrivedReason, id));
                break;
            case "PAIRED":
                onRelease(new LinkRelease(a, pa, b, pb, LinkRelease.PairedReason, id));
                break;
            case "RELEASED":
                onRelease(new LinkRelease(a, pa, b, pb, f.Length > 5 ? f[5] : "", id));
                break;
        }
    }

    public void Dispose()
    {
        _conn?.Dispose();
        _lock.Dispose();
    }
}
