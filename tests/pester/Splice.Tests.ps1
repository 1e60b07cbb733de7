# End to end: a glass router on a "public" segment, a server behind NAT B bound to a channel,
# a client behind NAT A connecting through Connect-GlassChannel. Every part is the real one.

BeforeDiscovery {
    Import-Module (Join-Path $PSScriptRoot 'GlassTestNet.psm1') -Force
    $script:SkipReason = Test-GlassNetPrerequisite
}

Describe "A splice between two peers behind NATs$(if ($SkipReason) { " (skipped: $SkipReason)" })" -Skip:([bool]$SkipReason) {
    BeforeAll {
        Import-Module (Join-Path $PSScriptRoot 'GlassTestNet.psm1') -Force
        Import-Module (Join-Path $PSScriptRoot 'GlassE2E.psm1') -Force
        $script:Net = New-GlassTestNet
        $net = $script:Net
        # Translator and controller in two processes here; the demo runs them in one.
        $script:Router = Start-GlassE2ERouter -Net $net -Separate
        $bytes = 256MB

        # The server reads nothing until the socket table has been read: flow control then
        # holds A's sender mid-transfer however fast the path is. 256 MiB is more than every
        # socket buffer on the way can take (tcp_rmem may allow 32 MiB a socket: ~110 MiB).
        $hold = Join-Path $net.TempDirectory 'serve.hold'
        Set-Content -LiteralPath $hold -Value 'hold'
        $serve = Start-GlassE2EServer -Net $net -Bytes $bytes -Seed 2 -HoldFile $hold
        $script:Binding = Start-GlassE2EBinding -Net $net -Router $Router
        $channel = Start-GlassE2EChannel -Net $net -Router $Router -ChannelId $Binding.ChannelId -LocalPort 5555

        # Captures behind each NAT see every packet that reaches either peer (headers are enough).
        $captureA = Start-GlassCapture -Net $net -Namespace hostA -SnapLength 128
        $captureB = Start-GlassCapture -Net $net -Namespace hostB -SnapLength 128

        $send = Start-GlassNetProcess -Net $net -Namespace hostA -FilePath (Get-GlassE2EDotnet) -ArgumentList @(
            (Get-GlassE2ETestPeer), 'send', '--connect', '127.0.0.1:5555', '--bytes', "$bytes", '--seed', '1', '--timeout', '120')

        # While bytes cross, look at the router: the translator has the session, the kernel no socket.
        $script:Flowing = Wait-GlassCondition -TimeoutSeconds 60 -Because 'data to flow through the translator' {
            if ($send.HasExited) { throw "glass-testpeer send ended before data was seen flowing: $($send.ReadStderr())" }
            $s = @(Get-GlassSession -ControlSocket $Router.ControlSocket | Where-Object { $_.BytesFromA -gt 0 -and $_.BytesFromB -gt 0 })
            if ($s) { $s }
        }
        $script:RouterSockets = Invoke-GlassNetCommand -Net $net -Namespace router -FilePath ss -ArgumentList '-tanH'
        $script:SendStillRunning = -not $send.HasExited
        Remove-Item -LiteralPath $hold

        $sendExit = Wait-GlassNetProcess -Process $send -TimeoutSeconds 180
        $script:Sent = ConvertFrom-GlassE2EPeerOutput $send.ReadStdout()
        if ($sendExit -ne 0) { throw "glass-testpeer send failed ($sendExit): $($send.ReadStderr())" }
        Wait-GlassNetProcess -Process $serve -TimeoutSeconds 60 | Out-Null
        $script:Served = ConvertFrom-GlassE2EPeerOutput $serve.ReadStdout()

        $script:SeenA = Stop-GlassCapture $captureA
        $script:SeenB = Stop-GlassCapture $captureB
    }

    AfterAll {
        Remove-GlassTestNet -Net $script:Net
    }

    It 'gives the binder a 128-bit channel id' {
        $Binding.ChannelId | Should -Match '^[0-9a-f]{32}$'
    }

    It 'carries 256 MiB from A to B intact' {
        $Sent.sent | Should -Be 256MB
        $Served.received | Should -Be 256MB
        $Served.receivedSha256 | Should -Be $Sent.sentSha256
    }

    It 'carries 256 MiB from B to A intact' {
        $Served.sent | Should -Be 256MB
        $Sent.received | Should -Be 256MB
        $Sent.receivedSha256 | Should -Be $Served.sentSha256
    }

    It 'never shows A''s address to B' {
        $SeenB.PacketCount | Should -BeGreaterThan 1000
        $SeenB.Addresses | Should -Contain $Net.RouterAddress
        $SeenB.Addresses | Should -Not -Contain $Net.NatAPublicAddress
        $SeenB.Addresses | Should -Not -Contain $Net.HostAAddress
    }

    It 'never shows B''s address to A' {
        $SeenA.PacketCount | Should -BeGreaterThan 1000
        $SeenA.Addresses | Should -Contain $Net.RouterAddress
        $SeenA.Addresses | Should -Not -Contain $Net.NatBPublicAddress
        $SeenA.Addresses | Should -Not -Contain $Net.HostBAddress
    }

    It 'splices the two public addresses the controller saw' {
        $Flowing.PeerA | Should -Match "^$([regex]::Escape($Net.NatAPublicAddress)):\d+$"
        $Flowing.PeerB | Should -Match "^$([regex]::Escape($Net.NatBPublicAddress)):\d+$"
    }

    It 'terminates nothing: no TCP socket on the relay ports while data flows' {
        $SendStillRunning | Should -BeTrue -Because 'the socket table must be read mid-transfer'
        $lines = @($RouterSockets -split "`n" | Where-Object { $_.Trim() })
        # The controller's listener shows that ss does list the router's sockets.
        $lines | Where-Object { $_ -match 'LISTEN\s.*:7000\s' } | Should -Not -BeNullOrEmpty
        $relay = $lines | Where-Object {
            $local = ($_ -split '\s+')[3]
            $port = [int]($local -replace '^.*:', '')
            $port -ge $Router.FirstPort -and $port -le $Router.LastPort
        }
        $relay | Should -BeNullOrEmpty
    }
}
