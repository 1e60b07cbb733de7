@{
    Synopsis     = "Starts the glass translator: takes the router's port range from the kernel through NFQUEUE and splices the TCP connections the controller links."
    Description  = @'
Start-GlassTranslator starts the packet-level half of a glass router in this PowerShell process
and returns at once with its job (a GlassTranslatorJob named GlassTranslator-<queue>). The
translator binds an NFQUEUE queue that receives the TCP segments sent to the router's port
range. When the controller (Start-GlassController) links peer A at router port p0 with peer B at
p1 and both SYNs have arrived, it answers each peer with a crafted SYN-ACK that carries the other
peer's initial sequence number, so the two connections become one spliced connection. With
-Offload Kernel (the default) it then hands each established session to the kernel as a
conntrack entry with SNAT and DNAT, and the kernel carries the flow; with -Offload None it
relays every segment itself. It buffers nothing either way.

It needs root (CAP_NET_ADMIN and CAP_NET_RAW). While it runs it changes the machine, and puts
everything back when its job stops:

- iptables rules, each tagged with the comment glass-translator-<queue>, that send the port
  range (and ICMP "fragmentation needed") to the queue; -SkipFirewall leaves them to you.
- With offload: net.netfilter.nf_conntrack_acct=1 and net.ipv4.ip_forward=1 (forwarding nothing
  but its own flows, by a FORWARD rule, when it had been off), and a rule that drops outgoing
  ICMP redirects, which would name one peer to the other.
- A tun device glass<queue> through which relayed packets go back to the kernel, with
  forwarding=1, accept_local=1 and rp_filter=0 for that device only and two rules of its own.
  Where it cannot be used (no /dev/net/tun, or net.ipv4.conf.all.rp_filter set) the translator
  falls back to a raw socket and says why in the job's SendPath.
- The control socket (-ControlSocket) over which the controller tells it which peers to
  splice, and beside it the same path plus .dgram for the original design's LINK datagrams.

Stop it with Stop-GlassTranslator (or Stop-Job, Remove-Job -Force). The translator also cleans up when pwsh exits or
receives SIGTERM or SIGHUP. Stopping removes the conntrack entries of the sessions the kernel
carries, which resets them, unless -KeepSessions is given.

Values not given as parameters come from the file named by -ConfigPath, then from the
defaults. It warns (also under -WhatIf) when the router's port range overlaps the kernel's
ephemeral port range (/proc/sys/net/ipv4/ip_local_port_range), because this host's own outgoing
connections could then be swallowed by the queue. It also warns when kernel offload is
unavailable and it falls back to -Offload None, when net.netfilter.nf_conntrack_max is below
-MaxSessions, and when it adopted sessions an earlier translator left.

A failure to start is a terminating error: InvalidGlassConfig (naming the file, line and key),
InvalidPortRange, KernelOperationFailed (not root, or the queue already bound by another
process), metrics-unavailable (the metrics port cannot be served), or an error that names
iptables when it is not installed. Nothing is left changed after a failed start.
'@
    Parameters   = @{
        Queue          = 'The NFQUEUE queue number to bind (iptables -j NFQUEUE --queue-num). One translator per queue; the job is named after it. Default: 6, or queue in the -ConfigPath file.'
        PortRange      = @'
The router ports peers are told to dial, as FIRST-LAST (e.g. 61000-61999). It must be the
controller's range too. Keep it outside the kernel's ephemeral port range. Default:
61000-61999, or portRange in the -ConfigPath file.
'@
        ControlSocket  = 'The Unix socket the controller connects to. Its directory is created when needed. Default: /run/glass/translator.sock, or controlSocket in the -ConfigPath file.'
        ConfigPath     = 'A router configuration file in YAML (see about_Glass_Configuration and examples/router.yaml). Every key is optional, and a parameter given on the command line wins over the file. A wrong file fails with its name, line and key.'
        PendingTimeout = 'Seconds a link may wait for both peers'' SYNs and for the handshake to finish; then it ends as "unpaired". Default: 60, or timeouts.pending in the -ConfigPath file.'
        IdleTimeout    = 'Seconds an established session may stay silent before the translator ends it. Default: 7440 (two hours and four minutes, RFC 5382), or timeouts.idle in the -ConfigPath file.'
        MaxSessions    = 'The most sessions (pending or live) held at once, from 1 to 1000000; it bounds the translator''s memory (about 0.6 KiB of managed heap per session, up to 2 KiB of process memory). Links beyond it are refused and the connector gets router-full. Default: 65536, or limits.sessions in the -ConfigPath file.'
        Offload        = 'Who carries established sessions. Kernel: after the handshake each session becomes a conntrack entry with SNAT and DNAT, so only handshakes reach the queue (falls back to None, with a warning, where the kernel lacks ctnetlink or NAT). None: the translator relays every segment itself. Default: Kernel, or offload in the -ConfigPath file.'
        KeepSessions   = 'On stop, leave the sessions the kernel carries running, with the rules and settings they need, so that the next translator on the same queue adopts them and a restart cuts no connection. Default: off, or keepSessions in the -ConfigPath file.'
        SkipFirewall   = 'Adds no iptables rules (neither the queue''s nor the tun device''s) and does not touch net.netfilter.nf_conntrack_acct or net.ipv4.ip_forward: that is left to you, and with offload a warning lists the rules to add. The tun device''s own settings are still made.'
        MetricsPort    = 'Serves Prometheus metrics at http://MetricsAddress:MetricsPort/metrics (from 1 to 65535). A translator and a controller in one process may share the port. Default: no metrics, or metrics.port in the -ConfigPath file.'
        MetricsAddress = 'The IPv4 address (or a host name that resolves to one) the metrics listen on. Default: 127.0.0.1, or metrics.address in the -ConfigPath file.'
        Name           = 'The name of the job. Default: GlassTranslator-<queue>.'
        WhatIf         = 'Shows the iptables rule it would add and starts nothing. The warning about an overlapping ephemeral port range still shows.'
        FailOpen = 'While no translator listens (it crashed or is restarting), the router''s own TCP stack answers the relay range with resets instead of the queue dropping its packets: applications learn at once, but a connect made during a restart is refused rather than delayed (NFQUEUE --queue-bypass). Offloaded sessions carry on in the kernel either way. Default: failOpen in the YAML, else off.'
    }
    Defaults     = @{
        Queue          = '6 (or queue in the -ConfigPath file)'
        PortRange      = '61000-61999 (or portRange in the -ConfigPath file)'
        ControlSocket  = '/run/glass/translator.sock (or controlSocket in the -ConfigPath file)'
        PendingTimeout = '60 (or timeouts.pending in the -ConfigPath file)'
        IdleTimeout    = '7440 (or timeouts.idle in the -ConfigPath file)'
        MaxSessions    = '65536 (or limits.sessions in the -ConfigPath file)'
        Offload        = 'Kernel (or offload in the -ConfigPath file)'
        MetricsPort    = 'None: no metrics (or metrics.port in the -ConfigPath file)'
        MetricsAddress = '127.0.0.1 (or metrics.address in the -ConfigPath file)'
        Name           = 'GlassTranslator-<queue>'
    }
    Outputs      = @{
        GlassTranslatorJob = 'The running translator, registered with the job manager (Get-Job, Receive-Job, Stop-Job, Remove-Job). Its properties: Queue, PortRange, ControlSocket, PacketsRelayed, Sessions, Counters, SendPath, InternalErrors, RawSendErrors, MetricsEndPoint, DroppedRecords.'
    }
    Examples     = @(
        @{
            Title   = 'Start a translator on queue 6'
            Code    = 'Start-GlassTranslator -Queue 6'
            Remarks = 'As root on the router: relays router ports 61000-61999 and serves /run/glass/translator.sock, where Start-GlassController finds it by default. Established sessions are handed to the kernel.'
        }
        @{
            Title   = 'Start from the router configuration, with metrics'
            Code    = 'Start-GlassTranslator -ConfigPath ./examples/router.yaml -MetricsPort 9464'
            Remarks = 'Takes the queue, port range, timers and limits from the file; the parameter wins over the file''s metrics.port. Prometheus scrapes http://127.0.0.1:9464/metrics.'
        }
        @{
            Title   = 'See what would change, without offload'
            Code    = 'Start-GlassTranslator -Queue 7 -PortRange 62000-62999 -Offload None -WhatIf'
            Remarks = 'Prints the iptables rule it would add and starts nothing.'
        }
        @{
            Title   = 'Watch a translator and stop it'
            Code    = @'
$t = Start-GlassTranslator -Queue 6
$t | Format-List Name, State, PortRange, Sessions, PacketsRelayed, SendPath
Receive-Job -Job $t -Verbose
Remove-Job -Job $t -Force
'@
            Remarks = 'Receive-Job shows what the translator reported. Remove-Job -Force stops it, removes its rules, settings and socket, and resets the sessions the kernel carried.'
        }
        @{
            Title   = 'Restart without cutting connections'
            Code    = @'
Get-Job -Name GlassTranslator-6 | Remove-Job -Force
Start-GlassTranslator -Queue 6 -KeepSessions
'@
            Remarks = 'A translator started with -KeepSessions leaves its offloaded sessions running when it stops; the next translator on queue 6 adopts them and warns how many it adopted.'
        }
    )
    Notes        = 'Run one translator per queue and per port range. The translator and the controller may run in one process (Start-GlassRouter) or in two processes on the same machine, sharing the control socket.'
    RelatedLinks = @('Start-GlassController', 'Start-GlassRouter', 'Get-GlassSession', 'Get-GlassTranslatorStatus', 'about_Glass', 'about_Glass_Configuration')
}
