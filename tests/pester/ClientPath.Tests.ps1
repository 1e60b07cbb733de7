# The client path: small exchanges and many short connections through Connect-GlassChannel's
# local port and through a router endpoint dialled directly, behind real NATs, every byte checked.

BeforeDiscovery {
    Import-Module (Join-Path $PSScriptRoot 'GlassTestNet.psm1') -Force
    $script:SkipReason = Test-GlassNetPrerequisite
}

Describe "Round trips and setups through the clients$(if ($SkipReason) { " (skipped: $SkipReason)" })" -Skip:([bool]$SkipReason) {
    BeforeAll {
        Import-Module (Join-Path $PSScriptRoot 'GlassTestNet.psm1') -Force
        Import-Module (Join-Path $PSScriptRoot 'GlassE2E.psm1') -Force
        $script:Net = New-GlassTestNet
        $script:Dotnet = Get-GlassE2EDotnet
        $script:Peer = Get-GlassE2ETestPeer
        $script:Router = Start-GlassE2ERouter -Net $Net -PortRange 60000-60499 -TimeWaitSeconds 2 -MetricsPort 9464
        $script:EchoServer = Start-GlassE2EEchoServer -Net $Net
        $script:Binding = Start-GlassE2EBinding -Net $Net -Router $Router
        $script:Channel = Start-GlassE2EChannel -Net $Net -Router $Router -ChannelId $Binding.ChannelId -LocalPort 5555

        function Invoke-Peer([string[]] $Arguments, [int] $TimeoutSeconds = 240) {
            $out = Invoke-GlassNetCommand -Net $Net -Namespace hostA -FilePath $Dotnet -TimeoutSeconds $TimeoutSeconds -ArgumentList (@($Peer) + $Arguments)
            $out.Trim() | ConvertFrom-Json
        }
    }

    AfterAll {
        Remove-GlassTestNet -Net $script:Net
    }

    It 'echoes 2,000 round trips of <Size> bytes through the local port, each intact' -ForEach @(@{ Size = 64 }, @{ Size = 16384 }) {
        $r = Invoke-Peer @('echo', '--connect', '127.0.0.1:5555', '--size', "$Size", '--count', '2000', '--timeout', '200')
        $r.count | Should -Be 2000
        $r.failures | Should -Be 0
    }

    It 'echoes 2,000 round trips of <Size> bytes through a router endpoint dialled directly' -ForEach @(@{ Size = 64 }, @{ Size = 16384 }) {
        $endpoint = Get-GlassE2EEndpoint -Net $Net -Router $Router -ChannelId $Binding.ChannelId
        $endpoint | Should -BeLike "$($Net.RouterAddress):*"
        $r = Invoke-Peer @('echo', '--connect', $endpoint, '--size', "$Size", '--count', '2000', '--timeout', '200')
        $r.count | Should -Be 2000
        $r.failures | Should -Be 0
    }

    It 'sets up 2,000 connections in a row through the local port, every one answered' {
        $r = Invoke-Peer @('setups', '--connect', '127.0.0.1:5555', '--count', '2000', '--timeout', '400') -TimeoutSeconds 420
        $r.ok | Should -Be 2000
        $r.failed | Should -Be 0
        # Every session ends after its short linger, and every router port is free again.
        Wait-GlassCondition -TimeoutSeconds 60 -Because 'every session to end' {
            @(Get-GlassSession -ControlSocket $Router.ControlSocket).Count -eq 0
        } | Out-Null
        # The controller frees ports when the translator reports each end.
        Wait-GlassCondition -TimeoutSeconds 10 -Because 'the controller to free every port' { (Get-GlassE2EControllerStatus -Net $Net).PortsInUse -eq 0 } | Out-Null
    }

    It 'exports what crossed to Prometheus, from the translator and the controller in one endpoint' {
        # Scraped from inside the router's namespace, by the address it listens on (loopback by default).
        $scrape = 'exec 3<>/dev/tcp/127.0.0.1/9464 && printf ''GET /metrics HTTP/1.0\r\nHost: 127.0.0.1:9464\r\n\r\n'' >&3 && cat <&3'
        $text = Invoke-GlassNetCommand -Net $Net -Namespace router -FilePath bash -TimeoutSeconds 30 -ArgumentList @('-c', $scrape)
        $text | Should -Match 'HTTP/1\.\d 200'
        $value = { param($series) if ($text -match "(?m)^$([regex]::Escape($series)) (\S+)") { [double]$Matches[1] } else { throw "no series $series in the scrape" } }
        # The tests before this one made 2,000 setups and 4 echo connections through this router.
        & $value 'glass_controller_connects_total' | Should -BeGreaterOrEqual 2004
        & $value 'glass_translator_offloaded_total' | Should -BeGreaterOrEqual 2004
        & $value 'glass_translator_sessions_created_total' | Should -BeGreaterOrEqual 2004
        & $value 'glass_controller_bindings' | Should -Be 1
        & $value 'glass_controller_ports_in_use' | Should -Be 0
        $text | Should -Match '(?m)^glass_translator_drops_total\{reason="WaitingForPeer"\} \d+'
        $text | Should -Match '(?m)^glass_translator_sessions\{state="Established"\} \d+'
    }

    It 'carries one connection over standard input and output, as ssh''s ProxyCommand uses it' {
        $in = Join-Path $Net.TempDirectory 'stdio.in'
        $out = Join-Path $Net.TempDirectory 'stdio.out'
        $err = Join-Path $Net.TempDirectory 'stdio.err'
        $bytes = [byte[]]::new(3MB); [System.Random]::new(7).NextBytes($bytes)
        [System.IO.File]::WriteAllBytes($in, $bytes)
        $pwsh = Get-GlassPwshCommand
        $command = "Import-Module '$(Get-GlassE2EModule)'; Connect-GlassChannel -Id $($Binding.ChannelId) -Router $($Router.Address) -Stdio"
        $line = "$($pwsh.FilePath) $($pwsh.ArgumentList -join ' ') -NoProfile -NonInteractive -Command `"$command`" < $in > $out 2> $err; echo exit=`$?"
        $status = Invoke-GlassNetCommand -Net $Net -Namespace hostA -FilePath sh -TimeoutSeconds 120 -ArgumentList @('-c', $line)
        $status | Should -Match 'exit=0'
        Get-Content $err -Raw | Should -BeNullOrEmpty
        # The echo server behind NAT B sent every byte back, and nothing else reached stdout.
        (Get-Item $out).Length | Should -Be $bytes.Length
        (Get-FileHash $out -Algorithm SHA256).Hash | Should -Be (Get-FileHash $in -Algorithm SHA256).Hash
    }

    It 'says so when a forwarder runs out of file descriptors, and serves again once connections close' {
        # A second forwarder, with an open-files limit of 512 (what a careless service unit might get).
        $ready = Join-Path $Net.TempDirectory 'channel-5556.ready'
        $pwsh = Get-GlassPwshCommand
        $env:GLASS_MODULE = Get-GlassE2EModule
        $small = Start-GlassNetProcess -Net $Net -Namespace hostA -FilePath prlimit -ArgumentList (@('--nofile=512:512', $pwsh.FilePath) + @($pwsh.ArgumentList) + @(
                '-NoProfile', '-NonInteractive', '-File', (Join-Path $PSScriptRoot '../../examples/connect.ps1'),
                '-Router', $Router.Address, '-Id', $Binding.ChannelId, '-LocalPort', '5556', '-ReadyFile', $ready))
        Wait-GlassCondition -TimeoutSeconds 60 -Because 'the forwarder with few descriptors to listen' {
            if ($small.HasExited) { throw "the forwarder exited: $($small.ReadStderr())" }
            Test-Path -LiteralPath $ready
        } | Out-Null
        try {
            # 300 idle connections at once: more than the ~330 descriptors left after pwsh's own (each takes two).
            $release = Join-Path $Net.TempDirectory 'release-5556'
            $null = New-Item -ItemType File -Path $release
            $holder = Start-GlassNetProcess -Net $Net -Namespace hostA -FilePath $pwsh.FilePath -ArgumentList (@($pwsh.ArgumentList) + @(
                    '-NoProfile', '-NonInteractive', '-Command',
                    "`$s = 1..300 | ForEach-Object { `$c = [Net.Sockets.Socket]::new('InterNetwork', 'Stream', 'Tcp'); `$c.Connect('127.0.0.1', 5556); `$c }; 'open'; " +
                    "`$deadline = [DateTime]::UtcNow.AddSeconds(90); while ((Test-Path '$release') -and [DateTime]::UtcNow -lt `$deadline) { Start-Sleep -Milliseconds 50 }; `$s | ForEach-Object { `$_.Dispose() }; 'closed'"))
            Wait-GlassCondition -TimeoutSeconds 60 -Because 'the forwarder to report that it is out of descriptors' {
                if ($small.HasExited) { throw "the forwarder exited: $($small.ReadStderr())" }
                ($small.ReadStdout() + $small.ReadStderr()) -match 'out of file descriptors'
            } | Out-Null
            $said = $small.ReadStdout() + $small.ReadStderr()
            $said | Should -Match 'open-files limit is 512'
            $said | Should -Match 'ulimit -n|LimitNOFILE'
            Remove-Item $release
            Wait-GlassNetProcess -Process $holder -TimeoutSeconds 60 | Should -Be 0
            # Still running, and serving: a round trip through it once the descriptors came back.
            $r = Wait-GlassCondition -TimeoutSeconds 60 -Because 'the forwarder to serve again' {
                try { Invoke-Peer @('echo', '--connect', '127.0.0.1:5556', '--size', '64', '--count', '20', '--timeout', '20') -TimeoutSeconds 30 } catch { $null }
            }
            $r.count | Should -Be 20
            $r.failures | Should -Be 0
            $small.HasExited | Should -BeFalse
        }
        finally {
            Stop-GlassNetProcess -Process $small -Signal TERM -TimeoutSeconds 10
        }
    }

    It 'resets a local connection that gets no router endpoint, and says why' {
        Stop-GlassNetProcess -Process $Binding.Process -Signal TERM -TimeoutSeconds 10
        # The binder said BYE: the channel is gone, so the forwarder cannot get an endpoint.
        $out = Invoke-GlassNetCommand -Net $Net -Namespace hostA -FilePath sh -TimeoutSeconds 60 -ArgumentList @(
            '-c', "$Dotnet $Peer setups --connect 127.0.0.1:5555 --count 1 --timeout 30 2>&1; echo exit=`$?")
        $out | Should -Match 'exit=1'
        $out | Should -Match 'reset'
        Wait-GlassCondition -TimeoutSeconds 30 -Because 'the forwarder to report why' {
            $Channel.ReadStdout() + $Channel.ReadStderr() -match 'unknown-channel|binder-unavailable'
        } | Out-Null
    }
}
