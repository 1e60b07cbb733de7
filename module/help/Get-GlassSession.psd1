@{
    Synopsis     = "Lists the translator's sessions: the peers it splices, their router ports, traffic, age and who carries them."
    Description  = @'
Get-GlassSession asks a running translator (Start-GlassTranslator, in this or another process
on this machine) over its control socket for its sessions, and writes one SessionInfo for each.

A session exists from the moment the controller links two peers until the splice ends. Its
State is Pending (waiting for one or both SYNs), Handshake (both SYNs answered, waiting for the
first ACK), Established, Closing (a FIN was sent) or TimeWait (both FINs acknowledged; the
mapping lingers for late retransmissions). Offloaded (the table's Carrier column: kernel or
translator) says whether a conntrack entry carries the session. For offloaded sessions the
byte counts are estimated from the kernel's IP byte counters, read every two seconds.

The router sees both peers' addresses; this is the one place they are shown. Get-GlassSession
changes nothing. Connecting to the socket needs write permission on it; the translator runs as
root, so usually only root has it.

When no translator answers on the socket it writes a non-terminating error,
translator-unavailable, that names the socket.
'@
    Parameters   = @{
        ControlSocket = 'The Unix control socket of the translator to ask. Default: /run/glass/translator.sock.'
    }
    Outputs      = @{
        SessionInfo = 'One per session: Id, State, PeerA, RouterPortA, PeerB, RouterPortB, PacketsFromA, BytesFromA, PacketsFromB, BytesFromB, AgeMilliseconds, IdleMilliseconds, Offloaded.'
    }
    Examples     = @(
        @{
            Title   = 'List the sessions'
            Code    = 'Get-GlassSession'
            Remarks = 'A table of the sessions of the translator at /run/glass/translator.sock, with bytes each way, age and idle time in seconds, and Carrier.'
        }
        @{
            Title   = 'Count sessions by state'
            Code    = 'Get-GlassSession | Group-Object State -NoElement'
            Remarks = 'E.g. how many links still wait for their peers'' SYNs.'
        }
        @{
            Title   = 'The busiest sessions of a translator on another socket'
            Code    = @'
Get-GlassSession -ControlSocket /run/glass/queue7.sock |
    Sort-Object { $_.BytesFromA + $_.BytesFromB } -Descending |
    Select-Object -First 5 Id, PeerA, PeerB, BytesFromA, BytesFromB, Offloaded
'@
            Remarks = 'For a translator started with -ControlSocket /run/glass/queue7.sock.'
        }
    )
    RelatedLinks = @('Get-GlassTranslatorStatus', 'Start-GlassTranslator', 'about_Glass')
}
