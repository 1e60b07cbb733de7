@{
    Synopsis     = "Stops a controller of this session: it stops listening, and its bindings' control connections close."
    Description  = @'
Stop-GlassController stops controllers that Start-GlassController (or Start-GlassRouter)
started in this PowerShell session, picked by the port they listen on; with no -Port it stops
every running one.

Stopping closes the listening port and every client connection: bindings elsewhere see their
control connection drop and keep trying to reconnect (their channel ids come back when a
controller runs again, within their lease). Sessions already spliced by the translator are not
touched.

The job stays in the session, Stopped, so Receive-Job still shows its log; Remove-Job drops it.
A port that no controller of this session listens on is a non-terminating GlassJobNotFound
error. Under -WhatIf nothing is stopped.
'@
    Parameters   = @{
        Port     = 'The ports of the controllers to stop; binds by property name. Tab completes the ports of this session''s controllers.'
        PassThru = 'Writes each stopped controller job.'
    }
    Defaults     = @{
        Port = 'None: every running controller of this session'
    }
    Outputs      = @{
        GlassControllerJob = 'With -PassThru: each stopped controller job.'
    }
    Examples     = @(
        @{
            Title   = 'Stop the controller on port 7000'
            Code    = 'Stop-GlassController -Port 7000'
            Remarks = 'Port 7000 is free afterwards.'
        }
        @{
            Title   = 'Stop every controller of this session, asking first'
            Code    = 'Stop-GlassController -Confirm'
            Remarks = 'Asks once per controller.'
        }
        @{
            Title   = 'Stop the whole router of this session'
            Code    = 'Stop-GlassController; Stop-GlassTranslator'
            Remarks = 'The controller first, so no new link reaches a translator that is going away.'
        }
    )
    RelatedLinks = @('Start-GlassController', 'Stop-GlassTranslator', 'Get-GlassRouterStatus', 'about_Glass')
}
