@{
    Synopsis     = "Reads the translator's counters: packets and bytes relayed, drops by reason, sessions by state, offloads."
    Description  = @'
Get-GlassTranslatorStatus asks a running translator (Start-GlassTranslator, in this or another
process on this machine) over its control socket for its counters, and writes them as one
SpliceCounters object:

- PacketsRelayed, BytesRelayed: segments the translator relayed itself (with offload, only
  those before the hand-off to the kernel).
- SynAcksSent, IcmpRelayed: crafted SYN-ACKs, and ICMP "fragmentation needed" errors carried
  across the splice.
- SessionsCreated, SessionsReleased, SessionsActive, SessionsPending, SessionsByState.
- Drops: queued packets not relayed, by reason (Malformed, BadChecksum, Fragment, NoSession,
  NotLinked, WaitingForPeer, HandshakeIncomplete, EndpointBusy, RstOutOfWindow, IcmpUnhandled,
  SendFailed, Truncated). WaitingForPeer is a SYN held until the other side's SYN arrives, not
  an error.
- SessionsOffloaded, OffloadedTotal, OffloadFailures, LastOffloadErrno, SessionsAdopted: what the
  kernel carries, has carried, refused (its errno) and what was taken over from an earlier
  translator.

The same counters are the translator job's Counters property in the process that runs it, and
its Prometheus metrics (-MetricsPort). Get-GlassTranslatorStatus changes nothing. Connecting to
the socket needs write permission on it; the translator runs as root, so usually only root has
it. When no translator answers on the socket it writes a non-terminating error,
translator-unavailable, that names the socket.
'@
    Parameters   = @{
        ControlSocket = 'The Unix control socket of the translator to ask. Default: /run/glass/translator.sock.'
    }
    Outputs      = @{
        SpliceCounters = 'The translator''s counters at the moment it answered.'
    }
    Examples     = @(
        @{
            Title   = 'Show the counters'
            Code    = 'Get-GlassTranslatorStatus'
            Remarks = 'Asks the translator at /run/glass/translator.sock.'
        }
        @{
            Title   = 'Why packets were dropped'
            Code    = '(Get-GlassTranslatorStatus).Drops'
            Remarks = 'The drop counts by reason; NotLinked counts SYNs to router ports no link names.'
        }
        @{
            Title   = 'Check the kernel offload'
            Code    = 'Get-GlassTranslatorStatus -ControlSocket /run/glass/translator.sock | Format-List SessionsActive, SessionsOffloaded, OffloadedTotal, OffloadFailures, LastOffloadErrno'
            Remarks = 'OffloadFailures above zero with a LastOffloadErrno says the kernel refused entries, e.g. because net.netfilter.nf_conntrack_max was reached.'
        }
    )
    RelatedLinks = @('Get-GlassSession', 'Start-GlassTranslator', 'about_Glass')
}
