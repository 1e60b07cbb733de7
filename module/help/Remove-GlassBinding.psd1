@{
    Synopsis     = 'Stops bindings of this session: the router forgets their channels, and their jobs are removed.'
    Description  = @'
Remove-GlassBinding stops each binding of this PowerShell session with the given channel ids
and removes its job. A stopping binding says BYE on its control connection, so the router
forgets the channel at once (connectors then get unknown-channel), and its connections are
closed. The channel's saved secret is kept, so New-GlassBinding -ChannelId binds the same id
again later.

A channel id that matches no binding of this session writes a non-terminating
GlassJobNotFound error. It writes nothing on success. -WhatIf shows which bindings it would
stop.
'@
    Parameters   = @{
        ChannelId = 'The channel ids of the bindings to stop (32 hexadecimal characters each, any case). Required. Taken from the ChannelId property of piped objects, such as Get-GlassBinding output and binding jobs.'
        WhatIf    = 'Shows which bindings (channel id and job id) it would stop, and stops none.'
        Confirm   = 'Asks before stopping each binding.'
    }
    Inputs       = 'Any object with a ChannelId property, such as the objects Get-GlassBinding writes and the jobs New-GlassBinding writes.'
    Outputs      = @{
        Void = 'Nothing.'
    }
    Examples     = @(
        @{
            Title   = 'Stop one binding'
            Code    = 'Remove-GlassBinding -ChannelId 184d21cf0e6a4b2f9c3d5e7f8a9b0c1d'
            Remarks = 'The router forgets the channel; the job leaves Get-Job.'
        }
        @{
            Title   = 'See what stopping every binding would do'
            Code    = 'Get-GlassBinding | Remove-GlassBinding -WhatIf'
            Remarks = 'Drop -WhatIf to stop them.'
        }
        @{
            Title   = 'Stop the bindings whose control connection is down'
            Code    = 'Get-GlassBinding | Where-Object ControlState -eq Reconnecting | Remove-GlassBinding -Confirm'
            Remarks = 'Asks before each.'
        }
    )
    RelatedLinks = @('New-GlassBinding', 'Get-GlassBinding', 'about_Glass')
}
