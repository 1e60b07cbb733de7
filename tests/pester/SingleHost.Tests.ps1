# Glass on one machine: the original design's own test (both peers on the router's host over
# 127.0.0.1, linked by the 16-byte LINK datagram, each sending "test" and reading the other's), run
# as examples/one-machine.ps1 with either offload; and a binding on the router's host, reached over
# loopback, spliced through the controller with a connector behind NAT A.

BeforeDiscovery {
    Import-Module (Join-Path $PSScriptRoot 'GlassTestNet.psm1') -Force
    $script:SkipReason = Test-GlassNetPrerequisite
}

Describe "Peers on the router's own host$(if ($SkipReason) { " (skipped: $SkipReason)" })" -Skip:([bool]$SkipReason) {
    BeforeAll {
        Import-Module (Join-Path $PSScriptRoot 'GlassTestNet.psm1') -Force
        Import-Module (Join-Path $PSScriptRoot 'GlassE2E.psm1') -Force
        $script:Net = New-GlassTestNet
        $script:Repo = (Resolve-Path (Join-Path $PSScriptRoot '../..')).Path

        function Invoke-OneMachine([string] $Offload, [int] $Queue) {
            $pwsh = Get-GlassPwshCommand
            $socket = Join-Path $Net.TempDirectory "one-machine-$Queue.sock"
            $command = "& '$Repo/examples/one-machine.ps1' -ModulePath '$(Get-GlassE2EModule)' -Queue $Queue -PortRange 62000-62099 " +
                "-ControlSocket '$socket' -Offload $Offload -Bytes 4MB -TimeoutSec 60 | ConvertTo-Json -Compress"
            $text = Invoke-GlassNetCommand -Net $Net -Namespace router -FilePath $pwsh.FilePath -TimeoutSeconds 120 -ArgumentList (
                @($pwsh.ArgumentList) + @('-NoProfile', '-NonInteractive', '-Command', $command))
            $json = @($text -split "`n" | Where-Object { $_.Trim().StartsWith('{') })
            if (-not $json) { throw "examples/one-machine.ps1 -Offload $Offload printed no result: $text" }
            $json[-1] | ConvertFrom-Json
        }
        function Wait-Ready($Process, [string] $Path, [string] $Because) {
            Wait-GlassCondition -TimeoutSeconds 60 -Because $Because {
                if ($Process.HasExited) { throw "$Because failed: the process exited ($($Process.ExitCode)): $($Process.ReadStderr())" }
                Test-Path -LiteralPath $Path
            } | Out-Null
        }
    }

    AfterAll {
        Remove-GlassTestNet -Net $script:Net
    }

    Context 'the seed scenario: two clients on 127.0.0.1 linked by the LINK datagram (offload: <_>)' -ForEach 'Kernel', 'None' {
        BeforeAll {
            $script:Result = Invoke-OneMachine -Offload $_ -Queue $(if ($_ -eq 'Kernel') { 7 } else { 8 })
        }

        It 'connects both clients over loopback' {
            $Result.ALocal | Should -Match '^127\.0\.0\.1:\d+$'
            $Result.BLocal | Should -Match '^127\.0\.0\.1:\d+$'
        }

        It 'gives each client the other''s "test"' {
            $Result.AReceived | Should -BeExactly 'test'
            $Result.BReceived | Should -BeExactly 'test'
        }

        It 'carries 4 MiB each way intact' {
            $Result.Bytes | Should -Be 4MB
            $Result.BReceivedSha256 | Should -Be $Result.ASentSha256
            $Result.AReceivedSha256 | Should -Be $Result.BSentSha256
            $Result.Truncated | Should -Be 0 -Because 'the MSS offered over lo fits the queue whole'
        }

        It 'relays the session in the translator, never in a conntrack entry' {
            $Result.PacketsRelayed | Should -BeGreaterThan 100
            $Result.SessionsOffloaded | Should -Be 0
            # Only a translator with an offloader has anything to keep from it.
            $Result.SessionsKeptLocal | Should -Be $(if ($_ -eq 'Kernel') { 1 } else { 0 })
        }

        It 'leaves no rule behind once stopped' {
            Get-GlassE2ERouterRule -Net $Net | Should -HaveCount 0
        }
    }

    Context 'a binding on the router''s host over loopback, a connector behind NAT A' {
        BeforeAll {
            $script:Router = Start-GlassE2ERouter -Net $Net
            $dotnet = Get-GlassE2EDotnet
            $peer = Get-GlassE2ETestPeer
            $bytes = 16MB
            $ready = Join-Path $Net.TempDirectory 'serve-router.ready'
            $serve = Start-GlassNetProcess -Net $Net -Namespace router -FilePath $dotnet -ArgumentList @(
                $peer, 'serve', '--listen', '127.0.0.1:9000', '--bytes', "$bytes", '--seed', '2', '--count', '1', '--ready-file', $ready, '--timeout', '120')
            Wait-Ready -Process $serve -Path $ready -Because 'glass-testpeer serve to listen on the router''s host'

            # The binder reaches the controller over loopback, so its link names 127.0.0.1.
            $file = Join-Path $Net.TempDirectory 'router-binding.id'
            $binder = Start-GlassE2EPwsh -Net $Net -Namespace router -Script 'examples/bind.ps1' -ArgumentList @(
                '-Router', '127.0.0.1:7000', '-LocalPort', '9000', '-ChannelFile', $file)
            Wait-Ready -Process $binder -Path $file -Because 'New-GlassBinding on the router''s host to obtain a channel id'
            $channelId = (Get-Content -LiteralPath $file -Raw).Trim()
            Start-GlassE2EChannel -Net $Net -Router $Router -ChannelId $channelId -LocalPort 5555 | Out-Null

            # What hostA's network interface carries: every packet the connector's host sends or gets.
            $capture = Start-GlassCapture -Net $Net -Namespace hostA -Interface eth0 -SnapLength 128
            $send = Start-GlassNetProcess -Net $Net -Namespace hostA -FilePath $dotnet -ArgumentList @(
                $peer, 'send', '--connect', '127.0.0.1:5555', '--bytes', "$bytes", '--seed', '1', '--timeout', '120')
            $sendExit = Wait-GlassNetProcess -Process $send -TimeoutSeconds 150
            # At once: the session lingers only for its time-wait once both ends closed.
            $script:Sessions = @(Get-GlassSession -ControlSocket $Router.ControlSocket)
            $script:Sent = ConvertFrom-GlassE2EPeerOutput $send.ReadStdout()
            if ($sendExit -ne 0) { throw "glass-testpeer send failed ($sendExit): $($send.ReadStderr())" }
            Wait-GlassNetProcess -Process $serve -TimeoutSeconds 60 | Out-Null
            $script:Served = ConvertFrom-GlassE2EPeerOutput $serve.ReadStdout()
            $script:Seen = Stop-GlassCapture $capture
            $script:Status = Get-GlassTranslatorStatus -ControlSocket $Router.ControlSocket
        }

        It 'carries 16 MiB from A to the router''s host intact' {
            $Served.received | Should -Be 16MB
            $Served.receivedSha256 | Should -Be $Sent.sentSha256
        }

        It 'carries 16 MiB from the router''s host to A intact' {
            $Sent.received | Should -Be 16MB
            $Sent.receivedSha256 | Should -Be $Served.sentSha256
        }

        It 'splices the binder at 127.0.0.1 with A''s public address' {
            # The one that carried the transfer (a forwarder's spare link waits beside it, pending).
            $s = $Sessions | Where-Object { $_.State -ne 'Pending' -and ($_.PeerB -like '127.0.0.1:*' -or $_.PeerA -like '127.0.0.1:*') } | Select-Object -First 1
            $s | Should -Not -BeNullOrEmpty -Because 'the translator lists the session'
            @($s.PeerA, $s.PeerB) -match "^$([regex]::Escape($Net.NatAPublicAddress)):" | Should -HaveCount 1
            $s.Offloaded | Should -BeFalse
        }

        It 'keeps the session in the translator (offload: kernel cannot carry a loopback peer)' {
            $Status.SessionsKeptLocal | Should -BeGreaterOrEqual 1
            $Status.SessionsOffloaded | Should -Be 0
            $Status.OffloadFailures | Should -Be 0
        }

        It 'shows A only the router''s public address, never a 127.x one' {
            $Seen.PacketCount | Should -BeGreaterThan 100
            $Seen.Addresses | Should -Contain $Net.RouterAddress
            $Seen.Addresses | Should -Contain $Net.HostAAddress
            @($Seen.Addresses | Where-Object { $_ -like '127.*' }) | Should -HaveCount 0
            @($Seen.Addresses | Where-Object { $_ -ne $Net.RouterAddress -and $_ -ne $Net.HostAAddress }) | Should -HaveCount 0
        }
    }
}
