using System.Collections.Concurrent;
using System.Net;

namespace Glass.Client;

/// <summary>
/// One controller session per (router, trust, token) for the requests of this process that have
/// no session of their own (Connect-GlassChannel without -LocalPort, an application asking for
/// endpoints in a loop): each request then costs one round trip inside a TLS connection that is
/// already up, instead of a TCP and a TLS handshake. A session unused for
/// <see cref="IdleClose"/> is closed, so an idle process holds no connection to its router.
/// </summary>
internal static class ControllerSessionPool
{
    internal static readonly TimeSpan IdleClose = TimeSpan.FromSeconds(30);

    private sealed class Entry(ControllerSession session)
    {
        public ControllerSession Session { get; } = session;
        public long LastUsed = Environment.TickCount64;
    }

    private static readonly ConcurrentDictionary<string, Entry> s_sessions = new(StringComparer.Ordinal);
    private static readonly Timer s_reaper = new(_ => CloseIdle(), null, Timeout.Infinite, Timeout.Infinite);
    private static int s_reaping;

    /// <summary>The pooled session for these settings; a trust that pinned nothing yet shares the sessions of others like it.</summary>
    public static ControllerSession Get(IPEndPoint router, RouterTrust trust, string? token, TimeSpan patience)
    {
        // A session authenticated the router once, by this trust: only a request that would accept the same key may use it.
        var how = trust.Plaintext ? "plain" : trust.Fingerprint is { } pin ? "pin " + pin : "first-use";
        var key = $"{router}|{how}|{token}|{patience.Ticks}";
        var entry = s_sessions.GetOrAdd(key, _ => new Entry(new ControllerSession(router, token, patience, trust)));
        Interlocked.Exchange(ref entry.LastUsed, Environment.TickCount64);
        if (Interlocked.CompareExchange(ref s_reaping, 1, 0) == 0)
            s_reaper.Change(IdleClose, IdleClose);
        return entry.Session;
    }

    private static void CloseIdle()
    {
        var now = Environment.TickCount64;
        foreach (var (key, entry) in s_sessions)
        {
            if (now - Interlocked.Read(ref entry.LastUsed) >= (long)IdleClose.TotalMilliseconds
                && s_sessions.TryRemove(new KeyValuePair<string, Entry>(key, entry)))
                entry.Session.Dispose();
        }
    }
}
