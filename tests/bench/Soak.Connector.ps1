#!/usr/bin/env pwsh
<#
.SYNOPSIS
    The soak run's connector, behind NAT A: until told to stop, a random mix of short
    connections through the channels Soak.Binder.ps1 keeps (all served by an echo server behind
    NAT B), each checked, and connects that must be refused.
.DESCRIPTION
    Operations, picked at random by weight:
      burst      5-15 short connections through the forwarder to the stable channel (a few bytes echoed)
      forward    Connect-GlassChannel -LocalPort to a live rotating channel, 2-6 connections, Stop-Job, Remove-Job
      direct     Connect-GlassChannel (no -LocalPort) to a live channel: dial the router endpoint, echo up to 16 KiB
      hashed     1-4 MiB echoed through the stable forwarder or a direct endpoint, SHA-256 of what went
                 against what came back
      abort      a connection (forwarder or direct) that sends some bytes and ends with a reset (SO_LINGER 0)
      unknown    Connect-GlassChannel to a channel id nobody bound: must be refused with unknown-channel
      removed    Connect-GlassChannel to a channel whose binding was removed: unknown-channel or binder-unavailable
    Writes "<StateDirectory>/connector.json" (counters per operation, hashed bytes) about once a
    second and each failure to connector.errors. Stops its forwarders and exits once
    "<StateDirectory>/stop" exists. Answers memory questions (MemoryProbe.ps1) at
    "<StateDirectory>/connector".
#>
[CmdletBinding()]
param(
    [Parameter(Mandatory)] [string] $Router,
    [Parameter(Mandatory)] [string] $StateDirectory,
    # The stable channel's forwarder listens here; rotating forwarders on the next 100 ports.
    [int] $LocalPort = 5000,
    [int] $Seed = 1,
    # Between operations: keeps two soaks and the routers within a shared 2-core machine.
    [int] $PauseMilliseconds = 30,
    [int] $IoTimeoutSeconds = 30,
    [string] $ModulePath = $(if ($env:GLASS_MODULE) { $env:GLASS_MODULE } else { Join-Path $PSScriptRoot '../../out/Glass/Glass.psd1' })
)
$ErrorActionPreference = 'Stop'
Set-StrictMode -Version Latest
Import-Module $ModulePath
. (Join-Path $PSScriptRoot 'MemoryProbe.ps1')

$random = [System.Random]::new($Seed)
$probe = Join-Path $StateDirectory 'connector'
$stopFile = Join-Path $StateDirectory 'stop'
$channelsFile = Join-Path $StateDirectory 'channels.json'
$timeoutMs = $IoTimeoutSeconds * 1000
$weights = [ordered]@{ burst = 25; forward = 15; direct = 20; hashed = 10; abort = 12; unknown = 10; removed = 8 }
$ops = [ordered]@{}
foreach ($k in $weights.Keys) { $ops[$k] = [ordered]@{ ok = 0; failed = 0 } }
$counters = [ordered]@{
    ops = $ops; connections = 0; resets = 0; refusedAsExpected = 0
    hashedTransfers = 0; hashedFailed = 0; hashedBytes = 0L; errors = 0; lastError = $null
}

function Write-Whole([string] $Path, [string] $Text) {
    Set-Content -LiteralPath "$Path.tmp" -Value $Text -NoNewline
    # rename(2): Move-Item -Force deletes the old file first, and a reader may look in between.
    [System.IO.File]::Move("$Path.tmp", $Path, $true)
}

function Read-Channels {
    Wait-Until 60 'the binder''s channel list' { Test-Path -LiteralPath $channelsFile } | Out-Null
    Get-Content -LiteralPath $channelsFile -Raw | ConvertFrom-Json
}

function Wait-Until([double] $Seconds, [string] $What, [scriptblock] $Block) {
    $clock = [System.Diagnostics.Stopwatch]::StartNew()
    while ($clock.Elapsed.TotalSeconds -lt $Seconds) {
        $r = & $Block
        if ($r) { return $r }
        Start-Sleep -Milliseconds 100
    }
    throw "timed out after $Seconds s waiting for $What"
}

function Connect-Tcp([string] $Address, [int] $Port) {
    $s = [System.Net.Sockets.Socket]::new([System.Net.Sockets.AddressFamily]::InterNetwork,
        [System.Net.Sockets.SocketType]::Stream, [System.Net.Sockets.ProtocolType]::Tcp)
    $s.NoDelay = $true
    $s.SendTimeout = $timeoutMs
    $s.ReceiveTimeout = $timeoutMs
    try {
        if (-not $s.ConnectAsync($Address, $Port).Wait($timeoutMs)) { throw "connect to ${Address}:$Port timed out" }
    }
    catch { $s.Dispose(); throw }
    $counters.connections++
    $s
}

function Invoke-Echo($Socket, [long] $Bytes, [switch] $Hash) {
    # Sends $Bytes of random data in chunks of at most 64 KiB and reads each chunk's echo before
    # the next (the echo server answers as it reads, so nothing waits on a full buffer).
    $chunk = [int][Math]::Min(65536, $Bytes)
    $tx = [byte[]]::new($chunk); $rx = [byte[]]::new($chunk)
    $sent = [System.Security.Cryptography.IncrementalHash]::CreateHash([System.Security.Cryptography.HashAlgorithmName]::SHA256)
    $got = [System.Security.Cryptography.IncrementalHash]::CreateHash([System.Security.Cryptography.HashAlgorithmName]::SHA256)
    try {
        $left = $Bytes
        while ($left -gt 0) {
            $n = [int][Math]::Min($left, $chunk)
            $random.NextBytes($tx)
            $sent.AppendData($tx, 0, $n)
            $off = 0
            while ($off -lt $n) { $off += $Socket.Send($tx, $off, $n - $off, [System.Net.Sockets.SocketFlags]::None) }
            $off = 0
            while ($off -lt $n) {
                $r = $Socket.Receive($rx, $off, $n - $off, [System.Net.Sockets.SocketFlags]::None)
                if ($r -eq 0) { throw "the connection closed after $($Bytes - $left + $off) of $Bytes echoed bytes" }
                $off += $r
            }
            $got.AppendData($rx, 0, $n)
            $left -= $n
        }
        $a = [Convert]::ToHexString($sent.GetHashAndReset()); $b = [Convert]::ToHexString($got.GetHashAndReset())
        if ($a -ne $b) { throw "echoed bytes differ: sent SHA-256 $a, got back $b" }
        if ($Hash) { $counters.hashedBytes += $Bytes }
    }
    finally { $sent.Dispose(); $got.Dispose() }
}

function Close-Tcp($Socket) {
    # An orderly end: our FIN, then the echo server's.
    try {
        $Socket.Shutdown([System.Net.Sockets.SocketShutdown]::Send)
        $rx = [byte[]]::new(16)
        if ($Socket.Receive($rx) -ne 0) { throw 'the echo server sent bytes nobody asked for' }
    }
    finally { $Socket.Dispose() }
}

function Reset-Tcp($Socket) {
    $Socket.LingerState = [System.Net.Sockets.LingerOption]::new($true, 0)
    $Socket.Dispose()
    $counters.resets++
}

function Invoke-Short([string] $Address, [int] $Port, [int] $Bytes) {
    $s = Connect-Tcp $Address $Port
    try { Invoke-Echo $s $Bytes } catch { $s.Dispose(); throw }
    Close-Tcp $s
}

function Get-Endpoint([string] $Id) {
    $e = Connect-GlassChannel -Id $Id -Router $Router -ErrorAction Stop
    @{ Address = $e.Address.ToString(); Port = [int]$e.Port }
}

function Get-LiveChannel($Channels) {
    $live = @($Channels.live)
    if ($live.Count -eq 0) { return $Channels.stable }
    $live[$random.Next($live.Count)]
}

function Assert-Refused([string] $Id, [string[]] $Expected) {
    try {
        $null = Connect-GlassChannel -Id $Id -Router $Router -ErrorAction Stop
    }
    catch {
        $errorId = $_.FullyQualifiedErrorId
        foreach ($e in $Expected) { if ($errorId -like "$e*") { $counters.refusedAsExpected++; return } }
        throw "expected $($Expected -join ' or ') for channel $Id, got '$errorId': $($_.Exception.Message)"
    }
    throw "channel $Id should have been refused ($($Expected -join ' or ')) but the controller handed out an endpoint"
}

$stableForwarder = $null
$nextPort = 0
try {
    $channels = Read-Channels
    $stableForwarder = Connect-GlassChannel -Id $channels.stable -LocalPort $LocalPort -Router $Router -Name 'soak-stable'
    Set-Content -LiteralPath (Join-Path $StateDirectory 'connector.ready') -Value $PID
    $channelsStamp = [datetime]::MinValue
    $lastStatus = [datetime]::MinValue
    $total = ($weights.Values | Measure-Object -Sum).Sum
    while (-not (Test-Path -LiteralPath $stopFile)) {
        $stamp = (Get-Item -LiteralPath $channelsFile).LastWriteTimeUtc
        if ($stamp -ne $channelsStamp) { $channels = Read-Channels; $channelsStamp = $stamp }
        if ($stableForwarder.State -ne 'Running') { throw "The stable forwarder ended: $($stableForwarder.JobStateInfo.State)." }

        $pick = $random.Next($total); $op = $null
        foreach ($k in $weights.Keys) { if ($pick -lt $weights[$k]) { $op = $k; break }; $pick -= $weights[$k] }
        try {
            switch ($op) {
                'burst' {
                    $n = $random.Next(5, 16)
                    for ($i = 0; $i -lt $n; $i++) { Invoke-Short '127.0.0.1' $LocalPort ($random.Next(1, 2049)) }
                }
                'forward' {
                    $port = $LocalPort + 1 + ($nextPort++ % 100)
                    $job = Connect-GlassChannel -Id (Get-LiveChannel $channels) -LocalPort $port -Router $Router -ErrorAction Stop
                    try {
                        $n = $random.Next(2, 7)
                        for ($i = 0; $i -lt $n; $i++) { Invoke-Short '127.0.0.1' $port ($random.Next(1, 8193)) }
                    }
                    finally { $job | Stop-Job; $job | Remove-Job -Force }
                }
                'direct' {
                    $e = Get-Endpoint (Get-LiveChannel $channels)
                    Invoke-Short $e.Address $e.Port ($random.Next(1, 16385))
                }
                'hashed' {
                    $bytes = [long]$random.Next(1, 5) * 1MB
                    $counters.hashedTransfers++
                    try {
                        if ($random.Next(2) -eq 0) { $s = Connect-Tcp '127.0.0.1' $LocalPort }
                        else { $e = Get-Endpoint $channels.stable; $s = Connect-Tcp $e.Address $e.Port }
                        try { Invoke-Echo $s $bytes -Hash } catch { $s.Dispose(); throw }
                        Close-Tcp $s
                    }
                    catch { $counters.hashedFailed++; throw }
                }
                'abort' {
                    if ($random.Next(2) -eq 0) { $s = Connect-Tcp '127.0.0.1' $LocalPort }
                    else { $e = Get-Endpoint (Get-LiveChannel $channels); $s = Connect-Tcp $e.Address $e.Port }
                    try {
                        # Some bytes echoed first, or none: a reset on a fresh or on a busy connection.
                        if ($random.Next(2) -eq 0) { Invoke-Echo $s ($random.Next(1, 65537)) }
                        else { $null = $s.Send([byte[]]::new($random.Next(1, 4097))) }
                    }
                    finally { Reset-Tcp $s }
                }
                'unknown' {
                    $id = [Convert]::ToHexString([System.Security.Cryptography.RandomNumberGenerator]::GetBytes(16)).ToLowerInvariant()
                    Assert-Refused $id @('unknown-channel')
                }
                'removed' {
                    $gone = @($channels.removed)
                    # Until the first rotating binding is removed, a channel nobody bound stands in.
                    $id = if ($gone.Count) { $gone[$random.Next($gone.Count)] } else { '0' * 32 }
                    Assert-Refused $id @('unknown-channel', 'binder-unavailable')
                }
            }
            $ops[$op].ok++
        }
        catch {
            # The binder removes its bindings at the stop, unannounced: an operation it overtook
            # there is not a failure of the router's, and is not counted.
            if (Test-Path -LiteralPath $stopFile) { $Error.Clear(); continue }
            $ops[$op].failed++
            $counters.errors++
            $counters.lastError = "$([datetime]::UtcNow.ToString('HH:mm:ss')) ${op}: $($_.Exception.Message)"
            Add-Content -LiteralPath (Join-Path $StateDirectory 'connector.errors') -Value $counters.lastError
        }
        # Caught errors are kept in $Error too; a soak must not count those as the client's memory.
        $Error.Clear()
        $now = [datetime]::UtcNow
        if (($now - $lastStatus).TotalSeconds -ge 1) {
            Write-Whole (Join-Path $StateDirectory 'connector.json') ($counters | ConvertTo-Json -Compress -Depth 4)
            $lastStatus = $now
        }
        Write-GlassMemoryAnswer -ReadyFile $probe
        if ($PauseMilliseconds -gt 0) { Start-Sleep -Milliseconds $PauseMilliseconds }
    }
}
finally {
    if ($stableForwarder) { $stableForwarder | Stop-Job; $stableForwarder | Remove-Job -Force }
    Write-Whole (Join-Path $StateDirectory 'connector.json') ($counters | ConvertTo-Json -Compress -Depth 4)
    Set-Content -LiteralPath (Join-Path $StateDirectory 'connector.done') -Value $PID
}
