@{
    Synopsis     = 'Stops forwarding local ports to a channel (Connect-GlassChannel -LocalPort) and removes their jobs.'
    Description  = @'
Disconnect-GlassChannel stops each forwarded local port of this PowerShell session that goes to
the given channel (only the one on -LocalPort, when given) and removes its job. The local port
stops listening and the connections it carried are closed. The channel and its binder are not
affected.

When nothing matches it writes a non-terminating GlassJobNotFound error. It writes nothing on
success. -WhatIf shows which forwarded ports it would stop.
'@
    Parameters   = @{
        ChannelId = 'The channel id of the forwarded ports to stop (32 hexadecimal characters, any case). Required. Taken from the ChannelId property of piped objects, such as Get-GlassChannel output and forwarding jobs.'
        LocalPort = 'Stops only the forwarded port on this local port (from 1 to 65535). Taken from the LocalPort property of piped objects. Default: every forwarded port of the channel.'
        WhatIf    = 'Shows which forwarded ports (local port, channel id and job id) it would stop, and stops none.'
        Confirm   = 'Asks before stopping each forwarded port.'
    }
    Defaults     = @{
        LocalPort = 'None: every forwarded port of the channel'
    }
    Inputs       = 'Any object with ChannelId and, optionally, LocalPort properties, such as the objects Get-GlassChannel writes and the jobs Connect-GlassChannel -LocalPort writes.'
    Outputs      = @{
        Void = 'Nothing.'
    }
    Examples     = @(
        @{
            Title   = 'Stop forwarding one port'
            Code    = 'Disconnect-GlassChannel -ChannelId 184d21cf0e6a4b2f9c3d5e7f8a9b0c1d -LocalPort 5555'
            Remarks = 'Other ports forwarded to the same channel go on.'
        }
        @{
            Title   = 'Stop every forwarded port'
            Code    = 'Get-GlassChannel | Disconnect-GlassChannel'
            Remarks = 'Each piped object names its channel id and local port.'
        }
        @{
            Title   = 'Stop a forwarding job right after use'
            Code    = @'
$c = Connect-GlassChannel -Id 184d21cf0e6a4b2f9c3d5e7f8a9b0c1d -LocalPort 5555
ssh -p 5555 user@127.0.0.1
$c | Disconnect-GlassChannel
'@
            Remarks = 'The job itself carries ChannelId and LocalPort.'
        }
    )
    RelatedLinks = @('Connect-GlassChannel', 'Get-GlassChannel', 'about_Glass')
}
