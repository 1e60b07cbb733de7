@{
    Synopsis     = 'Starts the glass controller: the rendezvous service that binders and connectors talk to, which allocates router ports and tells the translator what to splice.'
    Description  = @'
Start-GlassController starts the controller half of a glass router in this PowerShell process
and returns at once with its job (a GlassControllerJob named GlassController-<port>). It listens
on TCP -Address:-Port for the controller protocol (docs/protocol.md) inside TLS 1.3.

The router's key is an ECDSA P-256 key with a self-signed certificate, generated on the first
start into /var/lib/glass/controller-<port>.pem for root, else
$XDG_STATE_HOME/glass/controller-<port>.pem (~/.local/state/glass), readable by its owner only,
and read from there on every later start, so its fingerprint stays the same; with -Port 0 a
key is made for that run only. tls.certificate (and tls.key) in the -ConfigPath file name
another file, or the operator's own certificate and key. Clients pin the key by its
fingerprint (the job's Fingerprint, -Verbose, and Get-GlassRouterStatus show it): hand it to
users with the router's address (New-GlassBinding -RouterFingerprint, Set-GlassClientConfig
-RouterFingerprint). Whoever reads the key file can pose as the router: a key file others may
read is warned about. Plain GLASS/1 and the original design's binary BIND and CONN requests are
served on the same port only when the file sets tls.allowPlaintext: true (with a warning:
they are unauthenticated and readable on the wire); otherwise plain requests are answered
plaintext-refused, except STATUS from loopback, which carries no secret.

New-GlassBinding keeps a control connection to it and gets a channel id. When
Connect-GlassChannel asks for that channel, the controller allocates a router port for each
side from -PortRange, asks the translator over -ControlSocket to link the two (peer address,
router port) pairs, pushes the binder's endpoint to the binder and answers the connector with
its own. Each peer is told only the router's address and its own port, never the other peer's
address.

The translator may run in this process or in another one on the same machine. The controller
starts even when the translator is not there yet; its job then reports the problem as a
warning, and connectors are refused with translator-unavailable until the translator answers.

It changes nothing on the machine but its listening socket (and the metrics port, when asked),
and it needs root only for a port below 1024. Access tokens (access.bindToken,
access.connectToken) and the per-address limits (limits.bindingsPerAddress,
limits.linksPerAddress, limits.connectRatePerAddress) come only from the -ConfigPath file.

Stop it with Stop-GlassController (or Stop-Job, Remove-Job -Force): bindings lose their control connection and
reconnect by themselves when a controller listens again.

Channels outlive the controller: it keeps its registry in a SQLite file (-RegistryPath), so after
a restart the channels that were bound or leased come back as leased, and their binders (which
reconnect by themselves) find them again. A channel id is derived from its binder's secret, so
nobody else can bind it, before or after a restart, while leased or long after. The file holds
no binder secret and connect secrets only as SHA-256 hashes, and is readable by its owner only.

A failure to start is a terminating error: listen-failed (the address and port cannot be
listened on), registry-unavailable (the registry file cannot be opened; a corrupt one is moved
aside with a warning instead), tls-key-unavailable (the key file cannot be read or written),
InvalidGlassConfig (naming the file, line and key), InvalidPortRange or
metrics-unavailable.
'@
    Parameters   = @{
        Port           = 'The TCP port clients reach the controller on, from 0 to 65535; 0 picks a free port (read it from the job''s EndPoint). Default: 7000, or controller.port in the -ConfigPath file.'
        Address        = 'The IPv4 address to listen on, as an address (not a host name). Default: 0.0.0.0 (every address), or controller.address in the -ConfigPath file.'
        ControlSocket  = 'The translator''s Unix control socket. Default: /run/glass/translator.sock, or controlSocket in the -ConfigPath file.'
        PortRange      = 'The router ports to hand out, as FIRST-LAST; it must be the translator''s range. Default: 61000-61999, or portRange in the -ConfigPath file.'
        ConfigPath     = 'A router configuration file in YAML (see about_Glass_Configuration and examples/router.yaml). Every key is optional, and a parameter given on the command line wins over the file. Tokens and limits are read only from here. A wrong file fails with its name, line and key.'
        LeaseTime      = 'Seconds a channel stays reserved to its secret after its binder''s connection dropped without a BYE; meanwhile connectors get binder-unavailable, afterwards unknown-channel. Default: 300, or timeouts.lease in the -ConfigPath file.'
        RegistryPath   = 'The SQLite file the controller keeps its channels in, created owner-only (with its directory) if missing; "memory" keeps them in memory only, lost on restart. Default: controller.registry in the -ConfigPath file, else /var/lib/glass/controller-<port>.db for root and $XDG_STATE_HOME/glass/controller-<port>.db (~/.local/state/glass) for other users; with -Port 0, memory.'
        MetricsPort    = 'Serves Prometheus metrics at http://MetricsAddress:MetricsPort/metrics (from 1 to 65535). A translator and a controller in one process may share the port. Default: no metrics, or metrics.port in the -ConfigPath file.'
        MetricsAddress = 'The IPv4 address (or a host name that resolves to one) the metrics listen on. Default: 127.0.0.1, or metrics.address in the -ConfigPath file.'
        Name           = 'The name of the job. Default: GlassController-<port>.'
    }
    Defaults     = @{
        Port           = '7000 (or controller.port in the -ConfigPath file)'
        Address        = '0.0.0.0 (or controller.address in the -ConfigPath file)'
        ControlSocket  = '/run/glass/translator.sock (or controlSocket in the -ConfigPath file)'
        PortRange      = '61000-61999 (or portRange in the -ConfigPath file)'
        LeaseTime      = '300 (or timeouts.lease in the -ConfigPath file)'
        RegistryPath   = '/var/lib/glass/controller-<port>.db for root, else ~/.local/state/glass/controller-<port>.db; memory with -Port 0 (or controller.registry in the -ConfigPath file)'
        MetricsPort    = 'None: no metrics (or metrics.port in the -ConfigPath file)'
        MetricsAddress = '127.0.0.1 (or metrics.address in the -ConfigPath file)'
        Name           = 'GlassController-<port>'
    }
    Outputs      = @{
        GlassControllerJob = 'The running controller, registered with the job manager (Get-Job, Receive-Job, Stop-Job, Remove-Job). Its properties: EndPoint, Fingerprint (of the router''s key, which clients pin), CertificatePath, AllowPlaintext, ControlSocket, PortRange, Bindings, PortsInUse, Status (bindings, channels, ports in use, connects, refusals by error id), MetricsEndPoint.'
    }
    Examples     = @(
        @{
            Title   = 'Start a controller on port 7000'
            Code    = 'Start-GlassController -Port 7000'
            Remarks = 'Listens on every address; clients name this router as HOST:7000. It reaches the translator at /run/glass/translator.sock.'
        }
        @{
            Title   = 'Start from the router configuration'
            Code    = 'Start-GlassController -ConfigPath /etc/glass/router.yaml -MetricsPort 9464'
            Remarks = 'Takes the address, port, port range, lease time, tokens and limits from the file. With Start-GlassTranslator -MetricsPort 9464 in the same process, both share one metrics endpoint.'
        }
        @{
            Title   = 'A controller on loopback on any free port'
            Code    = @'
$c = Start-GlassController -Port 0 -Address 127.0.0.1
New-GlassBinding -LocalPort 8080 -Router "127.0.0.1:$($c.EndPoint.Port)"
'@
            Remarks = 'Useful to try the client cmdlets on one machine: the job''s EndPoint says which port was picked.'
        }
        @{
            Title   = 'Show what the controller holds'
            Code    = 'Get-Job -Name GlassController-7000 | Select-Object -ExpandProperty Status'
            Remarks = 'Bindings, channels, router ports in use, connects answered and requests refused by error id.'
        }
    )
    RelatedLinks = @('Start-GlassTranslator', 'Start-GlassRouter', 'New-GlassBinding', 'Connect-GlassChannel', 'about_Glass', 'about_Glass_Configuration')
}
