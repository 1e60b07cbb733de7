# The router's own life: legs with different MTUs, and a translator that is stopped and
# started again leaving nothing behind.

BeforeDiscovery {
    Import-Module (Join-Path $PSScriptRoot 'GlassTestNet.psm1') -Force
    $script:SkipReason = Test-GlassNetPrerequisite
}

Describe "A glass router$(if ($SkipReason) { " (skipped: $SkipReason)" })" -Skip:([bool]$SkipReason) {
    BeforeAll {
        Import-Module (Join-Path $PSScriptRoot 'GlassTestNet.psm1') -Force
        Import-Module (Join-Path $PSScriptRoot 'GlassE2E.psm1') -Force
        # A's leg is Ethernet-sized, B's an IPv6-minimum-sized tunnel.
        $script:Net = New-GlassTestNet -MtuA 1500 -MtuB 1280
        $script:Dotnet = Get-GlassE2EDotnet
        $script:Peer = Get-GlassE2ETestPeer

        # Every rule the translator adds carries its comment.
        function Get-TranslatorRule { Get-GlassE2ERouterRule -Net $Net }
        # The queue's and offload's rules, and those for what the translator sends through its tun device.
        function Get-QueueRule { @(Get-TranslatorRule | Where-Object { $_ -notmatch ' -i glass\d+ ' }) }
        function Get-TunRule { @(Get-TranslatorRule | Where-Object { $_ -match ' -i glass\d+ ' }) }
        function Get-TunDevice {
            $links = Invoke-GlassNetCommand -Net $Net -Namespace router -FilePath ip -ArgumentList @('-br', 'link')
            @($links -split "`n" | Where-Object { $_ -match '^glass\d+\s' })
        }
    }

    AfterAll {
        Remove-GlassTestNet -Net $script:Net
    }

    It 'moves bulk data between legs of MTU 1500 and 1280 without stalling' {
        $script:Router = Start-GlassE2ERouter -Net $Net -Separate
        $serve = Start-GlassE2EServer -Net $Net -Bytes 16MB -Seed 2
        $binding = Start-GlassE2EBinding -Net $Net -Router $Router
        Start-GlassE2EChannel -Net $Net -Router $Router -ChannelId $binding.ChannelId -LocalPort 5555 | Out-Null
        $out = Invoke-GlassNetCommand -Net $Net -Namespace hostA -FilePath $Dotnet -TimeoutSeconds 90 -ArgumentList @(
            $Peer, 'send', '--connect', '127.0.0.1:5555', '--bytes', '16M', '--seed', '1', '--timeout', '60')
        $sent = ConvertFrom-GlassE2EPeerOutput $out
        Wait-GlassNetProcess -Process $serve -TimeoutSeconds 30 | Should -Be 0
        $served = ConvertFrom-GlassE2EPeerOutput $serve.ReadStdout()
        $served.receivedSha256 | Should -Be $sent.sentSha256
        $sent.receivedSha256 | Should -Be $served.sentSha256
        (Get-GlassTranslatorStatus -ControlSocket $Router.ControlSocket).Drops.Fragment | Should -Be 0
    }

    It 'installs its rules while it runs' {
        # raw OUTPUT (the range's own segments, and local peers' over lo), nat PREROUTING and POSTROUTING,
        # filter INPUT (TCP and ICMP), OUTPUT (redirects), FORWARD (guard).
        Get-QueueRule | Should -HaveCount 8
        @(Get-QueueRule) -match '^-A OUTPUT -o lo -p tcp .*--dport 60000:60099 .*-j CT --notrack' | Should -HaveCount 1
        @(Get-QueueRule) -match 'NFQUEUE --queue-num 6' | Should -Not -BeNullOrEmpty -Because 'the relay range goes to the queue'
        # The guard forwards any Glass translator's offloaded flows (the queue is the mark's low half), not only this one's.
        @(Get-QueueRule) -match '^-A FORWARD -m connmark ! --mark 0x474c0000/0xffff0000 ' | Should -HaveCount 1
        Test-Path $Router.ControlSocket | Should -BeTrue
    }

    It 'starts no half router: when the controller cannot start, Start-GlassRouter takes the translator it started with it' {
        # Queue 9 and a range of its own, but the running controller's port (7000), which is taken.
        $config = Join-Path $Net.TempDirectory 'half-router.yaml'
        @"
queue: 9
portRange: 60500-60599
controlSocket: $(Join-Path $Net.TempDirectory 'half-router.sock')
controller:
  port: 7000
tls:
  certificate: $(Join-Path $Net.TempDirectory 'half-router.pem')
"@ | Set-Content -Path $config
        $pwsh = Get-GlassPwshCommand
        $env:GLASS_MODULE = Get-GlassE2EModule
        $script = "Import-Module `$env:GLASS_MODULE; try { Start-GlassRouter -ConfigPath '$config' -ErrorAction Stop; 'started' } catch { 'error: ' + `$_.FullyQualifiedErrorId }; 'jobs: ' + @(Get-Job).Count; 'rules: ' + @(iptables -S | Select-String 'glass-translator-9').Count"
        $out = Invoke-GlassNetCommand -Net $Net -Namespace router -FilePath $pwsh.FilePath -TimeoutSeconds 120 -ArgumentList (
            @($pwsh.ArgumentList) + @('-NoProfile', '-NonInteractive', '-Command', $script))
        $out | Should -Match 'error: address-in-use'
        # While that pwsh still ran: no translator job left, and none of queue 9's rules.
        $out | Should -Match 'jobs: 0'
        $out | Should -Match 'rules: 0'
    }

    It 'sends through its own tun device, forwarded by the kernel, untracked' {
        Get-TunDevice | Should -HaveCount 1
        $tun = @(Get-TunDevice)[0].Split(' ')[0]
        $rules = Get-TunRule
        $rules | Should -HaveCount 2
        $rules | Where-Object { $_ -match "^-A PREROUTING -i $tun .* -j CT --notrack" } | Should -HaveCount 1
        $rules | Where-Object { $_ -match "^-A FORWARD -i $tun .* -j ACCEPT" } | Should -HaveCount 1
        $sysctl = { param($key) (Invoke-GlassNetCommand -Net $Net -Namespace router -FilePath sysctl -ArgumentList @('-n', $key)).Trim() }
        & $sysctl "net.ipv4.conf.$tun.forwarding" | Should -Be '1'
    }

    It 'leaves no rule and no socket when stopped, and connections in flight or idle fail cleanly' {
        # Idle connections too: with nothing to send, their peers would never meet the router's reset by themselves.
        Start-GlassE2EEchoServer -Net $Net -Port 9003 | Out-Null
        $echo = Start-GlassE2EBinding -Net $Net -Router $Router -LocalPort 9003
        Start-GlassE2EChannel -Net $Net -Router $Router -ChannelId $echo.ChannelId -LocalPort 5558 | Out-Null
        $holdReady = Join-Path $Net.TempDirectory 'idle.ready'
        $hold = Start-GlassNetProcess -Net $Net -Namespace hostA -FilePath $Dotnet -ArgumentList @(
            $Peer, 'hold', '--connect', '127.0.0.1:5558', '--connections', '3', '--ready-file', $holdReady, '--timeout', '300')
        Wait-GlassCondition -TimeoutSeconds 60 -Because 'three idle echo connections through the router' {
            if ($hold.HasExited) { throw "glass-testpeer hold exited: $($hold.ReadStderr())" }
            Test-Path -LiteralPath $holdReady
        } | Out-Null
        $serve = Start-GlassE2EServer -Net $Net -Bytes 1GB -Seed 5 -Port 9002
        $binding = Start-GlassE2EBinding -Net $Net -Router $Router -LocalPort 9002
        Start-GlassE2EChannel -Net $Net -Router $Router -ChannelId $binding.ChannelId -LocalPort 5557 | Out-Null
        # Sessions from before (the idle echoes, the first test's transfer lingering in TIME_WAIT) do not count.
        $known = @(Get-GlassSession -ControlSocket $Router.ControlSocket | ForEach-Object Id)
        $send = Start-GlassNetProcess -Net $Net -Namespace hostA -FilePath $Dotnet -ArgumentList @(
            $Peer, 'send', '--connect', '127.0.0.1:5557', '--bytes', '1G', '--timeout', '120')
        Wait-GlassCondition -TimeoutSeconds 60 -Because 'data to flow before the translator stops' {
            if ($send.HasExited) { throw "send ended early: $($send.ReadStderr())" }
            # A new session, and more than the idle connections' 1-byte echoes: the transfer itself is under way.
            @(Get-GlassSession -ControlSocket $Router.ControlSocket | Where-Object { $_.Id -notin $known -and $_.BytesFromA -gt 1MB }).Count -gt 0
        } | Out-Null

        $translator = $Router.Process[0]
        Stop-GlassNetProcess -Process $translator -Signal TERM -TimeoutSeconds 10
        $translator.HasExited | Should -BeTrue
        Get-QueueRule | Should -HaveCount 0
        Get-TunRule | Should -HaveCount 0
        Get-TunDevice | Should -HaveCount 0
        Test-Path $Router.ControlSocket | Should -BeFalse

        # Without the translator the router's kernel resets the relayed flows: a clean failure, not a hang.
        Wait-GlassNetProcess -Process $send -TimeoutSeconds 60 | Should -Be 1
        $send.ReadStderr() | Should -Match 'reset|closed'
        # No end is left connected to the router, idle or not, and the idle applications see their connections fail.
        $relayed = "( dst $($Net.RouterAddress) and dport >= :$($Router.FirstPort) and dport <= :$($Router.LastPort) )"
        foreach ($ns in 'hostA', 'hostB') {
            Wait-GlassCondition -TimeoutSeconds 30 -Because "every connection from $ns to the router's relay range to be reset" {
                -not (Invoke-GlassNetCommand -Net $Net -Namespace $ns -FilePath ss -ArgumentList @('-tnH', 'state', 'established', $relayed)).Trim()
            } | Out-Null
        }
        # The server sees its connection fail too (on a hang, its sockets say how far it got).
        try { Wait-GlassNetProcess -Process $serve -TimeoutSeconds 30 | Should -Be 1 }
        catch { throw "$_`nhostB's sockets:`n$(Invoke-GlassNetCommand -Net $Net -Namespace hostB -FilePath ss -ArgumentList @('-tna'))" }
        Stop-GlassNetProcess -Process $hold -Signal TERM -TimeoutSeconds 30
        (ConvertFrom-GlassE2EPeerOutput $hold.ReadStdout()).failed | Should -Be 3
    }

    It 'starts again on the same queue and socket, and splices again' {
        $script:Router2 = Start-GlassE2ERouter -Net $Net -Separate -ControllerPort 7001
        Get-QueueRule | Should -HaveCount 8
        $serve = Start-GlassE2EServer -Net $Net -Bytes 1MB -Seed 3 -Port 9001
        $binding = Start-GlassE2EBinding -Net $Net -Router $Router2 -LocalPort 9001
        Start-GlassE2EChannel -Net $Net -Router $Router2 -ChannelId $binding.ChannelId -LocalPort 5556 | Out-Null
        $out = Invoke-GlassNetCommand -Net $Net -Namespace hostA -FilePath $Dotnet -TimeoutSeconds 60 -ArgumentList @(
            $Peer, 'send', '--connect', '127.0.0.1:5556', '--bytes', '1M', '--seed', '4', '--timeout', '50')
        $sent = ConvertFrom-GlassE2EPeerOutput $out
        Wait-GlassNetProcess -Process $serve -TimeoutSeconds 30 | Should -Be 0
        (ConvertFrom-GlassE2EPeerOutput $serve.ReadStdout()).receivedSha256 | Should -Be $sent.sentSha256
    }

    It 'runs in the foreground with Start-GlassRouter -Wait, as a service would, and cleans up on SIGTERM' {
        # A second router beside the running one: its own queue, ports, socket and controller port.
        $socket = Join-Path $Net.TempDirectory 'service.sock'
        $config = Join-Path $Net.TempDirectory 'service.yaml'
        "queue: 8`nportRange: 60500-60599`ncontrolSocket: $socket`ncontroller:`n  address: 0.0.0.0`n  port: 7100`n  registry: $(Join-Path $Net.TempDirectory 'service.db')`n" | Set-Content $config
        $pwsh = Get-GlassPwshCommand
        $service = Start-GlassNetProcess -Net $Net -Namespace router -FilePath $pwsh.FilePath -ArgumentList (@($pwsh.ArgumentList) + @(
                '-NoProfile', '-NonInteractive', '-Command', "Import-Module '$(Get-GlassE2EModule)'; Start-GlassRouter -ConfigPath '$config' -Wait"))
        $mine = { @(Get-TranslatorRule | Where-Object { $_ -match 'glass-translator-8\b' }) }
        Wait-GlassCondition -TimeoutSeconds 60 -Because 'the service router to listen and install its rules' {
            if ($service.HasExited) { throw "Start-GlassRouter -Wait exited ($($service.ExitCode)): $($service.ReadStderr()) $($service.ReadStdout())" }
            $listening = Invoke-GlassNetCommand -Net $Net -Namespace router -FilePath ss -ArgumentList @('-tlnH')
            ($listening -match ':7100\s') -and (& $mine).Count -gt 0 -and (Test-Path $socket)
        } | Out-Null

        Stop-GlassNetProcess -Process $service -Signal TERM -TimeoutSeconds 30
        $service.ExitCode | Should -Be 0 -Because "$($service.ReadStderr()) $($service.ReadStdout())"
        & $mine | Should -HaveCount 0
        Test-Path $socket | Should -BeFalse
        # The router beside it was not touched.
        Get-QueueRule | Where-Object { $_ -match 'glass-translator-6\b' } | Should -Not -BeNullOrEmpty
    }
}
