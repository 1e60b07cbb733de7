namespace Glass.Translator;

/// <summary>Limits and timers of the splice engine.</summary>
/// <remarks>
/// The translator is a NAT for TCP in RFC 5382's sense, so its timers follow REQ-5 there: an
/// established session may not be dropped for being idle in less than 2 hours 4 minutes (Linux
/// sends its first keepalive after 2 hours, and a NAT that forgets the flow just before that
/// breaks every keepalive-driven connection), and a session in its partially open or closing
/// phases ("transitory") not in less than 4 minutes. A link that has seen no SYN yet is not a
/// connection; it keeps the controller's shorter wait.
/// </remarks>
public sealed record SpliceOptions
{
    /// <summary>RFC 5382 REQ-5: the least "established connection idle-timeout", 2 h 4 min.</summary>
    public static readonly TimeSpan Rfc5382EstablishedIdle = TimeSpan.FromMinutes(124);

    /// <summary>RFC 5382 REQ-5: the least "transitory connection idle-timeout", 4 min.</summary>
    public static readonly TimeSpan Rfc5382Transitory = TimeSpan.FromMinutes(4);

    /// <summary>How long a link may wait for its SYNs before any SYN-ACK went out.</summary>
    public TimeSpan PendingTimeout { get; init; } = TimeSpan.FromSeconds(60);

    /// <summary>
    /// How long a handshake (SYN-ACKs sent, not both acknowledged) may last, and how long a session
    /// lingers after a reset that was in the window but not exact (unless traffic shows it alive).
    /// Transitory phases: at least 4 minutes by RFC 5382 REQ-5.
    /// </summary>
    public TimeSpan TransitoryTimeout { get; init; } = Rfc5382Transitory;

    /// <summary>
    /// How long an established (or half-closed) session may stay silent: 2 h 4 min, RFC 5382 REQ-5's
    /// least, so that connections kept by TCP keepalives (first probe after 2 h) survive.
    /// </summary>
    public TimeSpan IdleTimeout { get; init; } = Rfc5382EstablishedIdle;

    /// <summary>
    /// How long the mapping lingers, silent, after both FINs were acknowledged (TIME_WAIT-like; a
    /// closing phase, so 4 min by RFC 5382 REQ-5). Data after it brings the session back.
    /// </summary>
    public TimeSpan TimeWait { get; init; } = Rfc5382Transitory;

    /// <summary>
    /// The largest MSS offered to either side, 0 for no limit beyond the peers' own. The
    /// translator sets it from its interfaces' MTU, so no relayed segment outgrows the router's links.
    /// </summary>
    public ushort MaxSegmentSize { get; init; }

    /// <summary>
    /// Most sessions (pending or not) held at once; further links are refused, after the oldest
    /// session lingering in TIME_WAIT has given way.
    /// </summary>
    public int MaxSessions { get; init; } = 65536;
}
