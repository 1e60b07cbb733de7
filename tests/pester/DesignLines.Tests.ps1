# The design's four command lines exactly as typed, in the NAT namespaces, carrying bytes end to
# end; then the router's status, the foreground (-Wait) client and the Stop- cmdlets on it.

BeforeDiscovery {
    Import-Module (Join-Path $PSScriptRoot 'GlassTestNet.psm1') -Force
    $script:SkipReason = Test-GlassNetPrerequisite
}

Describe "The design's command lines$(if ($SkipReason) { " (skipped: $SkipReason)" })" -Skip:([bool]$SkipReason) {
    BeforeAll {
        Import-Module (Join-Path $PSScriptRoot 'GlassTestNet.psm1') -Force
        Import-Module (Join-Path $PSScriptRoot 'GlassE2E.psm1') -Force
        $script:Net = New-GlassTestNet
        $script:Dotnet = Get-GlassE2EDotnet
        $script:Peer = Get-GlassE2ETestPeer
        $script:Module = Get-GlassE2EModule
        $script:RouterAt = "$($Net.RouterAddress):7000"

        # Runs $Lines in a pwsh inside $Namespace after importing the module; it then stays until
        # its jobs end or it is signalled, as a user's shell would.
        function Start-Shell([string] $Namespace, [string] $Name, [string[]] $Lines, [hashtable] $Environment = @{}, [switch] $Stay) {
            $script = Join-Path $Net.TempDirectory "$Name.ps1"
            $body = @('$ErrorActionPreference = ''Stop''', "Import-Module '$Module'") + $Lines
            if ($Stay) { $body += 'Get-Job | Wait-Job | Out-Null' }
            $body | Set-Content -LiteralPath $script
            $pwsh = Get-GlassPwshCommand
            Start-GlassNetProcess -Net $Net -Namespace $Namespace -FilePath $pwsh.FilePath -Environment $Environment -ArgumentList (
                @($pwsh.ArgumentList) + @('-NoProfile', '-NonInteractive', '-File', $script))
        }

        # Runs a command in a namespace's pwsh and returns its output as objects (through JSON).
        function Invoke-Shell([string] $Namespace, [string] $Command) {
            $pwsh = Get-GlassPwshCommand
            $text = Invoke-GlassNetCommand -Net $Net -Namespace $Namespace -FilePath $pwsh.FilePath -TimeoutSeconds 60 -ArgumentList (
                @($pwsh.ArgumentList) + @('-NoProfile', '-NonInteractive', '-Command',
                    "`$ErrorActionPreference = 'Stop'; Import-Module '$Module'; $Command | ConvertTo-Json -Depth 4 -Compress"))
            # -WhatIf and the like write to the host too: the JSON is the last line.
            $json = @($text -split "`n" | Where-Object { $_ -match '^\s*[\{\[]' })
            if ($json.Count -eq 0) { throw "'$Command' in $Namespace wrote no JSON object: $text" }
            $json[-1] | ConvertFrom-Json
        }

        function Wait-File($Process, [string] $Path, [string] $Because) {
            Wait-GlassCondition -TimeoutSeconds 60 -Because $Because {
                if ($Process.HasExited) { throw "$Because failed: exit $($Process.ExitCode): $($Process.ReadStderr()) $($Process.ReadStdout())" }
                Test-Path -LiteralPath $Path
            } | Out-Null
        }

        function Wait-Listening([string] $Namespace, [int] $Port, $Process, [string] $Because) {
            Wait-GlassCondition -TimeoutSeconds 60 -Because $Because {
                if ($Process -and $Process.HasExited) { throw "$Because failed: exit $($Process.ExitCode): $($Process.ReadStderr()) $($Process.ReadStdout())" }
                (Invoke-GlassNetCommand -Net $Net -Namespace $Namespace -FilePath ss -ArgumentList @('-tlnH')) -match ":$Port\s"
            } | Out-Null
        }

        function Send-Through([int] $LocalPort, [int] $ServerPort, [string] $Size, [int] $Seed) {
            $ready = Join-Path $Net.TempDirectory "serve-$ServerPort-$Seed.ready"
            $serve = Start-GlassNetProcess -Net $Net -Namespace hostB -FilePath $Dotnet -ArgumentList @(
                $Peer, 'serve', '--listen', "127.0.0.1:$ServerPort", '--bytes', $Size, '--seed', "$($Seed + 1)", '--ready-file', $ready, '--timeout', '60')
            Wait-File -Process $serve -Path $ready -Because 'the server behind NAT B to listen'
            $out = Invoke-GlassNetCommand -Net $Net -Namespace hostA -FilePath $Dotnet -TimeoutSeconds 90 -ArgumentList @(
                $Peer, 'send', '--connect', "127.0.0.1:$LocalPort", '--bytes', $Size, '--seed', "$Seed", '--timeout', '60')
            Wait-GlassNetProcess -Process $serve -TimeoutSeconds 30 | Should -Be 0
            [pscustomobject]@{ Sent = (ConvertFrom-GlassE2EPeerOutput $out); Served = (ConvertFrom-GlassE2EPeerOutput $serve.ReadStdout()) }
        }
    }

    AfterAll {
        Remove-GlassTestNet -Net $script:Net
    }

    It 'starts the router with Start-GlassTranslator -Queue 6 and Start-GlassController -Port 7000' {
        # Keep the router's own outgoing connections out of the default relay range.
        $script:Router = Start-Shell -Namespace router -Name router -Stay -Lines @(
            'Start-GlassTranslator -Queue 6'
            'Start-GlassController -Port 7000')
        Wait-Listening -Namespace router -Port 7000 -Process $Router -Because 'the controller to listen on 7000'
        $rules = Get-GlassE2ERouterRule -Net $Net
        @($rules) -match 'NFQUEUE --queue-num 6' | Should -Not -BeNullOrEmpty
        @($rules) -match '61000:61999' | Should -Not -BeNullOrEmpty -Because 'the default range is 61000-61999'
    }

    It 'binds with New-GlassBinding -LocalPort 1234 | Select ChannelId, the router from $env:GLASS_ROUTER' {
        $idFile = Join-Path $Net.TempDirectory 'design.id'
        $script:Binder = Start-Shell -Namespace hostB -Name binder -Stay -Environment @{ GLASS_ROUTER = $RouterAt } -Lines @(
            '$shown = New-GlassBinding -LocalPort 1234 | Select ChannelId'
            "`$shown.ChannelId | Set-Content -LiteralPath '$idFile.tmp'; Move-Item -Force '$idFile.tmp' '$idFile'"
            '$shown | Out-String | Write-Host')
        Wait-File -Process $Binder -Path $idFile -Because 'New-GlassBinding to print a channel id'
        $script:ChannelId = (Get-Content -LiteralPath $idFile -Raw).Trim()
        $ChannelId | Should -Match '^[0-9a-f]{32}$'
        Wait-GlassCondition -TimeoutSeconds 10 -Because 'the binder to show its ChannelId column' { $Binder.ReadStdout() -match 'ChannelId' } | Out-Null
        $Binder.ReadStdout() | Should -Match $ChannelId
    }

    It 'connects with Connect-GlassChannel -Id X -LocalPort 5555, the router from a client YAML, and carries bytes both ways' {
        $config = Join-Path $Net.TempDirectory 'hostA-config'
        $env = @{ XDG_CONFIG_HOME = $config; GLASS_ROUTER = '' }
        $setup = Start-Shell -Namespace hostA -Name configure -Environment $env -Lines @("Set-GlassClientConfig -Router $RouterAt")
        Wait-GlassNetProcess -Process $setup -TimeoutSeconds 60 | Should -Be 0 -Because $setup.ReadStderr()
        Get-Content (Join-Path $config 'glass/client.yaml') -Raw | Should -Match ([regex]::Escape($RouterAt))

        $script:Connector = Start-Shell -Namespace hostA -Name connector -Stay -Environment $env -Lines @("Connect-GlassChannel -Id $ChannelId -LocalPort 5555")
        Wait-Listening -Namespace hostA -Port 5555 -Process $Connector -Because 'Connect-GlassChannel to listen on 5555'

        $r = Send-Through -LocalPort 5555 -ServerPort 1234 -Size 8M -Seed 11
        $r.Served.receivedSha256 | Should -Be $r.Sent.sentSha256
        $r.Sent.receivedSha256 | Should -Be $r.Served.sentSha256
        $r.Sent.sent | Should -Be 8MB
        $r.Served.received | Should -Be 8MB
    }

    It 'shows the router''s figures with Get-GlassRouterStatus' {
        $s = Invoke-Shell -Namespace router -Command 'Get-GlassRouterStatus'
        $s.TranslatorState | Should -Be 'Running'
        $s.ControllerState | Should -Be 'Running'
        $s.Bindings | Should -Be 1
        $s.Connects | Should -BeGreaterOrEqual 1
        ($s.Translator.SessionsCreated) | Should -BeGreaterOrEqual 1
        $s.Controller.Port | Should -Be 7000
    }

    It 'reports only the part that answers, as a non-terminating error naming the other' {
        $out = Invoke-Shell -Namespace router -Command @'
& { $r = Get-GlassRouterStatus -Controller 7999 -ErrorVariable failed -ErrorAction SilentlyContinue
    [pscustomobject]@{ Translator = $r.TranslatorState; Controller = $r.ControllerState; Error = "$($failed.FullyQualifiedErrorId)"; Message = "$($failed.Exception.Message)" } }
'@
        $out.Translator | Should -Be 'Running'
        $out.Controller | Should -Be 'Unavailable'
        $out.Error | Should -BeLike 'router-unreachable,*'
        $out.Message | Should -Match '127\.0\.0\.1:7999'
    }

    It 'runs a binding in the foreground with -Wait, logs each connection, and unbinds on SIGTERM' {
        $ready = Join-Path $Net.TempDirectory 'wait.id'
        # The binder's id goes to a file first: -Wait writes the job and then serves until signalled.
        $service = Start-Shell -Namespace hostB -Name wait-binder -Environment @{ GLASS_ROUTER = $RouterAt } -Lines @(
            "New-GlassBinding -LocalPort 1235 -Wait -InformationAction Continue | ForEach-Object { `$_.ChannelId | Set-Content -LiteralPath '$ready.tmp'; Move-Item -Force '$ready.tmp' '$ready'; `$_ }")
        Wait-File -Process $service -Path $ready -Because 'New-GlassBinding -Wait to bind'
        $id = (Get-Content -LiteralPath $ready -Raw).Trim()
        $forward = Start-Shell -Namespace hostA -Name wait-connector -Stay -Environment @{ GLASS_ROUTER = $RouterAt } -Lines @("Connect-GlassChannel -Id $id -LocalPort 5556")
        Wait-Listening -Namespace hostA -Port 5556 -Process $forward -Because 'the second forwarder to listen'

        $r = Send-Through -LocalPort 5556 -ServerPort 1235 -Size 1M -Seed 21
        $r.Served.receivedSha256 | Should -Be $r.Sent.sentSha256
        Wait-GlassCondition -TimeoutSeconds 30 -Because 'the foreground binding to log the connection' {
            $service.ReadStdout() -match 'A connection through router endpoint 203\.0\.113\.\d+:\d+ ended: 1048576 bytes to 127\.0\.0\.1:1235'
        } | Out-Null
        (Invoke-Shell -Namespace router -Command 'Get-GlassRouterStatus').Bindings | Should -Be 2

        Stop-GlassNetProcess -Process $service -Signal TERM -TimeoutSeconds 30
        $service.ExitCode | Should -Be 0 -Because "$($service.ReadStderr()) $($service.ReadStdout())"
        Wait-GlassCondition -TimeoutSeconds 30 -Because 'the router to forget the stopped binding' {
            (Invoke-Shell -Namespace router -Command 'Get-GlassRouterStatus').Bindings -eq 1
        } | Out-Null
        Stop-GlassNetProcess -Process $forward -Signal TERM -TimeoutSeconds 30
    }

    It 'stops a translator with Stop-GlassTranslator, removing its rules, and changes nothing under -WhatIf' {
        $socket = Join-Path $Net.TempDirectory 'stop.sock'
        $out = Invoke-Shell -Namespace router -Command @"
& {
    `$null = Start-GlassTranslator -Queue 9 -PortRange 62000-62099 -ControlSocket '$socket'
    `$rules = { @(iptables-save | Select-String 'glass-translator-9\b').Count }
    `$running = & `$rules
    Stop-GlassTranslator -Queue 9 -WhatIf
    `$afterWhatIf = & `$rules
    `$stopped = Stop-GlassTranslator -Queue 9 -PassThru
    [pscustomobject]@{ Running = `$running; AfterWhatIf = `$afterWhatIf; After = (& `$rules); State = "`$(`$stopped.JobStateInfo.State)"; Socket = (Test-Path '$socket'); Kept = @(Get-Job -Name GlassTranslator-9).Count }
}
"@
        $out.Running | Should -BeGreaterThan 0
        $out.AfterWhatIf | Should -Be $out.Running
        $out.After | Should -Be 0
        $out.State | Should -Be 'Stopped'
        $out.Socket | Should -BeFalse
        $out.Kept | Should -Be 1 -Because 'the stopped job stays for Receive-Job until Remove-Job'
        # The design's router on queue 6 was not touched.
        @(Get-GlassE2ERouterRule -Net $Net) -match 'NFQUEUE --queue-num 6' | Should -Not -BeNullOrEmpty
    }

    It 'changes no rule and no kernel setting under -WhatIf' {
        $snapshot = '& { [pscustomobject]@{ Rules = ((iptables-save | Where-Object { $_ -notmatch ''^[#:]'' }) -join "`n"); Forward = (Get-Content /proc/sys/net/ipv4/ip_forward -Raw).Trim(); Acct = (Get-Content /proc/sys/net/netfilter/nf_conntrack_acct -Raw).Trim() } }'
        $before = Invoke-Shell -Namespace router -Command $snapshot
        $socket = Join-Path $Net.TempDirectory 'whatif.sock'
        "queue: 13`nportRange: 62300-62399`ncontrolSocket: $socket`ncontroller:`n  port: 7300`n" | Set-Content (Join-Path $Net.TempDirectory 'whatif.yaml')
        $null = Invoke-Shell -Namespace router -Command "& { Start-GlassTranslator -Queue 12 -PortRange 62200-62299 -ControlSocket '$socket' -WhatIf; Start-GlassRouter -ConfigPath '$(Join-Path $Net.TempDirectory 'whatif.yaml')' -WhatIf; [pscustomobject]@{ Done = `$true } }"
        $after = Invoke-Shell -Namespace router -Command $snapshot
        $after.Rules | Should -Be $before.Rules
        $after.Forward | Should -Be $before.Forward
        $after.Acct | Should -Be $before.Acct
        Test-Path $socket | Should -BeFalse
    }

    It 'removes every rule of the router when the shells that started it end on SIGTERM' {
        Stop-GlassNetProcess -Process $Connector -Signal TERM -TimeoutSeconds 30
        Stop-GlassNetProcess -Process $Binder -Signal TERM -TimeoutSeconds 30
        Stop-GlassNetProcess -Process $Router -Signal TERM -TimeoutSeconds 30
        @(Get-GlassE2ERouterRule -Net $Net) | Should -HaveCount 0
    }
}
