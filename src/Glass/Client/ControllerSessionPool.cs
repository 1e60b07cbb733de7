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

    // Under a lock, not a concurrent dictionary: the reaper must not close a session between Get
    // finding it and marking it used (the caller would get a closed one). A request's round trip
    // costs far more than the lock.
    private static readonly Dictionary<string, Entry> s_sessions = new(StringComparer.Ordinal);
    private static readonly Timer s_reaper = new(_ => CloseIdle(), null, Timeout.Infinite, Timeout.Infinite);
    private static bool s_reaping;

    /// <summary>The pooled session for these settings; a trust that pinned nothing yet shares the sessions of others like it.</summary>
    public static ControllerSession Get(IPEndPoint router, RouterTrust trust, string? token, TimeSpan patience)
    {
        // A session authenticated the router once, by this trust: only a request that would accept the same key may use it.
        var how = trust.Plaintext ? "plain" : trust.Fingerprint is { } pin ? "pin " + pin : "first-use";
        var key = $"{router}|{how}|{token}|{patience.Ticks}";
        lock (s_sessions)
        {
            if (!s_sessions.TryGetValue(key, out var entry))
                s_sessions[key] = entry = new Entry(new ControllerSession(router, token, patience, trust));
            entry.LastUsed = Environment.TickCount64;
            if (!s_reaping)
            {
                s_reaping = true;
                s_reaper.Change(IdleClose, IdleClose);
            }
            return entry.Session;
        }
    }

    private static void CloseIdle()
    {
        var now = Environment.TickCount64;
        var idle = new List<ControllerSession>();
        lock (s_sessions)
        {
            foreach (var key in s_sessions.Keys.ToList())
            {
                if (now - s_sessions[key].LastUsed >= (long)IdleClose.TotalMilliseconds && s_sessions.Remove(key, out var entry))
                    idle.Add(entry.Session);
            }
        }
        // Closed outside the lock: closing fails any request still waiting on the session.
        foreach (var session in idle)
            session.Dispose();
    }
}
