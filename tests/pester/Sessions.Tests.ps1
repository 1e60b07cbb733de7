# The life of spliced connections through the real router: many at once from one NATed
# address, half-close, and reset, with the translator's session table checked afterwards.

BeforeDiscovery {
    Import-Module (Join-Path $PSScriptRoot 'GlassTestNet.psm1') -Force
    $script:SkipReason = Test-GlassNetPrerequisite
}

Describe "Spliced sessions$(if ($SkipReason) { " (skipped: $SkipReason)" })" -Skip:([bool]$SkipReason) {
    BeforeAll {
        Import-Module (Join-Path $PSScriptRoot 'GlassTestNet.psm1') -Force
        Import-Module (Join-Path $PSScriptRoot 'GlassE2E.psm1') -Force
        $script:Net = New-GlassTestNet
        # A short linger so that closed sessions leave the table within the test.
        $script:Router = Start-GlassE2ERouter -Net $Net -PortRange 60000-60599 -TimeWaitSeconds 2
        $script:Dotnet = Get-GlassE2EDotnet
        $script:Peer = Get-GlassE2ETestPeer

        function Wait-NoSession([string] $Because) {
            Wait-GlassCondition -TimeoutSeconds 20 -Because $Because {
                @(Get-GlassSession -ControlSocket $Router.ControlSocket).Count -eq 0
            } | Out-Null
        }

        function Start-Pair([int] $ServerPort, [int] $LocalPort, [string[]] $ServeArguments) {
            $ready = Join-Path $Net.TempDirectory "serve-$ServerPort.ready"
            $serve = Start-GlassNetProcess -Net $Net -Namespace hostB -FilePath $Dotnet -ArgumentList (@(
                    $Peer, 'serve', '--listen', "127.0.0.1:$ServerPort", '--ready-file', $ready, '--timeout', '120') + $ServeArguments)
            Wait-GlassCondition -TimeoutSeconds 30 -Because 'the test server to listen' {
                if ($serve.HasExited) { throw "serve exited: $($serve.ReadStderr())" }
                Test-Path $ready
            } | Out-Null
            $binding = Start-GlassE2EBinding -Net $Net -Router $Router -LocalPort $ServerPort
            Start-GlassE2EChannel -Net $Net -Router $Router -ChannelId $binding.ChannelId -LocalPort $LocalPort | Out-Null
            $serve
        }
    }

    AfterAll {
        Remove-GlassTestNet -Net $script:Net
    }

    It 'carries 200 concurrent connections from one NATed host to one channel, each intact' {
        $serve = Start-Pair -ServerPort 9000 -LocalPort 5555 -ServeArguments @('--count', '200', '--bytes', '256K', '--seed', '1000')
        $out = Invoke-GlassNetCommand -Net $Net -Namespace hostA -FilePath $Dotnet -TimeoutSeconds 180 -ArgumentList @(
            $Peer, 'send', '--connect', '127.0.0.1:5555', '--connections', '200', '--bytes', '256K', '--seed', '5000', '--timeout', '150')
        $sent = ConvertFrom-GlassE2EPeerOutput $out
        Wait-GlassNetProcess -Process $serve -TimeoutSeconds 60 | Should -Be 0
        $served = ConvertFrom-GlassE2EPeerOutput $serve.ReadStdout()

        $sent.Count | Should -Be 200
        $served.Count | Should -Be 200
        # Every stream's hash arrives on the other side, once (seeds differ per connection).
        ($sent.sentSha256 | Sort-Object -Unique).Count | Should -Be 200
        Compare-Object ($sent.sentSha256 | Sort-Object) ($served.receivedSha256 | Sort-Object) | Should -BeNullOrEmpty
        Compare-Object ($served.sentSha256 | Sort-Object) ($sent.receivedSha256 | Sort-Object) | Should -BeNullOrEmpty
        Wait-NoSession 'all 200 sessions to be released after their linger'
        $status = Get-GlassTranslatorStatus -ControlSocket $Router.ControlSocket
        Write-Host "Translator after 200 connections: $($status | ConvertTo-Json -Compress)"
        $status.SessionsReleased | Should -BeGreaterOrEqual 200
        $status.Drops.Malformed | Should -Be 0
    }

    It 'propagates a half-close: A stops sending, B still sends 1 MiB, then both see EOF' {
        $serve = Start-Pair -ServerPort 9001 -LocalPort 5556 -ServeArguments @('--count', '1', '--bytes', '1M', '--seed', '7', '--send-after-eof', 'true')
        $out = Invoke-GlassNetCommand -Net $Net -Namespace hostA -FilePath $Dotnet -TimeoutSeconds 60 -ArgumentList @(
            $Peer, 'send', '--connect', '127.0.0.1:5556', '--bytes', '0', '--timeout', '50')
        $sent = ConvertFrom-GlassE2EPeerOutput $out
        Wait-GlassNetProcess -Process $serve -TimeoutSeconds 30 | Should -Be 0
        $served = ConvertFrom-GlassE2EPeerOutput $serve.ReadStdout()

        $served.received | Should -Be 0         # B saw A's EOF before sending anything
        $served.sent | Should -Be 1MB
        $sent.received | Should -Be 1MB          # A, half-closed, still received all of it
        $sent.receivedSha256 | Should -Be $served.sentSha256
        Wait-NoSession 'the half-closed session to be released'
    }

    It 'relays a reset to the other side and drops the session at once' {
        $serve = Start-Pair -ServerPort 9002 -LocalPort 5557 -ServeArguments @('--count', '1', '--bytes', '0')
        Invoke-GlassNetCommand -Net $Net -Namespace hostA -FilePath $Dotnet -TimeoutSeconds 60 -ArgumentList @(
            $Peer, 'send', '--connect', '127.0.0.1:5557', '--abort-after', '64K') | Out-Null
        Wait-GlassNetProcess -Process $serve -TimeoutSeconds 30 | Should -Be 1
        $serve.ReadStderr() | Should -Match 'reset'
        # An established session would otherwise stay for the idle timeout (hours).
        Wait-NoSession 'the reset session to disappear'
    }

    It 'carries path MTU discovery across the splice when a hop on B''s leg has a smaller MTU' {
        # NAT B forwards to host B over a 1280-byte route while every interface stays at 1500:
        # A's full-sized segments reach NAT B, which answers the router "fragmentation needed".
        Invoke-GlassNetCommand -Net $Net -Namespace natB -FilePath ip -ArgumentList @(
            'route', 'change', "$($Net.LanBSubnet)", 'dev', $Net.NatLanInterface, 'proto', 'kernel', 'scope', 'link',
            'src', $Net.NatBLanAddress, 'mtu', '1280') | Out-Null
        $serve = Start-Pair -ServerPort 9003 -LocalPort 5558 -ServeArguments @('--count', '1', '--bytes', '1M', '--seed', '11')
        $out = Invoke-GlassNetCommand -Net $Net -Namespace hostA -FilePath $Dotnet -TimeoutSeconds 90 -ArgumentList @(
            $Peer, 'send', '--connect', '127.0.0.1:5558', '--bytes', '4M', '--seed', '12', '--timeout', '60')
        $sent = ConvertFrom-GlassE2EPeerOutput $out
        Wait-GlassNetProcess -Process $serve -TimeoutSeconds 30 | Should -Be 0
        (ConvertFrom-GlassE2EPeerOutput $serve.ReadStdout()).receivedSha256 | Should -Be $sent.sentSha256
        # A's kernel learnt the smaller MTU from NAT B's error, translated across the splice by the
        # kernel (offloaded session) or the translator (before the hand-off).
        Invoke-GlassNetCommand -Net $Net -Namespace hostA -FilePath ip -ArgumentList @('route', 'get', $Net.RouterAddress) | Should -Match 'mtu 1280'
    }

    It 'relays segments that arrive fragmented, reassembled by the router''s kernel' {
        # Host A sends without DF and NAT A's uplink route takes 1280 bytes, so NAT A fragments.
        Invoke-GlassNetCommand -Net $Net -Namespace hostA -FilePath sysctl -ArgumentList @('-qw', 'net.ipv4.ip_no_pmtu_disc=1') | Out-Null
        # Forget the path MTU host A learnt in the test before, or it never sends a large packet.
        Invoke-GlassNetCommand -Net $Net -Namespace hostA -FilePath ip -ArgumentList @('route', 'flush', 'cache') | Out-Null
        Invoke-GlassNetCommand -Net $Net -Namespace natA -FilePath ip -ArgumentList @(
            'route', 'change', "$($Net.PublicSubnet)", 'dev', $Net.NatPublicInterface, 'proto', 'kernel', 'scope', 'link',
            'src', $Net.NatAPublicAddress, 'mtu', '1280') | Out-Null
        function Get-IpCounter([string] $Namespace, [string] $Name) {
            $lines = (Invoke-GlassNetCommand -Net $Net -Namespace $Namespace -FilePath cat -ArgumentList '/proc/net/snmp') -split "`n" | Where-Object { $_ -like 'Ip:*' }
            $names = $lines[0] -split '\s+'; $values = $lines[1] -split '\s+'
            [long]$values[[array]::IndexOf($names, $Name)]
        }
        $created = Get-IpCounter natA 'FragCreates'
        $reassembled = Get-IpCounter router 'ReasmOKs'

        $serve = Start-Pair -ServerPort 9004 -LocalPort 5559 -ServeArguments @('--count', '1', '--bytes', '64K', '--seed', '13')
        $out = Invoke-GlassNetCommand -Net $Net -Namespace hostA -FilePath $Dotnet -TimeoutSeconds 90 -ArgumentList @(
            $Peer, 'send', '--connect', '127.0.0.1:5559', '--bytes', '4M', '--seed', '14', '--timeout', '60')
        $sent = ConvertFrom-GlassE2EPeerOutput $out
        Wait-GlassNetProcess -Process $serve -TimeoutSeconds 30 | Should -Be 0
        (ConvertFrom-GlassE2EPeerOutput $serve.ReadStdout()).receivedSha256 | Should -Be $sent.sentSha256
        Get-IpCounter natA 'FragCreates' | Should -BeGreaterThan $created -Because 'NAT A must really have fragmented'
        Get-IpCounter router 'ReasmOKs' | Should -BeGreaterThan $reassembled
        (Get-GlassTranslatorStatus -ControlSocket $Router.ControlSocket).Drops.Fragment | Should -Be 0
    }
}
