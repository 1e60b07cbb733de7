@{
    Synopsis     = 'Connects to a glass channel: forwards a local port to it, carries one connection over standard input and output, or returns one router endpoint.'
    Description  = @'
Connect-GlassChannel reaches the server a binder exposed with New-GlassBinding, by its channel
id, in one of three ways:

- With -LocalPort, it checks that the channel exists, listens on -LocalAddress:-LocalPort and
  returns a job (a GlassChannelJob named GlassChannel-<first 8 characters of the id>) that
  forwards every local connection in the background. Each local connection gets its own router
  endpoint from the controller (the requests share one controller session) and is spliced by
  the router to the binder's server. The job keeps one endpoint ready for the next local
  connection, which the binder dials ahead (only its router side), so a new connection is
  spliced about as soon as its SYN reaches the router; unused for 5 s, it is given back. Bytes are copied on the module's own event loop and, once a
  direction has carried 1 MiB, with splice(2). A connection that cannot be made is reset, counted
  in Failures and reported on the job's error stream (Receive-Job).
- With -Stdio, it carries one connection over this process's standard input and output until
  the peer closes it, which is what ssh's ProxyCommand wants. It writes nothing else to standard
  output, and returns when the connection ends.
- With neither, it writes one GlassEndpoint: the router address and port the application itself
  must connect to, once, within the translator's pending timeout (60 seconds by default).

The router sees both peers; neither peer learns the other's address. The channel id may come
from the pipeline by property name, so binding jobs and Get-GlassBinding output can be piped
in; each piped object is handled in turn.

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

A client config file that cannot be read stops it with InvalidGlassConfig. Otherwise a failure is a
non-terminating error, so -ErrorAction decides, with a stable id: unknown-channel,
binder-unavailable (the binder is away, within its lease), unauthorized (a wrong -Secret or
-Token), limit-exceeded, router-full, translator-unavailable, router-unreachable, listen-failed
(the local port is taken), connection-failed (-Stdio: the connection failed or was reset),
plaintext-refused or protocol-error (also a failed TLS handshake). Ctrl+C stops a wait for a silent router.

It changes nothing on the machine but the listening port of -LocalPort, and needs no root.
Stop forwarding with Disconnect-GlassChannel, Stop-Job or Remove-Job -Force, which also closes
the connections it carries.
'@
    Parameters   = @{
        ChannelId    = 'The channel id to connect to: 32 hexadecimal characters (any case), as New-GlassBinding wrote it. Required. Also -Id. Taken from the ChannelId property of piped objects.'
        LocalPort    = 'Forwards this local port to the channel (from 0 to 65535); 0 picks a free port, shown by the job''s LocalPort. Selects the forwarding parameter set.'
        LocalAddress = 'With -LocalPort: the address to listen on, as an IPv4 address or a host name that resolves to one. 0.0.0.0 lets other machines use the forwarded port. Default: 127.0.0.1.'
        Router       = 'The glass controller, as HOST:PORT or HOST (port 7000). Default: $env:GLASS_ROUTER, else the router saved with Set-GlassClientConfig.'
        Secret       = 'A SecureString or a plain string (an argument transformation takes both); a job''s Command shows it masked. The channel''s connect secret, where its binder set one (New-GlassBinding -ConnectSecret), 1 to 64 printable characters. Default: the secret saved with Set-GlassClientConfig.'
        Token        = 'A SecureString or a plain string. The router''s connect token, where its configuration sets access.connectToken (1 to 64 printable characters). Default: the token saved with Set-GlassClientConfig.'
        RouterFingerprint = 'The fingerprint the router''s key must have: sha256: and 64 hex characters (colons between bytes and upper case are accepted), as Start-GlassController and Get-GlassRouterStatus show it on the router. Another key is refused with router-fingerprint-mismatch. Default: the pin for this router in the client config, else trust on first use (pinned there with a warning).'
        Plaintext = 'Speaks plain GLASS/1 instead of TLS, to a router whose config sets tls.allowPlaintext: true. Unauthenticated: anyone on the path reads the token, the secrets and the channel id, and may pose as the router. Default: TLS (or plaintext: true in the client config).'
        Name         = 'With -LocalPort: the name of the job. Default: GlassChannel-<first 8 characters of the channel id>.'
        Stdio        = 'Carries one connection over standard input and output until the peer closes it (for ssh -o ProxyCommand). Nothing else is written to standard output.'
        TimeoutSec = 'Seconds to wait for the router (and for a router endpoint) to answer, each time it is asked; running out is router-unreachable naming -TimeoutSec. A progress bar shows a long wait. Default: 10.'
        Wait = 'With -LocalPort: forwards in the foreground until Ctrl+C or SIGTERM, writing what happens as it comes, then stops listening and removes the job: the form for a systemd unit.'
    }
    Defaults     = @{
        LocalPort = 'None (no forwarding)'
        Router    = '$env:GLASS_ROUTER, else the client config''s router'
        Secret    = 'The client config''s secret'
        Token     = 'The client config''s token'
        RouterFingerprint = 'The client config''s pin for this router, else trust on first use'
        Name      = 'GlassChannel-<first 8 characters of the channel id>'
    }
    Inputs       = 'Any object with a ChannelId property, such as the jobs New-GlassBinding writes and the objects Get-GlassBinding writes.'
    Outputs      = @{
        GlassChannelJob = 'With -LocalPort: the forwarding job, registered with the job manager. Its properties: ChannelId, Router, LocalEndPoint, LocalPort, Connections, ActiveConnections, BytesSent, BytesReceived, Failures.'
        GlassEndpoint   = 'Without -LocalPort or -Stdio: ChannelId, Address and Port of the router endpoint to connect to; it reads as ADDRESS:PORT in a string. With -Stdio nothing is written.'
    }
    Examples     = @(
        @{
            Title   = 'Reach a channel on a local port'
            Code    = @'
Connect-GlassChannel -Id 184d21cf0e6a4b2f9c3d5e7f8a9b0c1d -LocalPort 5555
ssh -p 5555 user@127.0.0.1
'@
            Remarks = 'Behind NAT A: every connection to 127.0.0.1:5555 reaches the server bound to that channel behind NAT B.'
        }
        @{
            Title   = 'SSH through a channel without a local port'
            Code    = 'ssh -o ProxyCommand="pwsh -NoProfile -Command Connect-GlassChannel -Id 184d21cf0e6a4b2f9c3d5e7f8a9b0c1d -Stdio" user@glass'
            Remarks = @'
ssh runs the command and speaks SSH over its standard input and output. pwsh must be on PATH
and find the Glass module on $env:PSModulePath. The same in ~/.ssh/config:

    Host glass
        ProxyCommand pwsh -NoProfile -Command Connect-GlassChannel -Id 184d21cf0e6a4b2f9c3d5e7f8a9b0c1d -Stdio
'@
        }
        @{
            Title   = 'One router endpoint for an application'
            Code    = @'
$ep = Connect-GlassChannel -Id 184d21cf0e6a4b2f9c3d5e7f8a9b0c1d
curl --max-time 30 "http://$ep/"
'@
            Remarks = 'The application connects to the router endpoint itself (once, within a minute); "$ep" reads as ADDRESS:PORT.'
        }
        @{
            Title   = 'A protected channel, forwarded for the whole LAN'
            Code    = 'Connect-GlassChannel -Id 184d21cf0e6a4b2f9c3d5e7f8a9b0c1d -LocalPort 2222 -LocalAddress 0.0.0.0 -Secret correct-horse-battery -Router router.example:7000'
            Remarks = 'Other machines reach the channel at this machine''s port 2222.'
        }
        @{
            Title   = 'Forward on a free port and see what failed'
            Code    = @'
$c = Connect-GlassChannel -Id 184d21cf0e6a4b2f9c3d5e7f8a9b0c1d -LocalPort 0
"Forwarding $($c.LocalEndPoint)"
Receive-Job -Job $c -Keep
'@
            Remarks = 'Receive-Job shows each failed connection as an error naming its cause, e.g. binder-unavailable.'
        }
        @{
            Title   = 'Connect to every binding of this session'
            Code    = 'Get-GlassBinding | Connect-GlassChannel'
            Remarks = 'Writes one router endpoint per binding: ChannelId comes from the pipeline by property name.'
        }
    )
    RelatedLinks = @('New-GlassBinding', 'Get-GlassChannel', 'Disconnect-GlassChannel', 'Set-GlassClientConfig', 'about_Glass')
}
