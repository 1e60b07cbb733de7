@{
    Synopsis     = 'Exposes a local TCP server on a glass channel: gets a channel id from the router and serves the connections made to it in the background.'
    Description  = @'
New-GlassBinding connects to the glass controller, binds a channel (a fresh id, or -ChannelId)
and returns once the router has assigned the id, with the binding's job (a GlassBindingJob
named GlassBinding-<first 8 characters of the id>). Hand the ChannelId to whoever should
connect (Connect-GlassChannel).

The binding keeps a control connection to the controller. For each connector the router pushes
an endpoint of its own; the binding dials that router endpoint and -LocalAddress:-LocalPort and
copies bytes both ways on the module's own event loop and, once a direction has carried 1 MiB,
with splice(2) in the kernel. The local server sees connections from this machine; neither
this machine nor the connector learns the other's address. Neither side needs an open port:
both only dial out, so both may sit behind NATs.

The binding sends PING every 5 seconds. When its control connection drops or stays silent for
15 seconds, it reconnects by itself (waiting from 0.25 up to 10 seconds between attempts) and
binds the same id again with its secret; its job's ControlState says Connected or
Reconnecting, and Reconnects counts the reconnections. Connections that fail (the local server
or the router endpoint could not be reached) are counted in Failures and reported as warnings
on the job (Receive-Job).

It changes one thing on the machine: the channel's secret is saved in
$XDG_DATA_HOME/glass/channels/<id> (by default ~/.local/share/glass/channels), readable by
this user only, so that New-GlassBinding -ChannelId can bind the same id again later. It needs
no root.

The router is -Router, else $env:GLASS_ROUTER, else the router saved with
Set-GlassClientConfig; with none of them the cmdlet stops with router-missing.

The controller protocol runs inside TLS, and the router is known by the fingerprint of its key
(sha256: and 64 hex characters; Start-GlassController and Get-GlassRouterStatus show it on the
router). The key must match -RouterFingerprint, else the pin for this router in the client
config (Set-GlassClientConfig -RouterFingerprint). With neither, the first key seen is trusted
and pinned in the client config, with a warning that names it (trust on first use; a router on
loopback, this very host, is trusted without being pinned). A router that presents another
key is refused with the terminating error router-fingerprint-mismatch, which names both
fingerprints and how to pin the new one if the key was replaced on purpose: nothing (token,
secret, channel id) has been sent to it. -Plaintext speaks plain GLASS/1 instead, for a router
whose config allows it (tls.allowPlaintext): unauthenticated and readable by anyone on the path;
a router that does not allow it answers plaintext-refused.

A client config file that cannot be read stops it with InvalidGlassConfig. A bind the router refuses or that
fails is a non-terminating error, so -ErrorAction decides, with the router's error id:
router-unreachable, unauthorized (a wrong token, or a wrong secret for -ChannelId),
channel-in-use (the id's binder is still connected), limit-exceeded (too many bindings from
this public address), plaintext-refused, bad-request (a malformed -Router) or protocol-error
(also a TLS handshake that failed: an older router that speaks only plain GLASS/1, or a refused
connection). A binding whose router later presents another key stops for good. Ctrl+C stops the
wait for a silent router.

Stop a binding with Remove-GlassBinding, Stop-Job or Remove-Job -Force: it says BYE, and the
router forgets the channel at once.
'@
    Parameters   = @{
        LocalPort     = 'The port of the local TCP server to expose, from 1 to 65535. Required. The server need not listen yet: connections made while it does not fail and are counted.'
        LocalAddress  = 'The address of the server to expose, as an IPv4 address or a host name that resolves to one. It may be another machine this one reaches. Default: 127.0.0.1.'
        Router        = 'The glass controller, as HOST:PORT or HOST (port 7000). Default: $env:GLASS_ROUTER, else the router saved with Set-GlassClientConfig.'
        ChannelId     = 'A channel id (32 hexadecimal characters) to bind instead of a fresh one. An id this user bound before is reclaimed with its saved secret, also while the router still reserves it after a dropped connection; an id never bound here is claimed with a new secret when it is free. Default: a fresh id from the router.'
        ConnectSecret = 'A SecureString or a plain string (an argument transformation takes both, e.g. -ConnectSecret (Get-Secret GlassSecret)); a job''s Command shows it masked. A secret connectors must present (Connect-GlassChannel -Secret), 1 to 64 printable characters without spaces or "="; others get unauthorized. Default: the secret saved with Set-GlassClientConfig; with none, anyone who knows the id may connect.'
        Token         = 'A SecureString or a plain string. The router''s bind token, where its configuration sets access.bindToken (1 to 64 printable characters). Default: the token saved with Set-GlassClientConfig.'
        RouterFingerprint = 'The fingerprint the router''s key must have: sha256: and 64 hex characters (colons between bytes and upper case are accepted), as Start-GlassController and Get-GlassRouterStatus show it on the router. Another key is refused with router-fingerprint-mismatch. Default: the pin for this router in the client config, else trust on first use (pinned there with a warning).'
        Plaintext = 'Speaks plain GLASS/1 instead of TLS, to a router whose config sets tls.allowPlaintext: true. Unauthenticated: anyone on the path reads the token, the secrets and the channel id, and may pose as the router. Default: TLS (or plaintext: true in the client config).'
        Name          = 'The name of the job. Default: GlassBinding-<first 8 characters of the channel id>.'
        TimeoutSec = 'Seconds to wait for the router to answer, each time it is asked (connecting, and the answer to BIND); running out is router-unreachable naming -TimeoutSec. A progress bar shows a long wait. Default: 10.'
        Wait = 'Serves in the foreground until Ctrl+C or SIGTERM, writing what happens (each connection''s end and bytes, reconnections) as it comes, then unbinds and removes the job: the form for a systemd unit. Add -InformationAction Continue to see the information records.'
    }
    Defaults     = @{
        Router        = '$env:GLASS_ROUTER, else the client config''s router'
        ChannelId     = 'None: a fresh id'
        ConnectSecret = 'The client config''s secret'
        Token         = 'The client config''s token'
        RouterFingerprint = 'The client config''s pin for this router, else trust on first use'
        Name          = 'GlassBinding-<first 8 characters of the channel id>'
    }
    Outputs      = @{
        GlassBindingJob = 'The running binding, registered with the job manager. Its properties: ChannelId, ControlState, Reconnects, Router, LocalTarget, Connections, ActiveConnections, BytesToLocal, BytesFromLocal, Failures. Get-GlassBinding shows the same as a table.'
    }
    Examples     = @(
        @{
            Title   = 'Expose a local server and show its channel id'
            Code    = 'New-GlassBinding -LocalPort 1234 | Select ChannelId'
            Remarks = 'Behind NAT B: the server on 127.0.0.1:1234 is now reachable as that channel id, through the router saved with Set-GlassClientConfig.'
        }
        @{
            Title   = 'Expose an SSH server with a connect secret'
            Code    = 'New-GlassBinding -LocalPort 22 -Router router.example:7000 -ConnectSecret correct-horse-battery'
            Remarks = 'Connectors must give Connect-GlassChannel -Secret correct-horse-battery.'
        }
        @{
            Title   = 'Bind the same channel id again'
            Code    = 'New-GlassBinding -LocalPort 1234 -ChannelId 184d21cf0e6a4b2f9c3d5e7f8a9b0c1d'
            Remarks = 'After a restart: the secret saved when this user first bound the id reclaims it, so connectors keep using the id they know.'
        }
        @{
            Title   = 'Expose a server on another machine of the LAN, and watch the binding'
            Code    = @'
$b = New-GlassBinding -LocalPort 8080 -LocalAddress 192.168.2.10 -Name web
$b | Format-List ChannelId, ControlState, Reconnects, Connections, Failures
Receive-Job -Job $b -Keep
'@
            Remarks = 'Receive-Job shows the binding''s warnings, such as a local server that could not be reached.'
        }
        @{
            Title   = 'Try a router with both ends on this host'
            Code    = 'New-GlassBinding -LocalPort 1234 | Connect-GlassChannel -LocalPort 5555'
            Remarks = 'Connect-GlassChannel takes the binding''s ChannelId from the pipeline: connections to 127.0.0.1:5555 go through the router to 127.0.0.1:1234.'
        }
    )
    RelatedLinks = @('Connect-GlassChannel', 'Get-GlassBinding', 'Remove-GlassBinding', 'Set-GlassClientConfig', 'about_Glass')
}
