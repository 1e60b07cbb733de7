# Pester 5 tests of the network-namespace harness itself, with real traffic and no glass code:
# glass-testpeer serve in the router namespace, glass-testpeer send from behind both NATs.

BeforeAll {
    # The test peer under use; the build script may point this at another build via GLASS_TESTPEER.
    $TestPeerDll = if ($env:GLASS_TESTPEER) { $env:GLASS_TESTPEER } else {
        Join-Path $PSScriptRoot '../Glass.TestPeer/bin/Debug/net10.0/glass-testpeer.dll'
    }
    Import-Module (Join-Path $PSScriptRoot 'GlassTestNet.psm1') -Force
}

BeforeDiscovery {
    Import-Module (Join-Path $PSScriptRoot 'GlassTestNet.psm1') -Force
    $script:SkipReason = Test-GlassNetPrerequisite
    if ($script:SkipReason) { Write-Warning "GlassTestNet tests skipped: $script:SkipReason" }
}

Describe "GlassTestNet harness$(if ($SkipReason) { " (skipped: $SkipReason)" })" -Skip:([bool]$SkipReason) {
    BeforeAll {
        if (-not (Test-Path -LiteralPath $TestPeerDll)) {
            throw "glass-testpeer not found at $TestPeerDll; build it first (dotnet build tests/Glass.TestPeer) or set GLASS_TESTPEER."
        }
        $TestPeerDll = (Resolve-Path -LiteralPath $TestPeerDll).Path
        $dotnet = (Get-Command dotnet -CommandType Application -ErrorAction Ignore | Select-Object -First 1).Source
        if (-not $dotnet) { $dotnet = [Environment]::ProcessPath }

        function ConvertFrom-PeerOutput([string]$Text) {
            @($Text -split "`n" | Where-Object { $_.Trim().StartsWith('{') } | ForEach-Object { $_ | ConvertFrom-Json })
        }

        $script:Net = New-GlassTestNet
        $net = $script:Net

        # Captures first, so that they see the whole exchange.
        $hostBCapture = Start-GlassCapture -Net $net -Namespace hostB
        $routerCapture = Start-GlassCapture -Net $net -Namespace router -Interface br0

        $ready = Join-Path $net.TempDirectory 'serve.ready'
        $serve = Start-GlassNetProcess -Net $net -Namespace router -FilePath $dotnet -ArgumentList @(
            $TestPeerDll, 'serve', '--listen', "$($net.RouterAddress):9000", '--bytes', '8M', '--seed', '200',
            '--count', '2', '--ready-file', $ready, '--timeout', '60')
        Wait-GlassCondition -TimeoutSeconds 30 -Because 'glass-testpeer serve to listen in the router namespace' {
            if ($serve.HasExited) { throw "glass-testpeer serve exited early ($($serve.ExitCode)): $($serve.ReadStderr())" }
            Test-Path -LiteralPath $ready
        } | Out-Null

        # hostA: the 8 MiB exchange under test. hostB: a small exchange, so that the hostB
        # capture demonstrably works (positive control) while it must not see hostA's traffic.
        $sendA = ConvertFrom-PeerOutput (Invoke-GlassNetCommand -Net $net -Namespace hostA -FilePath $dotnet -TimeoutSeconds 90 -ArgumentList @(
                $TestPeerDll, 'send', '--connect', "$($net.RouterAddress):9000", '--bytes', '8M', '--seed', '100', '--timeout', '60'))
        $sendB = ConvertFrom-PeerOutput (Invoke-GlassNetCommand -Net $net -Namespace hostB -FilePath $dotnet -TimeoutSeconds 90 -ArgumentList @(
                $TestPeerDll, 'send', '--connect', "$($net.RouterAddress):9000", '--bytes', '64K', '--seed', '300', '--timeout', '60'))

        $serveExit = Wait-GlassNetProcess -Process $serve -TimeoutSeconds 30
        $served = ConvertFrom-PeerOutput $serve.ReadStdout()
        $servedA = $served | Where-Object { $_.receivedSha256 -eq $sendA[0].sentSha256 }
        $servedB = $served | Where-Object { $_.receivedSha256 -eq $sendB[0].sentSha256 }

        $hostBSeen = Stop-GlassCapture $hostBCapture
        $routerSeen = Stop-GlassCapture $routerCapture
    }

    AfterAll {
        if ($script:Net) {
            $script:NetProcesses = @($script:Net.Processes)
            Remove-GlassTestNet -Net $script:Net
        }
    }

    It 'names the namespaces uniquely with the net Id' {
        $net.Id | Should -Match '^[0-9a-f]{6}$'
        $net.Namespaces | Should -HaveCount 5
        foreach ($ns in $net.Namespaces) { $ns | Should -Match "^glass-(router|nata|hosta|natb|hostb)-$($net.Id)$" }
    }

    It 'gives hostA only its private address and a default route via NAT A' {
        $addr = Invoke-GlassNetCommand -Net $net -Namespace hostA -FilePath ip -ArgumentList '-4', '-o', 'addr', 'show', 'dev', 'eth0'
        $addr | Should -Match '192\.168\.1\.2/24'
        $route = Invoke-GlassNetCommand -Net $net -Namespace hostA -FilePath ip -ArgumentList '-4', 'route', 'show', 'default'
        $route | Should -Match 'default via 192\.168\.1\.1'
    }

    It 'runs the serve process itself under the recorded pid (ip netns exec execs in place)' {
        $serve.Pid | Should -BeGreaterThan 0
        $serve.Process.Id | Should -Be $serve.Pid
        $serveExit | Should -Be 0 -Because $serve.ReadStderr()
    }

    It 'moves 8 MiB each way between hostA and the router with cross-matching hashes' {
        $sendA | Should -HaveCount 1
        $servedA | Should -HaveCount 1
        $sendA[0].sent | Should -Be 8MB
        $sendA[0].received | Should -Be 8MB
        $servedA.sent | Should -Be 8MB
        $servedA.received | Should -Be 8MB
        $servedA.receivedSha256 | Should -Be $sendA[0].sentSha256
        $servedA.sentSha256 | Should -Be $sendA[0].receivedSha256
        $sendA[0].sentSha256 | Should -Not -Be $sendA[0].receivedSha256
    }

    It 'shows the server NAT A''s public address, never hostA''s private one' {
        $servedA.remote | Should -Match '^203\.0\.113\.2:\d+$'
        $served.remote | Should -Not -Match '^192\.168\.'
        $sendA[0].remote | Should -Be '203.0.113.1:9000'
        $sendA[0].local | Should -Match '^192\.168\.1\.2:\d+$'
    }

    It 'NATs hostB behind 203.0.113.3' {
        $servedB | Should -HaveCount 1
        $servedB.remote | Should -Match '^203\.0\.113\.3:\d+$'
        $servedB.sentSha256 | Should -Be $sendB[0].receivedSha256
    }

    It 'with --digest xxh3 (the benchmark''s), cross-matches both ways and tells apart the streams of other seeds' {
        $ready = Join-Path $Net.TempDirectory 'fast.ready'
        $fast = Start-GlassNetProcess -Net $Net -Namespace router -FilePath $dotnet -ArgumentList @(
            $TestPeerDll, 'serve', '--listen', '127.0.0.1:9100', '--bytes', '3M', '--seed', '7', '--count', '2',
            '--digest', 'xxh3', '--ready-file', $ready, '--timeout', '60')
        Wait-GlassCondition -TimeoutSeconds 30 -Because 'the xxh3 server to listen' {
            if ($fast.HasExited) { throw "glass-testpeer serve exited early ($($fast.ExitCode)): $($fast.ReadStderr())" }
            Test-Path -LiteralPath $ready
        } | Out-Null
        $sends = foreach ($seed in 8, 9) {
            ConvertFrom-PeerOutput (Invoke-GlassNetCommand -Net $Net -Namespace router -FilePath $dotnet -TimeoutSeconds 90 -ArgumentList @(
                    $TestPeerDll, 'send', '--connect', '127.0.0.1:9100', '--bytes', '5M', '--seed', "$seed", '--digest', 'xxh3'))
        }
        Wait-GlassNetProcess -Process $fast -TimeoutSeconds 30 | Should -Be 0
        $servedFast = ConvertFrom-PeerOutput $fast.ReadStdout()
        $sends | Should -HaveCount 2
        $servedFast | Should -HaveCount 2
        foreach ($s in $sends) {
            $s.sent | Should -Be 5MB
            $s.sentXxh3 | Should -Match '^[0-9a-f]{16}$'
            $s.PSObject.Properties.Name | Should -Not -Contain 'sentSha256'
            $match = @($servedFast | Where-Object receivedXxh3 -eq $s.sentXxh3)
            $match | Should -HaveCount 1
            $match[0].received | Should -Be 5MB
            $s.receivedXxh3 | Should -Be $match[0].sentXxh3
        }
        $sends[0].sentXxh3 | Should -Not -Be $sends[1].sentXxh3
    }

    It 'captures only translated addresses on the public segment' {
        $routerSeen.PacketCount | Should -BeGreaterThan 10
        $routerSeen.Addresses | Should -Contain '203.0.113.1'
        $routerSeen.Addresses | Should -Contain '203.0.113.2'
        $routerSeen.Addresses | Should -Contain '203.0.113.3'
        $routerSeen.Addresses | Where-Object { $_ -like '192.168.*' } | Should -BeNullOrEmpty
    }

    It 'sees none of hostA''s traffic in a capture on hostB' {
        # Positive control: the capture works and sees hostB's own exchange.
        $hostBSeen.PacketCount | Should -BeGreaterThan 0
        $hostBSeen.Addresses | Should -Contain '192.168.2.2'
        $hostBSeen.Addresses | Should -Not -Contain '192.168.1.2'
        $hostBSeen.Addresses | Should -Not -Contain '203.0.113.2'
    }

    It 'starts a child pwsh as its own process (no wrapper) via Get-GlassPwshCommand' {
        $pwsh = Get-GlassPwshCommand
        $pwsh.FilePath | Should -Be ([Environment]::ProcessPath)
        $child = Start-GlassNetProcess -Net $net -Namespace hostB -FilePath $pwsh.FilePath -ArgumentList (
            @($pwsh.ArgumentList) + @('-NoProfile', '-NonInteractive', '-Command', '$PID'))
        Wait-GlassNetProcess -Process $child -TimeoutSeconds 60 | Should -Be 0
        $child.ReadStdout().Trim() | Should -Be ([string]$child.Pid)
    }
}

Describe 'GlassTestNet teardown' -Skip:([bool]$SkipReason) {
    It 'removed every namespace and stopped every process of the net' {
        $script:Net | Should -Not -BeNullOrEmpty -Because 'the harness block must have created a net (see its failure)'
        $left = @(& ip netns list | ForEach-Object { ($_ -split '\s+')[0] })
        foreach ($ns in $script:Net.Namespaces) { $left | Should -Not -Contain $ns }
        $script:NetProcesses | Should -Not -BeNullOrEmpty
        foreach ($p in $script:NetProcesses) { $p.Process.HasExited | Should -BeTrue -Because "pid $($p.Pid) was started for the net" }
        Test-Path -LiteralPath $script:Net.TempDirectory | Should -BeFalse
    }

    It 'is idempotent' {
        { Remove-GlassTestNet -Net $script:Net -WarningAction Stop } | Should -Not -Throw
    }
}

Describe 'GlassTestNet helpers without a network' {
    It 'Wait-GlassCondition returns the first truthy value and times out with the documented message' {
        Wait-GlassCondition -TimeoutSeconds 5 -Because 'a value' { 42 } | Should -Be 42
        $script:polls = 0
        Wait-GlassCondition -TimeoutSeconds 5 -Because 'three polls' { (++$script:polls) -ge 3 } | Should -BeTrue
        $script:polls | Should -Be 3
        { Wait-GlassCondition -TimeoutSeconds 0.2 -Because 'nothing' { $false } } |
            Should -Throw 'Timed out after 0.2 s waiting for nothing'
        { Wait-GlassCondition -TimeoutSeconds 5 -Because 'a failing probe' { throw 'probe broke' } } |
            Should -Throw 'probe broke'
    }

    It 'Get-GlassPwshCommand names this process''s executable and, under the dotnet host, pwsh.dll' {
        $pwsh = Get-GlassPwshCommand
        $pwsh.FilePath | Should -Be ([Environment]::ProcessPath)
        if ([System.IO.Path]::GetFileNameWithoutExtension($pwsh.FilePath) -eq 'dotnet') {
            $pwsh.ArgumentList | Should -HaveCount 1
            $pwsh.ArgumentList[0] | Should -BeLike '*pwsh.dll'
        }
        else {
            $pwsh.ArgumentList | Should -HaveCount 0
        }
    }
}
