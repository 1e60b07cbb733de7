@{
    Synopsis     = "Lists this session's forwarded local ports (Connect-GlassChannel -LocalPort) with their channel ids and traffic."
    Description  = @'
Get-GlassChannel writes one GlassChannelInfo for each local port this PowerShell session
forwards to a channel with Connect-GlassChannel -LocalPort, or for those with the given channel
ids: a snapshot of the forwarding job (JobId, Name, State, ChannelId, LocalEndPoint, LocalPort,
Router, Connections, ActiveConnections, BytesSent, BytesReceived, Failures). Forwarded ports of
other processes are not shown.

A channel id that matches no forwarded port writes a non-terminating GlassJobNotFound error. It
changes nothing. Pipe its output to Disconnect-GlassChannel to stop forwarding.
'@
    Parameters   = @{
        ChannelId = 'Shows only the forwarded ports of these channel ids (32 hexadecimal characters each, any case). Taken from the ChannelId property of piped objects. Default: every forwarded port of this session.'
    }
    Defaults     = @{
        ChannelId = 'None: every forwarded port'
    }
    Inputs       = 'Any object with a ChannelId property.'
    Outputs      = @{
        GlassChannelInfo = 'One per forwarded port, a snapshot: Get-GlassChannel again shows newer counts.'
    }
    Examples     = @(
        @{
            Title   = 'List the forwarded ports'
            Code    = 'Get-GlassChannel'
            Remarks = 'State, channel id, local port, router, connections and bytes each way.'
        }
        @{
            Title   = 'Forwarded ports with failed connections'
            Code    = 'Get-GlassChannel | Where-Object Failures -gt 0 | ForEach-Object { Receive-Job -Id $_.JobId -Keep }'
            Remarks = 'Each failed connection is an error on the job naming its cause.'
        }
        @{
            Title   = 'The ports forwarded to one channel'
            Code    = 'Get-GlassChannel -ChannelId 184d21cf0e6a4b2f9c3d5e7f8a9b0c1d | Select-Object LocalEndPoint, ActiveConnections'
            Remarks = 'One channel may be forwarded on several local ports.'
        }
    )
    RelatedLinks = @('Connect-GlassChannel', 'Disconnect-GlassChannel', 'Get-GlassBinding', 'about_Glass')
}
