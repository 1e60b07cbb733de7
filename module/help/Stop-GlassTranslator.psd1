@{
    Synopsis     = "Stops a translator of this session: its iptables rules, tun device and control socket are removed."
    Description  = @'
Stop-GlassTranslator stops translators that Start-GlassTranslator (or Start-GlassRouter) started
in this PowerShell session, picked by queue number; with no -Queue it stops every running one.

Stopping removes what the translator changed: its iptables rules, its tun device, its control
socket, the kernel settings it set for offload (put back as they were), and its conntrack
entries, which resets the sessions the kernel carried. A translator started with -KeepSessions
leaves those sessions, their rules and settings running for the next translator on the queue.

The job stays in the session, Stopped, so Receive-Job still shows its log; Remove-Job drops it.
A queue that no translator of this session serves is a non-terminating GlassJobNotFound error.
Under -WhatIf nothing is stopped. A translator in another process (a service) is stopped there:
systemctl stop glass-router, or SIGTERM.
'@
    Parameters   = @{
        Queue    = 'The NFQUEUE numbers of the translators to stop; binds by property name, so a translator job can be piped in. Tab completes the queues of this session''s translators.'
        PassThru = 'Writes each stopped translator job.'
    }
    Defaults     = @{
        Queue = 'None: every running translator of this session'
    }
    Outputs      = @{
        GlassTranslatorJob = 'With -PassThru: each stopped translator job.'
    }
    Examples     = @(
        @{
            Title   = 'Stop the translator on queue 6'
            Code    = 'Stop-GlassTranslator -Queue 6'
            Remarks = 'Its rules and socket are gone afterwards; Get-Job still lists it as Stopped.'
        }
        @{
            Title   = 'See what would be stopped'
            Code    = 'Stop-GlassTranslator -WhatIf'
            Remarks = 'Names every running translator of this session and stops none.'
        }
        @{
            Title   = 'Stop a translator and drop its job'
            Code    = 'Stop-GlassTranslator -Queue 6 -PassThru | Remove-Job'
            Remarks = 'Receive-Job on it before Remove-Job shows what it logged.'
        }
    )
    RelatedLinks = @('Start-GlassTranslator', 'Stop-GlassController', 'Get-GlassRouterStatus', 'about_Glass')
}
