using System.Net;
using System.Net.Sockets;
using Glass.Protocol;

namespace Glass.Client;

/// <summary>
/// A connector's requests to the controller over one persistent connection (GLASS/1 SESSION):
/// requests are pipelined and their answers come in order, so a request costs one round trip
/// instead of a TCP handshake, a request and a close. The connection is opened when first needed,
/// replaced after it drops or idles, and a controller that does not know SESSION gets a
/// connection per request, as before.
/// </summary>
internal sealed class ControllerSession : IDisposable
{
    // Well below the controller's idle timeout (docs/protocol.md), so the controller never closes
    // a session this side is about to use; a NAT may also forget an idle mapping.
    private static readonly TimeSpan IdleClose = TimeSpan.FromSeconds(30);
    // After the controller refused a session for its limit, ask again this much later.
    private static readonly TimeSpan RetryAfterRefusal = TimeSpan.FromSeconds(10);

    private readonly IPEndPoint _router;
    private readonly RouterTrust _trust;
    private readonly string? _token;
    private readonly TimeSpan _patience;
    private readonly SemaphoreSlim _open = new(1, 1);
    private readonly object _gate = new();
    private Link? _link;
    private bool _unsupported, _disposed;
    private long _retryAt;

    /// <param name="patience">How long to wait for a connection or an answer; <see cref="ControllerConnection.ReplyTimeout"/> when null.</param>
    /// <param name="trust">How the router is authenticated; null: inside TLS, the first key seen pinned for this session's life.</param>
    public ControllerSession(IPEndPoint router, string? token, TimeSpan? patience = null, RouterTrust? trust = null)
    {
        _router = router;
        _trust = trust ?? RouterTrust.FirstUse(router.ToString());
        _token = token;
        _patience = patience ?? ControllerConnection.ReplyTimeout;
    }

    /// <summary>Told once when requests fall back to a connection each.</summary>
    public Action<string>? Notice { get; set; }

    /// <summary>Sends one request (its token is the session's) and returns the words after OK; ERR throws.</summary>
    public async Task<string[]> RequestAsync(ControllerRequest request, CancellationToken ct)
    {
        if (!_unsupported && Environment.TickCount64 >= Interlocked.Read(ref _retryAt))
        {
            // One retry on a fresh connection: the old one may have dropped before our request was read.
            for (var attempt = 0; attempt < 2; attempt++)
            {
                var link = await GetLinkAsync(ct).ConfigureAwait(false);
                if (link is null)
                    break;
                var line = await link.AskAsync(request.Format(), ct).ConfigureAwait(false);
                if (line is not null)
                    return ControllerConnection.ParseAnswer(line, _router);
            }
        }
        using var conn = await ControllerConnection.OpenAsync(_router, _trust, ct, _patience).ConfigureAwait(false);
        await ControllerConnection.SendAsync(conn, (request with { Token = _token }).Format(), _router, ct).ConfigureAwait(false);
        return await ControllerConnection.ReadAnswerAsync(conn, _router, ct, _patience).ConfigureAwait(false);
    }

    /// <summary>
    /// Tells the controller that this side gave up on a router port a CONNECT of the live session
    /// was answered with, so the link ends now and its binder's dial is refused. Best effort: over
    /// another connection the controller would not know the port as this session's, and the link
    /// then ends when its pending time runs out.
    /// </summary>
    public async Task CancelAsync(ushort routerPort)
    {
        if (Volatile.Read(ref _link) is not { IsUsable: true } link)
            return;
        try
        {
            await link.AskAsync(new ControllerRequest { Verb = ControllerVerb.Cancel, Port = routerPort }.Format(), CancellationToken.None).ConfigureAwait(false);
        }
        catch (GlassException)
        {
        }
    }

    /// <summary>The live session, a new one, or null when requests must go one per connection.</summary>
    private async Task<Link?> GetLinkAsync(CancellationToken ct)
    {
        if (Volatile.Read(ref _link) is { IsUsable: true } live)
            return live;
        await _open.WaitAsync(ct).ConfigureAwait(false);
        try
        {
            if (_link is { IsUsable: true } raced)
                return raced;
            _link?.Dispose();
            _link = null;
            var conn = await ControllerConnection.OpenAsync(_router, _trust, ct, _patience).ConfigureAwait(false);
            try
            {
                await ControllerConnection.SendAsync(conn, new ControllerRequest { Verb = ControllerVerb.Session, Token = _token }.Format(), _router, ct).ConfigureAwait(false);
                await ControllerConnection.ReadAnswerAsync(conn, _router, ct, _patience).ConfigureAwait(false);
            }
            catch (GlassException e) when (e.ErrorId is GlassErrors.BadRequest or "version")
            {
                // A controller from before sessions.
                conn.Dispose();
                _unsupported = true;
                Notice?.Invoke($"The controller at {_router} does not keep sessions ({e.Message}); each connection asks it over a connection of its own.");
                return null;
            }
            catch (GlassException e) when (e.ErrorId == GlassErrors.LimitExceeded)
            {
                conn.Dispose();
                Interlocked.Exchange(ref _retryAt, Environment.TickCount64 + (long)RetryAfterRefusal.TotalMilliseconds);
                return null;
            }
            catch
            {
                conn.Dispose();
                throw;
            }
            lock (_gate)
            {
                if (_disposed)
                {
                    conn.Dispose();
                    throw new ObjectDisposedException(nameof(ControllerSession));
                }
                return _link = new Link(conn, _router, _patience);
            }
        }
        finally
        {
            _open.Release();
        }
    }

    public void Dispose()
    {
        lock (_gate)
        {
            _disposed = true;
            _link?.Dispose();
        }
    }

    /// <summary>One session connection: writes requests in order and matches answers to them in order.</summary>
    private sealed class Link : IDisposable
    {
        private readonly LineConnection _conn;
        private readonly IPEndPoint _router;
        private readonly TimeSpan _patience;
        private readonly Queue<TaskCompletionSource<string?>> _waiting = new();
        private readonly CancellationTokenSource _closed = new();
        private long _lastUsed = Environment.TickCount64;
        private bool _dead;

        public Link(LineConnection conn, IPEndPoint router, TimeSpan patience)
        {
            _conn = conn;
            _router = router;
            _patience = patience;
            _ = ReadAnswersAsync();
        }

        /// <summary>Alive, and either busy or not idle so long that the controller might be closing it.</summary>
        public bool IsUsable
        {
            get
            {
                lock (_waiting)
                    return !_dead && (_waiting.Count > 0 || Environment.TickCount64 - _lastUsed < (long)IdleClose.TotalMilliseconds);
            }
        }

        /// <summary>The answer line, or null when the connection was lost before it came.</summary>
        public async Task<string?> AskAsync(string line, CancellationToken ct)
        {
            // The asker goes on on the reading thread (it soon awaits its own connect): one thread
            // pool hop less per connection. The reader dequeues before it answers, so order holds.
            var answer = new TaskCompletionSource<string?>();
            // Queue and write under one lock, so answers and requests keep the same order.
            lock (_waiting)
            {
                if (_dead)
                    return null;
                _waiting.Enqueue(answer);
                _lastUsed = Environment.TickCount64;
                _ = WriteAsync(line);
            }
            try
            {
                return await answer.Task.WaitAsync(_patience, ct).ConfigureAwait(false);
            }
            catch (TimeoutException)
            {
                // A late answer would be taken for the next request's: this connection is done.
                Fail();
                throw new GlassException(GlassErrors.ProtocolError, $"The controller at {_router} did not answer within {_patience.TotalSeconds:0} s.");
            }
            catch (OperationCanceledException)
            {
                // The request went out and its answer comes in its turn: the reader takes it off
                // the queue then, for nobody. The other requests on this connection go on.
                throw;
            }
        }

        private async Task WriteAsync(string line)
        {
            try
            {
                // LineConnection serialises writes in the order they were started.
                await _conn.WriteLineAsync(line, _closed.Token).ConfigureAwait(false);
            }
            catch (Exception e) when (e is SocketException or IOException or ObjectDisposedException or OperationCanceledException)
            {
                Fail();
            }
        }

        private async Task ReadAnswersAsync()
        {
            try
            {
                while (await _conn.ReadLineAsync(_closed.Token).ConfigureAwait(false) is { } line)
                {
                    TaskCompletionSource<string?>? answer;
                    lock (_waiting)
                        _waiting.TryDequeue(out answer);
                    if (answer is null)
                        break; // an answer nobody asked for: the session is confused
                    answer.TrySetResult(line);
                }
            }
            catch (Exception e) when (e is SocketException or IOException or ObjectDisposedException or OperationCanceledException or ProtocolException)
            {
            }
            Fail();
        }

        /// <summary>Ends the connection; requests still waiting learn it with a null answer.</summary>
        private void Fail()
        {
            TaskCompletionSource<string?>[] orphans;
            lock (_waiting)
            {
                if (_dead)
                    return;
                _dead = true;
                orphans = _waiting.ToArray();
                _waiting.Clear();
            }
            // Outside the lock: the askers go on on this thread.
            foreach (var answer in orphans)
                answer.TrySetResult(null);
            _closed.Cancel();
            _conn.Dispose();
        }

        public void Dispose() => Fail();
    }
}
