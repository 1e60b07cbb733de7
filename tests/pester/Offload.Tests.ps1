# Offload: after the handshake the router's kernel carries each splice as a conntrack NAT entry.
# Bytes cross intact, the queue sees only handshakes, the translator still knows each session
# and its bytes, ends follow FIN and RST, a restart keeps live sessions, and a stop leaves nothing.

BeforeDiscovery {
    Import-Module (Join-Path $PSScriptRoot 'GlassTestNet.psm1') -Force
    $script:SkipReason = Test-GlassNetPrerequisite
    if (-not $SkipReason -and -not (Get-Command conntrack -ErrorAction Ignore)) { $script:SkipReason = 'conntrack (Debian package conntrack) is not installed' }
}

Describe "Kernel offload of established splices$(if ($SkipReason) { " (skipped: $SkipReason)" })" -Skip:([bool]$SkipReason) {
    BeforeAll {
        Import-Module (Join-Path $PSScriptRoot 'GlassTestNet.psm1') -Force
        Import-Module (Join-Path $PSScriptRoot 'GlassE2E.psm1') -Force
        $script:Net = New-GlassTestNet
        $script:Dotnet = Get-GlassE2EDotnet
        $script:Peer = Get-GlassE2ETestPeer
        function Get-Sysctl([string] $Name) {
            (Invoke-GlassNetCommand -Net $Net -Namespace router -FilePath sysctl -ArgumentList @('-n', $Name)).Trim()
        }
        # What the router's kernel said before any translator touched it.
        $script:Before = @{ Forward = Get-Sysctl net.ipv4.ip_forward; Acct = Get-Sysctl net.netfilter.nf_conntrack_acct }
        $script:Router = Start-GlassE2ERouter -Net $Net -Separate -TimeWaitSeconds 5 -KeepSessions
        # While this file exists the server reads nothing, so a transfer is surely still running
        # while a test looks at it or restarts the translator, however fast the kernel carries it.
        $script:Hold = Join-Path $Net.TempDirectory 'serve.hold'
        $script:Serve = Start-GlassE2EServer -Net $Net -Bytes 256MB -Seed 2 -Count 0 -HoldFile $Hold
        $script:Binding = Start-GlassE2EBinding -Net $Net -Router $Router
        Start-GlassE2EChannel -Net $Net -Router $Router -ChannelId $Binding.ChannelId -LocalPort 5555 | Out-Null

        function Start-Send([string] $Bytes, [int] $Seed, [string[]] $Extra = @()) {
            Start-GlassNetProcess -Net $Net -Namespace hostA -FilePath $Dotnet -ArgumentList (@(
                    $Peer, 'send', '--connect', '127.0.0.1:5555', '--bytes', $Bytes, '--seed', "$Seed", '--timeout', '170') + $Extra)
        }
        function Wait-Offloaded($Send) {
            Wait-GlassCondition -TimeoutSeconds 60 -Because 'the session to be offloaded while data flows' {
                if ($Send.HasExited) { throw "send ended before its session was seen offloaded: $($Send.ReadStderr())" }
                @(Get-GlassSession -ControlSocket $Router.ControlSocket | Where-Object { $_.Offloaded -and $_.BytesFromA -gt 0 })
            }
        }
        function Wait-AllGone {
            Wait-GlassCondition -TimeoutSeconds 30 -Because 'the session to leave the translator and conntrack' {
                @(Get-GlassSession -ControlSocket $Router.ControlSocket).Count -eq 0 -and @(Get-GlassE2EOffloadEntry -Net $Net).Count -eq 0
            } | Out-Null
        }
    }

    AfterAll {
        Remove-GlassTestNet -Net $script:Net
    }

    It 'carries 256 MiB each way intact while the queue sees only the handshake' {
        Set-Content -LiteralPath $Hold -Value 'hold'
        $send = Start-Send -Bytes 256M -Seed 1
        $flowing = Wait-Offloaded $send
        $flowing | Should -HaveCount 1
        @(Get-GlassE2EOffloadEntry -Net $Net) | Should -HaveCount 1
        Remove-Item -LiteralPath $Hold

        Wait-GlassNetProcess -Process $send -TimeoutSeconds 170 | Should -Be 0 -Because $send.ReadStderr()
        $sent = ConvertFrom-GlassE2EPeerOutput $send.ReadStdout()
        $served = Wait-GlassCondition -TimeoutSeconds 30 -Because 'the server to report the connection' {
            $Serve.ReadStdout() -split "`n" | Where-Object { $_ } | ForEach-Object { $_ | ConvertFrom-Json } | Select-Object -First 1
        }
        $sent.sent | Should -Be 256MB
        $served.receivedSha256 | Should -Be $sent.sentSha256
        $sent.received | Should -Be 256MB
        $sent.receivedSha256 | Should -Be $served.sentSha256

        $status = Get-GlassTranslatorStatus -ControlSocket $Router.ControlSocket
        $status.OffloadedTotal | Should -Be 1
        $status.OffloadFailures | Should -Be 0
        # SYNs are answered, not relayed; the two ACKs of the crafted SYN-ACKs and what was in flight are.
        $status.PacketsRelayed | Should -BeLessThan 20
        $status.BytesRelayed | Should -BeLessThan 64KB
    }

    It 'still shows the session and its bytes, counted by the kernel' {
        # The session lingers in TimeWait (5 s here) with the counters read when the kernel saw the FINs.
        $s = Wait-GlassCondition -TimeoutSeconds 10 -Because 'the finished session to show its bytes' {
            Get-GlassSession -ControlSocket $Router.ControlSocket | Where-Object { $_.BytesFromA -ge 256MB -and $_.BytesFromB -ge 256MB }
        }
        $s.Offloaded | Should -BeTrue
        # The kernel counts IP bytes; the translator takes the headers off (with them the figure
        # would be 3.6 % over: 52 bytes on every 1448). What is left over is what the router carried
        # twice: retransmissions, 0.58 % in a CI run on a loaded machine, and SACK blocks.
        $s.BytesFromA | Should -BeLessThan (256MB * 1.02)
        $s.BytesFromB | Should -BeLessThan (256MB * 1.02)
        $s.PeerA | Should -BeLike "$($Net.NatAPublicAddress):*"
        $s.PeerB | Should -BeLike "$($Net.NatBPublicAddress):*"
    }

    It 'forgets the session after the FINs, in the translator and in conntrack, and frees its ports' {
        Wait-AllGone
        Wait-GlassCondition -TimeoutSeconds 10 -Because 'the controller to free every port' { (Get-GlassE2EControllerStatus -Net $Net).PortsInUse -eq 0 } | Out-Null
        # The kernel announced the entry, so its FIN and destroy events were taken as its own
        # (events before an announcement are an older entry's, and ignored).
        (Get-GlassTranslatorStatus -ControlSocket $Router.ControlSocket).StaleKernelEvents | Should -Be 0
    }

    It 'ends a session at once when one side resets it' {
        $offloaded = (Get-GlassTranslatorStatus -ControlSocket $Router.ControlSocket).OffloadedTotal
        $send = Start-Send -Bytes 64M -Seed 7 -Extra @('--abort-after', '16M')
        Wait-GlassNetProcess -Process $send -TimeoutSeconds 60 | Out-Null
        (Get-GlassTranslatorStatus -ControlSocket $Router.ControlSocket).OffloadedTotal | Should -Be ($offloaded + 1)
        # A reset the kernel takes as exact closes the entry at once; one it doubts (a challenge
        # ACK may follow) keeps it for conntrack's close timeout (10 s) before it goes.
        Wait-AllGone
        Wait-GlassCondition -TimeoutSeconds 10 -Because 'the controller to free every port' { (Get-GlassE2EControllerStatus -Net $Net).PortsInUse -eq 0 } | Out-Null
        $status = Get-GlassTranslatorStatus -ControlSocket $Router.ControlSocket
        $status.SessionsByState.TimeWait | Should -Be 0
        # Ended by the entry's own reset and destroy events, which came after its announcement.
        $status.StaleKernelEvents | Should -Be 0
    }

    It 'keeps a transfer going across a translator restart, and the new translator adopts it' {
        Set-Content -LiteralPath $Hold -Value 'hold'
        $send = Start-Send -Bytes 2G -Seed 9
        Wait-Offloaded $send | Out-Null
        $translator = $Router.Process[0]
        Stop-GlassNetProcess -Process $translator -Signal TERM -TimeoutSeconds 10
        $translator.HasExited | Should -BeTrue
        # Kept for the next translator: the entry and the rules that make the kernel use it.
        @(Get-GlassE2EOffloadEntry -Net $Net) | Should -HaveCount 1
        @(Get-GlassE2ERouterRule -Net $Net).Count | Should -BeGreaterThan 0

        # The next translator is told to clean up when it stops.
        $config = Join-Path $Net.TempDirectory 'router-nokeep.yaml'
        (Get-Content $Router.ConfigPath) -replace '^keepSessions: .*', 'keepSessions: false' | Set-Content $config
        $script:Translator2 = Start-GlassE2ETranslator -Net $Net -ConfigPath $config
        (Get-GlassTranslatorStatus -ControlSocket $Router.ControlSocket).SessionsAdopted | Should -Be 1
        Remove-Item -LiteralPath $Hold

        Wait-GlassNetProcess -Process $send -TimeoutSeconds 170 | Should -Be 0 -Because $send.ReadStderr()
        $sent = ConvertFrom-GlassE2EPeerOutput $send.ReadStdout()
        $sent.received | Should -Be 256MB
        $served = Wait-GlassCondition -TimeoutSeconds 30 -Because 'the server to report the connection' {
            $Serve.ReadStdout() -split "`n" | Where-Object { $_ } | ForEach-Object { $_ | ConvertFrom-Json } | Where-Object receivedSha256 -eq $sent.sentSha256
        }
        $served.received | Should -Be 2GB
        $sent.receivedSha256 | Should -Be $served.sentSha256
        Wait-AllGone
    }

    It 'leaves no rule, no entry and the kernel settings as they were when stopped' {
        Set-Content -LiteralPath $Hold -Value 'hold'
        $send = Start-Send -Bytes 1G -Seed 11
        Wait-Offloaded $send | Out-Null
        Stop-GlassNetProcess -Process $Translator2 -Signal TERM -TimeoutSeconds 10
        Get-GlassE2ERouterRule -Net $Net | Should -HaveCount 0
        Get-GlassE2EOffloadEntry -Net $Net | Should -HaveCount 0
        Get-Sysctl net.ipv4.ip_forward | Should -Be $Before.Forward
        Get-Sysctl net.netfilter.nf_conntrack_acct | Should -Be $Before.Acct
        # The live session ends with a reset both sides see, not a hang.
        Wait-GlassNetProcess -Process $send -TimeoutSeconds 60 | Should -Be 1
        $send.ReadStderr() | Should -Match 'reset|closed'
        Remove-Item -LiteralPath $Hold
    }

    It 'keeps an offloaded transfer going when the translator is killed, and the next one takes over, says so and cleans up' {
        $running = @(Get-GlassE2ERouterRule -Net $Net).Count
        $running | Should -Be 0
        $config = Join-Path $Net.TempDirectory 'router-nokeep.yaml'
        $killed = Start-GlassE2ETranslator -Net $Net -ConfigPath $config -Name translator-killed
        $rules = @(Get-GlassE2ERouterRule -Net $Net).Count
        Set-Content -LiteralPath $Hold -Value 'hold'
        $send = Start-Send -Bytes 512M -Seed 13
        Wait-Offloaded $send | Out-Null
        Stop-GlassNetProcess -Process $killed -Signal KILL -TimeoutSeconds 10
        $killed.HasExited | Should -BeTrue
        # Nothing cleaned up, so the kernel carries the flow on by itself.
        @(Get-GlassE2ERouterRule -Net $Net).Count | Should -Be $rules
        Remove-Item -LiteralPath $Hold
        Wait-GlassCondition -TimeoutSeconds 60 -Because 'the flow to move with no translator at all' {
            if ($send.HasExited) { return $true }
            $e = @(Get-GlassE2EOffloadEntry -Net $Net)
            $e.Count -eq 1 -and $e[0] -match 'bytes=(\d+)' -and [long]$Matches[1] -gt 64MB
        } | Out-Null

        $next = Start-GlassE2ETranslator -Net $Net -ConfigPath $config -Name translator-after-kill
        $said = "$($next.ReadStdout()) $($next.ReadStderr())"
        $said | Should -Match "pid $($killed.Pid)\) did not stop cleanly"
        @(Get-GlassE2ERouterRule -Net $Net).Count | Should -Be $rules -Because 'exactly one set of rules remains'
        Wait-GlassNetProcess -Process $send -TimeoutSeconds 170 | Should -Be 0 -Because $send.ReadStderr()
        $sent = ConvertFrom-GlassE2EPeerOutput $send.ReadStdout()
        $served = Wait-GlassCondition -TimeoutSeconds 30 -Because 'the server to report the connection' {
            $Serve.ReadStdout() -split "`n" | Where-Object { $_ } | ForEach-Object { $_ | ConvertFrom-Json } | Where-Object receivedSha256 -eq $sent.sentSha256
        }
        $served.received | Should -Be 512MB
        $sent.receivedSha256 | Should -Be $served.sentSha256

        # A second translator on the same queue cannot start (the queue is bound), and must leave
        # alone the running one's record of what it changed: killed next, that one leaves it to
        # the next start, whose stop then puts the originals back.
        $duplicate = Start-GlassE2EPwsh -Net $Net -Namespace router -Script 'examples/router.ps1' -ArgumentList @(
            '-ConfigPath', $config, '-Role', 'Translator', '-ReadyFile', (Join-Path $Net.TempDirectory 'duplicate.ready'))
        Wait-GlassNetProcess -Process $duplicate -TimeoutSeconds 60 | Should -Not -Be 0
        Stop-GlassNetProcess -Process $next -Signal KILL -TimeoutSeconds 10
        $last = Start-GlassE2ETranslator -Net $Net -ConfigPath $config -Name translator-after-duplicate
        "$($last.ReadStdout()) $($last.ReadStderr())" | Should -Match "pid $($next.Pid)\) did not stop cleanly"

        # The killed translators' kernel settings were taken over, so this stop restores the originals.
        Stop-GlassNetProcess -Process $last -Signal TERM -TimeoutSeconds 10
        Get-GlassE2ERouterRule -Net $Net | Should -HaveCount 0
        Get-Sysctl net.ipv4.ip_forward | Should -Be $Before.Forward
        Get-Sysctl net.netfilter.nf_conntrack_acct | Should -Be $Before.Acct
    }

    It 'relays every segment itself with offload: none' {
        Stop-GlassNetProcess -Process $Router.Process -Signal TERM -TimeoutSeconds 10
        $router = Start-GlassE2ERouter -Net $Net -Separate -Offload none -ControllerPort 7001
        $serve = Start-GlassE2EServer -Net $Net -Bytes 16MB -Seed 2 -Port 9001
        $binding = Start-GlassE2EBinding -Net $Net -Router $router -LocalPort 9001
        Start-GlassE2EChannel -Net $Net -Router $router -ChannelId $binding.ChannelId -LocalPort 5556 | Out-Null
        $out = Invoke-GlassNetCommand -Net $Net -Namespace hostA -FilePath $Dotnet -TimeoutSeconds 120 -ArgumentList @(
            $Peer, 'send', '--connect', '127.0.0.1:5556', '--bytes', '16M', '--seed', '3', '--timeout', '100')
        $sent = ConvertFrom-GlassE2EPeerOutput $out
        Wait-GlassNetProcess -Process $serve -TimeoutSeconds 30 | Should -Be 0
        (ConvertFrom-GlassE2EPeerOutput $serve.ReadStdout()).receivedSha256 | Should -Be $sent.sentSha256
        $status = Get-GlassTranslatorStatus -ControlSocket $router.ControlSocket
        $status.OffloadedTotal | Should -Be 0
        $status.BytesRelayed | Should -BeGreaterOrEqual 32MB
        Get-GlassE2EOffloadEntry -Net $Net | Should -HaveCount 0
        Stop-GlassNetProcess -Process $router.Process -Signal TERM -TimeoutSeconds 10
    }

    It 'resets the applications of a userspace session at once when a fail-open translator is killed' {
        $router = Start-GlassE2ERouter -Net $Net -Separate -Offload none -ControllerPort 7002 -FailOpen
        $translator = $router.Process[0]
        @(Get-GlassE2ERouterRule -Net $Net) -match 'queue-bypass' | Should -Not -BeNullOrEmpty
        $hold = Join-Path $Net.TempDirectory 'failopen.hold'
        Set-Content -LiteralPath $hold -Value 'hold'
        $serve = Start-GlassE2EServer -Net $Net -Bytes 64MB -Seed 2 -Port 9003 -HoldFile $hold
        $binding = Start-GlassE2EBinding -Net $Net -Router $router -LocalPort 9003
        Start-GlassE2EChannel -Net $Net -Router $router -ChannelId $binding.ChannelId -LocalPort 5558 | Out-Null
        $send = Start-GlassNetProcess -Net $Net -Namespace hostA -FilePath $Dotnet -ArgumentList @(
            $Peer, 'send', '--connect', '127.0.0.1:5558', '--bytes', '64M', '--seed', '15', '--timeout', '170')
        Wait-GlassCondition -TimeoutSeconds 60 -Because 'a userspace session to carry data' {
            if ($send.HasExited) { throw "send ended early: $($send.ReadStderr())" }
            @(Get-GlassSession -ControlSocket $router.ControlSocket | Where-Object { -not $_.Offloaded -and $_.BytesFromA -gt 0 }).Count -gt 0
        } | Out-Null
        Stop-GlassNetProcess -Process $translator -Signal KILL -TimeoutSeconds 10
        Remove-Item -LiteralPath $hold
        # The router's own stack answers both peers' next segments with resets: no hang.
        Wait-GlassNetProcess -Process $send -TimeoutSeconds 60 | Should -Be 1
        $send.ReadStderr() | Should -Match 'reset|closed'
        Wait-GlassNetProcess -Process $serve -TimeoutSeconds 60 | Should -Be 1
        Stop-GlassNetProcess -Process $router.Process[1] -Signal TERM -TimeoutSeconds 10
        # What the killed one left goes with the next translator's clean stop.
        $next = Start-GlassE2ETranslator -Net $Net -ConfigPath $router.ConfigPath -Name translator-failopen-2
        "$($next.ReadStdout()) $($next.ReadStderr())" | Should -Match 'rule\(s\) of an earlier translator on queue 6 that did not stop cleanly'
        Stop-GlassNetProcess -Process $next -Signal TERM -TimeoutSeconds 10
        Get-GlassE2ERouterRule -Net $Net | Should -HaveCount 0
    }

    It 'takes back what an offloading translator kept when the next one on its queue does not offload' {
        # (router.yaml has been rewritten by the routers started since: the settings are set here.)
        $keeps = Join-Path $Net.TempDirectory 'router-keeps.yaml'
        (Get-Content $Router.ConfigPath) -replace '^offload: .*', 'offload: kernel' -replace '^keepSessions: .*', 'keepSessions: true' -replace '^failOpen: .*', 'failOpen: false' | Set-Content $keeps
        $kept = Start-GlassE2ETranslator -Net $Net -ConfigPath $keeps -Name translator-keeps
        Stop-GlassNetProcess -Process $kept -Signal TERM -TimeoutSeconds 10
        # Kept for a next translator that offloads: its rules (the nat hooks, the forwarding guard).
        @(Get-GlassE2ERouterRule -Net $Net) -match '^-A POSTROUTING .*-j ACCEPT$' | Should -HaveCount 1

        $config = Join-Path $Net.TempDirectory 'router-none-after-keep.yaml'
        (Get-Content $keeps) -replace '^offload: .*', 'offload: none' -replace '^keepSessions: .*', 'keepSessions: false' | Set-Content $config
        $next = Start-GlassE2ETranslator -Net $Net -ConfigPath $config -Name translator-none-after-keep
        # This one does not offload: forwarding and accounting go back now, and the nat hooks and
        # the guard with them, not when it stops.
        Get-Sysctl net.ipv4.ip_forward | Should -Be $Before.Forward
        Get-Sysctl net.netfilter.nf_conntrack_acct | Should -Be $Before.Acct
        # (Its own tun device's rules aside.)
        @(Get-GlassE2ERouterRule -Net $Net) -notmatch ' -i glass\d+ ' -match '-j ACCEPT$|^-A FORWARD ' | Should -HaveCount 0
        @(Get-GlassE2ERouterRule -Net $Net) -match 'NFQUEUE --queue-num 6' | Should -Not -BeNullOrEmpty
        Stop-GlassNetProcess -Process $next -Signal TERM -TimeoutSeconds 10
        Get-GlassE2ERouterRule -Net $Net | Should -HaveCount 0
    }
}
