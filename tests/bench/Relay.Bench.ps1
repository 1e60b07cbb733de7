#!/usr/bin/env pwsh
<#
.SYNOPSIS
    Developer tool: bulk throughput through the real translator, against a socat relay, on the
    GlassTestNet topology. Not part of build.ps1 (the official end-to-end benchmark lives there).
.DESCRIPTION
    Builds one test net, one router (translator and controller in separate processes) and one
    binding behind NAT B to `glass-testpeer serve --bytes 0`. Each glass run links a fresh router
    endpoint (Connect-GlassChannel without -LocalPort) and sends -Bytes from host A straight to it,
    so no client forwarder runs on A's side. Each socat run relays the same bytes through
    `socat TCP-LISTEN TCP-LISTEN` in the router namespace, with a socat in host B dialling out to
    it and on to the same server. Runs alternate glass and socat, so that the noise of this shared
    machine falls on both alike; medians are printed at the end.

    Per glass run it also reports the translator's relayed packets per second (its counters) and
    the translator process's CPU seconds per GiB (/proc/PID/stat).
.EXAMPLE
    dotnet pwsh ./build.ps1 build; dotnet pwsh tests/bench/Relay.Bench.ps1 -Bytes 1GB -Runs 5
#>
[CmdletBinding()]
param(
    [long] $Bytes = 1GB,
    [int] $Runs = 3,
    [ValidateSet('none', 'kernel')] [string] $Offload = 'none',
    [switch] $NoSocat,
    # socat's copy buffer (-b); its default is 8192.
    [int] $SocatBuffer = 0,
    # Scratch experiments: a command run in the router namespace once the router is up.
    [string] $RouterSetup
)
$ErrorActionPreference = 'Stop'
Set-StrictMode -Version Latest
Import-Module (Join-Path $PSScriptRoot '../pester/GlassTestNet.psm1') -Force
Import-Module (Join-Path $PSScriptRoot '../pester/GlassE2E.psm1') -Force

$reason = Test-GlassNetPrerequisite
if ($reason) { throw "Cannot run: $reason" }
$dotnet = Get-GlassE2EDotnet
$peer = Get-GlassE2ETestPeer
$ticks = [double](& getconf CLK_TCK)

function Get-CpuSeconds([int] $ProcessId) {
    # utime and stime, fields 14 and 15 of /proc/PID/stat (after the parenthesised name).
    $stat = (Get-Content -LiteralPath "/proc/$ProcessId/stat" -Raw)
    $f = $stat.Substring($stat.LastIndexOf(')') + 2) -split ' '
    ([double]$f[11] + [double]$f[12]) / $ticks
}

function Get-LoopThreadCpu([int] $ProcessId) {
    # The packet loop's thread (glass-nfqueue-N), user and system seconds apart.
    foreach ($t in Get-ChildItem "/proc/$ProcessId/task" -ErrorAction Ignore) {
        if ((Get-Content "$($t.FullName)/comm" -Raw) -like 'glass-nfqueue*') {
            $stat = Get-Content "$($t.FullName)/stat" -Raw
            $f = $stat.Substring($stat.LastIndexOf(')') + 2) -split ' '
            return [pscustomobject]@{ User = [double]$f[11] / $ticks; System = [double]$f[12] / $ticks }
        }
    }
    [pscustomobject]@{ User = 0; System = 0 }
}

function Get-TimesChildCpu($Process) {
    # bash 'times': the second line holds the children's user and system time, as 0m1.234s 0m0.567s.
    $lines = @($Process.ReadStdout() -split "`n" | Where-Object { $_ -match '^\d+m[\d.]+s \d+m[\d.]+s$' })
    if ($lines.Count -lt 2) { return [double]::NaN }
    $t = 0.0
    foreach ($m in [regex]::Matches($lines[1], '(\d+)m([\d.]+)s')) { $t += [double]$m.Groups[1].Value * 60 + [double]$m.Groups[2].Value }
    $t
}

function Get-ReapedChildCpuSeconds {
    # cutime and cstime of this process, fields 16 and 17: the CPU of children it has waited for.
    $stat = (Get-Content -LiteralPath "/proc/$PID/stat" -Raw)
    $f = $stat.Substring($stat.LastIndexOf(')') + 2) -split ' '
    ([double]$f[13] + [double]$f[14]) / $ticks
}

function Send-Bytes([string] $Endpoint) {
    $out = Invoke-GlassNetCommand -Net $net -Namespace hostA -FilePath $dotnet -TimeoutSeconds 600 -ArgumentList @(
        $peer, 'send', '--connect', $Endpoint, '--bytes', "$Bytes", '--seed', '1', '--timeout', '590')
    $r = ConvertFrom-GlassE2EPeerOutput $out | Select-Object -First 1
    if (-not $r -or $r.sent -ne $Bytes) { throw "send to $Endpoint did not send $Bytes bytes: $out" }
    $r
}

function Get-Median([double[]] $Values) {
    $s = @($Values | Sort-Object)
    if ($s.Count -eq 0) { return [double]::NaN }
    if ($s.Count % 2) { $s[[int][Math]::Floor($s.Count / 2)] } else { ($s[$s.Count / 2 - 1] + $s[$s.Count / 2]) / 2 }
}

$net = New-GlassTestNet
try {
    Write-Host "Test net $($net.Id); $([Math]::Round($Bytes / 1MB)) MiB per run, offload $Offload"
    $router = Start-GlassE2ERouter -Net $net -Separate -Offload $Offload
    $translatorPid = @($router.Process)[0].Pid
    if ($RouterSetup) { Invoke-GlassNetCommand -Net $net -Namespace router -FilePath sh -ArgumentList @('-c', $RouterSetup) | Write-Host }
    $serve = Start-GlassE2EServer -Net $net -Bytes 0 -Count 0
    $binding = Start-GlassE2EBinding -Net $net -Router $router
    $pwsh = Get-GlassPwshCommand
    $glass = [System.Collections.Generic.List[object]]::new()
    $socat = [System.Collections.Generic.List[object]]::new()

    for ($i = 1; $i -le $Runs; $i++) {
        # glass: a fresh endpoint per run, dialled directly from host A.
        $ep = (Invoke-GlassNetCommand -Net $net -Namespace hostA -FilePath $pwsh.FilePath -TimeoutSeconds 60 -ArgumentList (@($pwsh.ArgumentList) + @(
                    '-NoProfile', '-NonInteractive', '-Command',
                    "Import-Module '$(Get-GlassE2EModule)'; `$e = Connect-GlassChannel -Id $($binding.ChannelId) -Router $($router.Address); `$e.Address.ToString() + ':' + `$e.Port"))).Trim()
        $before = Get-GlassTranslatorStatus -ControlSocket $router.ControlSocket
        $cpu0 = Get-CpuSeconds $translatorPid
        $loop0 = Get-LoopThreadCpu $translatorPid
        $side0 = (Get-CpuSeconds $binding.Process.Pid) + (Get-CpuSeconds $serve.Pid)
        $send0 = Get-ReapedChildCpuSeconds
        $r = Send-Bytes $ep
        $cpu1 = Get-CpuSeconds $translatorPid
        $loop1 = Get-LoopThreadCpu $translatorPid
        $side1 = (Get-CpuSeconds $binding.Process.Pid) + (Get-CpuSeconds $serve.Pid)
        $send1 = Get-ReapedChildCpuSeconds
        $after = Get-GlassTranslatorStatus -ControlSocket $router.ControlSocket
        $packets = $after.PacketsRelayed - $before.PacketsRelayed
        $row = [pscustomobject]@{
            Gbps         = [Math]::Round($Bytes * 8 / $r.seconds / 1e9, 3)
            PacketsPerS  = [Math]::Round($packets / $r.seconds)
            BytesPerPkt  = [Math]::Round(($after.BytesRelayed - $before.BytesRelayed) / [Math]::Max(1, $packets))
            CpuSPerGiB   = [Math]::Round(($cpu1 - $cpu0) / ($Bytes / 1GB), 2)
            SendFailed   = $after.Drops.SendFailed - $before.Drops.SendFailed
            BSide        = [Math]::Round(($side1 - $side0) / ($Bytes / 1GB), 2)
            Sender       = [Math]::Round(($send1 - $send0) / ($Bytes / 1GB), 2)
            LoopUser     = [Math]::Round(($loop1.User - $loop0.User) / ($Bytes / 1GB), 2)
            LoopSystem   = [Math]::Round(($loop1.System - $loop0.System) / ($Bytes / 1GB), 2)
        }
        $glass.Add($row)
        Write-Host ("run {0} glass: {1,6:F3} Gbit/s, {2,8:N0} packets/s ({3} B payload/packet), translator {4} CPU s/GiB (loop thread {8} user, {9} system), binding+server {6}, sender {7}, send failures {5}" -f
            $i, $row.Gbps, $row.PacketsPerS, $row.BytesPerPkt, $row.CpuSPerGiB, $row.SendFailed, $row.BSide, $row.Sender, $row.LoopUser, $row.LoopSystem)

        if (-not $NoSocat) {
            # socat: A connects first, then B's socat (retrying) is accepted and dials the server.
            $port = 61000 + 2 * $i
            $b = if ($SocatBuffer) { @('-b', "$SocatBuffer") } else { @() }
            # Each socat runs under bash, whose 'times' reports the CPU of its child once socat ends.
            $timed = 'socat "$@"; times'
            $relay = Start-GlassNetProcess -Net $net -Namespace router -FilePath bash -ArgumentList (@('-c', $timed, 'socat') + @($b) + @(
                    "TCP-LISTEN:$port,reuseaddr", "TCP-LISTEN:$($port + 1),reuseaddr"))
            Wait-GlassCondition -TimeoutSeconds 10 -Because 'socat to listen' {
                (Invoke-GlassNetCommand -Net $net -Namespace router -FilePath ss -ArgumentList '-tlnH') -match ":$port\s"
            } | Out-Null
            $dial = Start-GlassNetProcess -Net $net -Namespace hostB -FilePath bash -ArgumentList (@('-c', $timed, 'socat') + @($b) + @(
                    "TCP:$($net.RouterAddress):$($port + 1),retry=200,interval=0.05", 'TCP:127.0.0.1:9000'))
            $d0 = Get-CpuSeconds $serve.Pid
            $s0 = Get-ReapedChildCpuSeconds
            $r = Send-Bytes "$($net.RouterAddress):$port"
            $s1 = Get-ReapedChildCpuSeconds
            $d1 = Get-CpuSeconds $serve.Pid
            $null = $dial.WaitForExit(10)
            $null = $relay.WaitForExit(10)
            $row = [pscustomobject]@{
                Gbps   = [Math]::Round($Bytes * 8 / $r.seconds / 1e9, 3)
                Relay  = [Math]::Round((Get-TimesChildCpu $relay) / ($Bytes / 1GB), 2)
                Dialer = [Math]::Round((Get-TimesChildCpu $dial) / ($Bytes / 1GB), 2)
                BSide  = [Math]::Round(($d1 - $d0) / ($Bytes / 1GB), 2)
                Sender = [Math]::Round(($s1 - $s0) / ($Bytes / 1GB), 2)
            }
            $socat.Add($row)
            Write-Host ("run {0} socat: {1,6:F3} Gbit/s, relay {2} CPU s/GiB, dialler+server {3}, sender {4}" -f
                $i, $row.Gbps, $row.Relay, ($row.Dialer + $row.BSide), $row.Sender)
            Stop-GlassNetProcess -Process $relay, $dial
        }
    }

    $g = Get-Median ($glass | ForEach-Object Gbps)
    Write-Host ''
    Write-Host ("median glass: {0:F3} Gbit/s, {1:N0} packets/s, {2} B/packet, translator {3} CPU s/GiB (runs: {4})" -f $g,
        (Get-Median ($glass | ForEach-Object PacketsPerS)), (Get-Median ($glass | ForEach-Object BytesPerPkt)),
        (Get-Median ($glass | ForEach-Object CpuSPerGiB)), (($glass | ForEach-Object Gbps) -join ', '))
    if ($socat.Count) {
        $s = Get-Median ($socat | ForEach-Object Gbps)
        Write-Host ("median socat: {0:F3} Gbit/s, relay {3} CPU s/GiB (runs: {1}); glass/socat = {2:F2}" -f $s, (($socat | ForEach-Object Gbps) -join ', '), ($g / $s),
            (Get-Median ($socat | ForEach-Object Relay)))
    }
}
finally {
    Remove-GlassTestNet -Net $net
}
