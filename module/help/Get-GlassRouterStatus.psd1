@{
    Synopsis     = "Shows a router's figures in one object: sessions, offload, packets, drops, bindings, channels, ports, connects and refusals."
    Description  = @'
Get-GlassRouterStatus asks the translator (over its control socket) and the controller (GLASS/1
STATUS, which a controller answers on loopback only) running on this machine, in this session or
in another process such as a service, and joins their figures in one GlassRouterStatus object:

- TranslatorState, ControllerState: Running, or Unavailable when that part did not answer.
- Sessions, SessionsPending, SessionsOffloaded, SessionsByState, PacketsRelayed, BytesRelayed,
  Drops (non-zero counts by reason), DropsTotal, OffloadFailures: the translator's part.
- Bindings, Channels, PortsInUse, ClientSessions, Connects, Refused, RefusedByCode (refusals by
  error id), BadRequests: the controller's part.
- Translator and ControllerCounters: everything each part reported.

The default view is a table of the main figures; Format-List shows them all. A part that does
not answer is a non-terminating error (translator-unavailable naming the socket,
router-unreachable naming the controller's address); the other part is still shown, so
-ErrorAction decides. Nothing is changed.
'@
    Parameters   = @{
        ControlSocket = 'The translator''s Unix control socket. Default: /run/glass/translator.sock.'
        Controller    = 'The controller on this machine, as PORT or 127.0.0.1:PORT. Tab completes the ports of this session''s controllers.'
        TimeoutSec    = 'Seconds to wait for the controller''s answer; a progress bar shows a long wait.'
    }
    Defaults     = @{
        Controller = 'This session''s running controller, else 127.0.0.1:7000'
    }
    Outputs      = @{
        GlassRouterStatus = 'The router''s figures at the moment both parts answered, and Fingerprint: the fingerprint of the controller''s key, which clients pin (New-GlassBinding -RouterFingerprint).'
    }
    Examples     = @(
        @{
            Title   = 'The router at a glance'
            Code    = 'Get-GlassRouterStatus'
            Remarks = 'One row: the state of both parts, sessions, offloaded, pending, bindings, ports in use, connects, refusals and drops.'
        }
        @{
            Title   = 'Everything, including refusals by error id'
            Code    = 'Get-GlassRouterStatus -Controller 7000 | Format-List'
            Remarks = 'RefusedByCode shows, for example, unknown-channel=3 limit-exceeded=1.'
        }
        @{
            Title   = 'Watch a router run as a service'
            Code    = 'while ($true) { Get-GlassRouterStatus -ControlSocket /run/glass/translator.sock | Select-Object Sessions, SessionsOffloaded, Connects, DropsTotal; Start-Sleep -Seconds 5 }'
            Remarks = 'Asks every five seconds; Ctrl+C stops it.'
        }
    )
    RelatedLinks = @('Get-GlassTranslatorStatus', 'Get-GlassSession', 'Start-GlassRouter', 'about_Glass')
}
