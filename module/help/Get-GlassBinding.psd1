@{
    Synopsis     = "Lists this session's bindings (New-GlassBinding) with their channel ids, state and traffic."
    Description  = @'
Get-GlassBinding writes one GlassBindingInfo for each binding this PowerShell session made with
New-GlassBinding, or for those with the given channel ids: a snapshot of the binding's job
(JobId, Name, State, ChannelId, LocalTarget, Router, ControlState, Reconnects, Connections,
ActiveConnections, BytesToLocal, BytesFromLocal, Failures). Bindings of other processes are not
shown.

A channel id that matches no binding writes a non-terminating GlassJobNotFound error. It
changes nothing. Pipe its output to Remove-GlassBinding to stop bindings, or to
Connect-GlassChannel to connect to them.
'@
    Parameters   = @{
        ChannelId = 'Shows only the bindings of these channel ids (32 hexadecimal characters each, any case). Taken from the ChannelId property of piped objects. Default: every binding of this session.'
    }
    Defaults     = @{
        ChannelId = 'None: every binding'
    }
    Inputs       = 'Any object with a ChannelId property.'
    Outputs      = @{
        GlassBindingInfo = 'One per binding, a snapshot: Get-GlassBinding again shows newer counts.'
    }
    Examples     = @(
        @{
            Title   = 'List the bindings'
            Code    = 'Get-GlassBinding'
            Remarks = 'State, channel id, local target, router, connections and bytes each way.'
        }
        @{
            Title   = 'Is a binding connected to its router?'
            Code    = 'Get-GlassBinding 184d21cf0e6a4b2f9c3d5e7f8a9b0c1d | Format-List ChannelId, ControlState, Reconnects, Failures'
            Remarks = 'ControlState is Connected, or Reconnecting while the control connection is being restored.'
        }
        @{
            Title   = 'Bindings that failed or stopped'
            Code    = 'Get-GlassBinding | Where-Object State -ne Running'
            Remarks = 'Receive-Job -Id <JobId> shows why a binding failed.'
        }
    )
    RelatedLinks = @('New-GlassBinding', 'Remove-GlassBinding', 'Get-GlassChannel', 'about_Glass')
}
