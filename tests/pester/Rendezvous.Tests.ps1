# The rendezvous service across real NATs: a binding survives its link going down, a hundred
# connectors at once are all served and leave every router port free, a connector that dials
# late is still served (its binder dials only once the connector's SYN is in), and one that
# dials after its link's pending time is refused at once.

BeforeDiscovery {
    Import-Module (Join-Path $PSScriptRoot 'GlassTestNet.psm1') -Force
    $script:SkipReason = Test-GlassNetPrerequisite
}

Describe "The controller behind real NATs$(if ($SkipReason) { " (skipped: $SkipReason)" })" -Skip:([bool]$SkipReason) {
    BeforeAll {
        Import-Module (Join-Path $PSScriptRoot 'GlassTestNet.psm1') -Force
        Import-Module (Join-Path $PSScriptRoot 'GlassE2E.psm1') -Force
        $script:Net = New-GlassTestNet
        $script:Router = Start-GlassE2ERouter -Net $Net -PortRange 60000-60499 -TimeWaitSeconds 2 -PendingSeconds 20
        $script:Dotnet = Get-GlassE2EDotnet
        $script:Peer = Get-GlassE2ETestPeer
        $script:Serve = Start-GlassE2EServer -Net $Net -Bytes 64KB -Seed 3 -Count 0
        $script:Binding = Start-GlassE2EBinding -Net $Net -Router $Router
        Start-GlassE2EChannel -Net $Net -Router $Router -ChannelId $Binding.ChannelId -LocalPort 5555 | Out-Null

        function Get-ControllerStatus { Get-GlassE2EControllerStatus -Net $Net }

        function Invoke-Send([int] $Connections, [string] $Bytes = '64K') {
            $out = Invoke-GlassNetCommand -Net $Net -Namespace hostA -FilePath $Dotnet -TimeoutSeconds 120 -ArgumentList @(
                $Peer, 'send', '--connect', '127.0.0.1:5555', '--connections', "$Connections", '--bytes', $Bytes, '--seed', '40', '--timeout', '100')
            ConvertFrom-GlassE2EPeerOutput $out
        }
    }

    AfterAll {
        Remove-GlassTestNet -Net $script:Net
    }

    It 'serves 100 connectors at once and frees every router port afterwards' {
        $sent = Invoke-Send -Connections 100
        $sent.Count | Should -Be 100
        $sent | Where-Object received -ne 64KB | Should -BeNullOrEmpty
        # Every session ends (after its short linger), and every router port is free.
        Wait-GlassCondition -TimeoutSeconds 30 -Because 'every session to end' {
            @(Get-GlassSession -ControlSocket $Router.ControlSocket).Count -eq 0
        } | Out-Null
        $status = Wait-GlassCondition -TimeoutSeconds 10 -Because 'the controller to free every port' {
            $s = Get-ControllerStatus
            if ($s.PortsInUse -eq 0) { $s }
        }
        $status.Connects | Should -BeGreaterOrEqual 100
    }

    It 'gives an application one router endpoint to dial itself' {
        $address, $port = (Get-GlassE2EEndpoint -Net $Net -Router $Router -ChannelId $Binding.ChannelId) -split ':'
        $endpoint = [pscustomobject]@{ Address = $address; Port = [int]$port }
        $endpoint.Address | Should -Be $Net.RouterAddress
        $out = Invoke-GlassNetCommand -Net $Net -Namespace hostA -FilePath $Dotnet -TimeoutSeconds 60 -ArgumentList @(
            $Peer, 'send', '--connect', "$($endpoint.Address):$($endpoint.Port)", '--bytes', '64K', '--seed', '41', '--timeout', '50')
        $sent = ConvertFrom-GlassE2EPeerOutput $out
        $sent.received | Should -Be 64KB
        $sent.remote | Should -Be "$($Net.RouterAddress):$($endpoint.Port)"
    }

    It 'serves a connector that dials its endpoint 15 s late: its binder is told only then' {
        $endpoint = Get-GlassE2EEndpoint -Net $Net -Router $Router -ChannelId $Binding.ChannelId
        $port = [int]($endpoint -split ':')[1]
        # The application takes its time. Had the binder been told at once, it would have given up
        # after 10 s and cancelled the link; it has dialed nothing, so the link still waits.
        Start-Sleep -Seconds 15
        $pending = @(Get-GlassSession -ControlSocket $Router.ControlSocket | Where-Object RouterPortA -eq $port)
        $pending | Should -HaveCount 1
        $pending[0].State | Should -Be 'Pending'
        $out = Invoke-GlassNetCommand -Net $Net -Namespace hostA -FilePath $Dotnet -TimeoutSeconds 60 -ArgumentList @(
            $Peer, 'send', '--connect', $endpoint, '--bytes', '64K', '--seed', '42', '--timeout', '50')
        (ConvertFrom-GlassE2EPeerOutput $out).received | Should -Be 64KB
    }

    It 'refuses a connector that dials its endpoint after the link''s pending time, with a reset rather than silence' {
        $address, $port = (Get-GlassE2EEndpoint -Net $Net -Router $Router -ChannelId $Binding.ChannelId) -split ':'
        # Nobody dials; after the router's pending time (20 s here) the translator forgets the link.
        Wait-GlassCondition -TimeoutSeconds 60 -Because 'the link to run out of time' {
            -not @(Get-GlassSession -ControlSocket $Router.ControlSocket | Where-Object RouterPortA -eq ([int]$port))
        } | Out-Null
        Wait-GlassCondition -TimeoutSeconds 10 -Because 'the controller to free its ports' { (Get-ControllerStatus).PortsInUse -eq 0 } | Out-Null
        $refusedBefore = (Get-GlassTranslatorStatus -ControlSocket $Router.ControlSocket).SynsRefused
        $pwsh = Get-GlassPwshCommand
        $answer = Invoke-GlassNetCommand -Net $Net -Namespace hostA -FilePath $pwsh.FilePath -TimeoutSeconds 60 -ArgumentList (@($pwsh.ArgumentList) + @(
                '-NoProfile', '-NonInteractive', '-Command',
                "try { [Net.Sockets.TcpClient]::new('$address', $port).Dispose(); 'connected' } catch { `$_.Exception.InnerException.SocketErrorCode }"))
        $answer.Trim() | Should -Be 'ConnectionRefused'
        (Get-GlassTranslatorStatus -ControlSocket $Router.ControlSocket).SynsRefused | Should -BeGreaterThan $refusedBefore
    }

    It 'keeps the binding and its channel id when B''s link is down for 5 s' {
        Invoke-GlassNetCommand -Net $Net -Namespace natB -FilePath ip -ArgumentList @('link', 'set', $Net.NatPublicInterface, 'down') | Out-Null
        try {
            # The outage itself: five seconds without B's uplink.
            Start-Sleep -Seconds 5
        }
        finally {
            Invoke-GlassNetCommand -Net $Net -Namespace natB -FilePath ip -ArgumentList @('link', 'set', $Net.NatPublicInterface, 'up') | Out-Null
        }
        # New connections to the same channel id work again (the binder may first reconnect).
        $sent = Wait-GlassCondition -TimeoutSeconds 60 -Because 'a connection through the same channel to succeed again' {
            try { Invoke-Send -Connections 1 } catch { $null }
        }
        $sent.received | Should -Be 64KB
        (Get-ControllerStatus).Bindings | Should -Be 1
        $Binding.Process.HasExited | Should -BeFalse
    }
}
