namespace Glass.Translator;

/// <summary>Limits and timers of the splice engine.</summary>
public sealed record SpliceOptions
{
    /// <summary>How long a link may wait for its two SYNs (and the handshake to finish).</summary>
    public TimeSpan PendingTimeout { get; init; } = TimeSpan.FromSeconds(60);

    /// <summary>How long an established session may stay silent; long, so keepalive-driven SSH survives.</summary>
    public TimeSpan IdleTimeout { get; init; } = TimeSpan.FromHours(2);

    /// <summary>How long the mapping lingers after both FINs were acknowledged (TIME_WAIT-like).</summary>
    public TimeSpan TimeWait { get; init; } = TimeSpan.FromSeconds(30);

    /// <summary>
    /// The largest MSS offered to either side, 0 for no limit beyond the peers' own. The
    /// translator sets it from its interfaces' MTU, so no relayed segment outgrows the router's links.
    /// </summary>
    public ushort MaxSegmentSize { get; init; }

    /// <summary>Most sessions (pending or not) held at once; further links are refused.</summary>
    public int MaxSessions { get; init; } = 65536;
}
