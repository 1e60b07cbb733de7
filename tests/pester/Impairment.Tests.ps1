# A splice over bad legs: random loss on A's leg, delay and reordering on B's leg, each applied in
# the NAT's namespace so that the router and the hosts run untouched. TCP repairs all of it end to
# end through the relay; the bytes must arrive exact and intact both ways.
#
# The kernel here may lack netem: loss is the iptables `statistic` match, delay and reordering
# come from glass-impair (tests/Glass.Impair), which holds NFQUEUE verdicts back. Build it first:
#   dotnet build tests/Glass.Impair -c Release     (or point GLASS_IMPAIR at glass-impair.dll)

BeforeDiscovery {
    Import-Module (Join-Path $PSScriptRoot 'GlassTestNet.psm1') -Force
    $script:SkipReason = Test-GlassNetPrerequisite
}

Describe "A splice over a lossy leg and a reordering leg$(if ($SkipReason) { " (skipped: $SkipReason)" })" -Skip:([bool]$SkipReason) {
    BeforeAll {
        Import-Module (Join-Path $PSScriptRoot 'GlassTestNet.psm1') -Force
        Import-Module (Join-Path $PSScriptRoot 'GlassE2E.psm1') -Force

        $impairDll = if ($env:GLASS_IMPAIR) { $env:GLASS_IMPAIR } else { Join-Path $PSScriptRoot '../Glass.Impair/bin/Release/net10.0/glass-impair.dll' }
        if (-not (Test-Path -LiteralPath $impairDll -PathType Leaf)) {
            throw "glass-impair not found at $impairDll; build it with 'dotnet build tests/Glass.Impair -c Release' or set GLASS_IMPAIR to its dll."
        }
        $script:Bytes = 256MB
        $script:LossProbability = '0.01'
        $script:ImpairQueue = 7
        $dotnet = Get-GlassE2EDotnet
        $peer = Get-GlassE2ETestPeer

        $script:Net = New-GlassTestNet
        $net = $script:Net
        Write-Host "Test net $($net.Id)"
        $script:Router = Start-GlassE2ERouter -Net $net -Separate

        function Invoke-NatIptables([string] $Namespace, [string[]] $Arguments) {
            Invoke-GlassNetCommand -Net $net -Namespace $Namespace -FilePath iptables -ArgumentList $Arguments
        }

        # Leg A: NAT A loses 1% of what it forwards toward the router and 1% of what comes back.
        foreach ($direction in '-i', '-o') {
            Invoke-NatIptables natA @('-A', 'FORWARD', $direction, $net.NatPublicInterface, '-m', 'statistic',
                '--mode', 'random', '--probability', $LossProbability, '-j', 'DROP') | Out-Null
        }
        # Rules without a target only count what got through, per direction.
        foreach ($direction in '-i', '-o') {
            Invoke-NatIptables natA @('-A', 'FORWARD', $direction, $net.NatPublicInterface) | Out-Null
        }

        # Leg B: NAT B queues everything it forwards, both ways, to glass-impair. The rule goes in
        # only once the queue is bound: a packet sent to an unbound queue is dropped.
        $script:Impair = Start-GlassNetProcess -Net $net -Namespace natB -FilePath $dotnet -ArgumentList @(
            $impairDll, '--queue', "$ImpairQueue", '--delay-ms', '5', '--jitter-ms', '5', '--reorder-percent', '2')
        Wait-GlassCondition -TimeoutSeconds 30 -Because "glass-impair to bind NFQUEUE $ImpairQueue" {
            if ($Impair.HasExited) { throw "glass-impair exited ($($Impair.ExitCode)): $($Impair.ReadStderr()) $($Impair.ReadStdout())" }
            $Impair.ReadStdout() -match "queue $ImpairQueue bound"
        } | Out-Null
        $script:ImpairRule = @('FORWARD', '-j', 'NFQUEUE', '--queue-num', "$ImpairQueue")
        Invoke-NatIptables natB (@('-A') + $ImpairRule) | Out-Null

        # Everything from here on crosses the impaired legs: the binding's and the channel's
        # control connections, the splice's handshake and the transfer.
        $serve = Start-GlassE2EServer -Net $net -Bytes $Bytes -Seed 2
        $binding = Start-GlassE2EBinding -Net $net -Router $Router
        Start-GlassE2EChannel -Net $net -Router $Router -ChannelId $binding.ChannelId -LocalPort 5555 | Out-Null

        $clock = [System.Diagnostics.Stopwatch]::StartNew()
        $send = Start-GlassNetProcess -Net $net -Namespace hostA -FilePath $dotnet -ArgumentList @(
            $peer, 'send', '--connect', '127.0.0.1:5555', '--bytes', "$Bytes", '--seed', '1', '--timeout', '170')
        # The translator's view every 10 s: what a stall looked like, should there be one.
        while (-not $send.WaitForExit(10)) {
            if ($Impair.HasExited) { throw "glass-impair died mid-transfer ($($Impair.ExitCode)), leg B is cut: $($Impair.ReadStderr())" }
            if ($clock.Elapsed.TotalSeconds -gt 175) { break }
            $session = @(Get-GlassSession -ControlSocket $Router.ControlSocket) | Select-Object -First 1
            Write-Host ('{0,5:F0} s: A->B {1,10} B, B->A {2,10} B' -f $clock.Elapsed.TotalSeconds, $session.BytesFromA, $session.BytesFromB)
        }
        $sendExit = Wait-GlassNetProcess -Process $send -TimeoutSeconds 10
        $script:TransferSeconds = $clock.Elapsed.TotalSeconds
        $script:Status = Get-GlassTranslatorStatus -ControlSocket $Router.ControlSocket
        Write-Host ("Transfer of {0} MiB each way: {1:F1} s; translator: {2}" -f ($Bytes / 1MB), $TransferSeconds, ($Status | ConvertTo-Json -Compress -Depth 4))
        $script:Sent = ConvertFrom-GlassE2EPeerOutput $send.ReadStdout()
        if ($sendExit -ne 0) { throw "glass-testpeer send failed ($sendExit) after $([int]$TransferSeconds) s: $($send.ReadStderr())" }
        $serveExit = Wait-GlassNetProcess -Process $serve -TimeoutSeconds 30
        $script:Served = ConvertFrom-GlassE2EPeerOutput $serve.ReadStdout()
        if ($serveExit -ne 0) { throw "glass-testpeer serve failed ($serveExit): $($serve.ReadStderr())" }

        # Leg B back to a plain NAT before glass-impair stops, then its summary.
        Invoke-NatIptables natB (@('-D') + $ImpairRule) | Out-Null
        Stop-GlassNetProcess -Process $Impair -Signal TERM -TimeoutSeconds 10
        $script:ImpairSummary = @($Impair.ReadStdout() -split "`n" | Where-Object { $_.Trim().StartsWith('{') } | ForEach-Object { $_ | ConvertFrom-Json }) |
            Select-Object -Last 1
        Write-Host "glass-impair (exit $($Impair.ExitCode)): $($ImpairSummary | ConvertTo-Json -Compress)"

        # pkts bytes target prot opt in out source destination [match]; no target: a counting rule.
        $table = Invoke-NatIptables natA @('-L', 'FORWARD', '-v', '-x', '-n')
        $script:Drops = @{}
        $passed = @{}
        foreach ($line in $table -split "`n") {
            $f = @($line.Trim() -split '\s+')
            if ($f.Count -lt 8 -or $f[0] -notmatch '^\d+$') { continue }
            $dropRule = $f[2] -eq 'DROP' -and $line -match 'statistic'
            if (-not $dropRule) { $f = @($f[0], $f[1], '') + $f[2..($f.Count - 1)] }
            # in pub: came from the router, toward host A; out pub: toward the router.
            $key = if ($f[5] -eq $net.NatPublicInterface) { 'fromRouter' } elseif ($f[6] -eq $net.NatPublicInterface) { 'toRouter' } else { continue }
            if ($dropRule) { $Drops[$key] = [long]$f[0] } else { $passed[$key] = [long]$f[0], [long]$f[1] }
        }
        # iptables counts skbs; a GRO/GSO skb carries several segments, so a drop can take out a
        # burst of segments and the per-segment loss rate differs from the per-skb one.
        foreach ($key in 'toRouter', 'fromRouter') {
            $n, $b = if ($passed[$key]) { $passed[$key] } else { 0, 0 }
            Write-Host ("NAT A {0}: dropped {1} skbs, forwarded {2} skbs of {3:F0} bytes on average" -f $key, $Drops[$key], $n, ($b / [Math]::Max(1, $n)))
        }

        # What the peers' TCP made of it (/proc/net is per namespace).
        function Get-TcpCounter([string] $Namespace) {
            $counters = @{}
            foreach ($file in '/proc/net/snmp', '/proc/net/netstat') {
                $lines = @((Invoke-GlassNetCommand -Net $net -Namespace $Namespace -FilePath cat -ArgumentList $file) -split "`n" | Where-Object { $_ })
                for ($i = 0; $i + 1 -lt $lines.Count; $i += 2) {
                    $names = $lines[$i] -split '\s+'
                    $values = $lines[$i + 1] -split '\s+'
                    $prefix = $names[0].TrimEnd(':')
                    for ($j = 1; $j -lt [Math]::Min($names.Count, $values.Count); $j++) { $counters["$prefix.$($names[$j])"] = [long]$values[$j] }
                }
            }
            $counters
        }
        $script:Tcp = @{ hostA = Get-TcpCounter hostA; hostB = Get-TcpCounter hostB }
        foreach ($h in 'hostA', 'hostB') {
            $c = $Tcp[$h]
            Write-Host ("TCP on {0}: RetransSegs {1}, SACK reorder {2}, DSACKs received {3}, lost retransmits {4}" -f
                $h, $c['Tcp.RetransSegs'], $c['TcpExt.TCPSACKReorder'], $c['TcpExt.TCPDSACKRecv'], $c['TcpExt.TCPLostRetransmit'])
        }
    }

    AfterAll {
        Remove-GlassTestNet -Net $script:Net
    }

    It 'carries 256 MiB from A to B intact' {
        $Sent.sent | Should -Be $Bytes
        $Served.received | Should -Be $Bytes
        $Served.receivedSha256 | Should -Be $Sent.sentSha256
    }

    It 'carries 256 MiB from B to A intact' {
        $Served.sent | Should -Be $Bytes
        $Sent.received | Should -Be $Bytes
        $Sent.receivedSha256 | Should -Be $Served.sentSha256
    }

    It 'really lost packets on leg A, both ways' {
        $Drops['toRouter'] | Should -BeGreaterThan 0
        $Drops['fromRouter'] | Should -BeGreaterThan 0
    }

    It 'made both peers retransmit: the loss reached their data' {
        $Tcp.hostA['Tcp.RetransSegs'] | Should -BeGreaterThan 0
        $Tcp.hostB['Tcp.RetransSegs'] | Should -BeGreaterThan 0
    }

    It 'really delayed and reordered packets on leg B' {
        $Impair.ExitCode | Should -Be 0
        $ImpairSummary | Should -Not -BeNullOrEmpty -Because 'glass-impair prints a JSON summary when stopped'
        $ImpairSummary.delayed | Should -BeGreaterThan 1000
        $ImpairSummary.reordered | Should -BeGreaterThan 0
        # Picked for reordering is not enough: later packets must really have gone first.
        $ImpairSummary.overtaken | Should -BeGreaterThan 0
    }

    It 'finds nothing malformed in the relayed traffic' {
        $Status.Drops.Malformed | Should -Be 0
    }
}
