#!/usr/bin/env pwsh
<#
.SYNOPSIS
    The soak run's binder, behind NAT B: one binding for the whole run and a few that come and
    go, all for the same local echo server, with New-GlassBinding and Stop-Job/Remove-Job.
.DESCRIPTION
    Shares what it does through files in -StateDirectory (the net's temp directory, which every
    namespace sees):
      channels.json  {stable, live[], retiring[], removed[]}: the connector uses live channels for
                     connections that must work, removed ones for connects that must be refused
      binder.json    counters: bindings created and removed, errors, the last error
    A rotating binding lives -MinLifeSeconds to -MaxLifeSeconds, then is "retiring" for
    -GraceSeconds (the connector no longer starts work on it) before it is stopped, so no
    connection that must work meets a binding being removed. Stops everything and exits once
    "<StateDirectory>/stop" exists. Answers memory questions (MemoryProbe.ps1) at
    "<StateDirectory>/binder".
#>
[CmdletBinding()]
param(
    [Parameter(Mandatory)] [string] $Router,
    [Parameter(Mandatory)] [int] $LocalPort,
    [Parameter(Mandatory)] [string] $StateDirectory,
    [int] $Rotating = 3,
    [double] $MinLifeSeconds = 6,
    [double] $MaxLifeSeconds = 20,
    [double] $GraceSeconds = 15,
    [int] $Seed = 1,
    [string] $ModulePath = $(if ($env:GLASS_MODULE) { $env:GLASS_MODULE } else { Join-Path $PSScriptRoot '../../out/Glass/Glass.psd1' })
)
$ErrorActionPreference = 'Stop'
Set-StrictMode -Version Latest
Import-Module $ModulePath
. (Join-Path $PSScriptRoot 'MemoryProbe.ps1')

$random = [System.Random]::new($Seed)
$probe = Join-Path $StateDirectory 'binder'
$stopFile = Join-Path $StateDirectory 'stop'
$counters = [ordered]@{ created = 0; removed = 0; errors = 0; lastError = $null; failedJobs = 0 }

function Write-Whole([string] $Path, [string] $Text) {
    # Whole, then renamed: a reader in another process never sees half a file.
    Set-Content -LiteralPath "$Path.tmp" -Value $Text -NoNewline
    # rename(2): Move-Item -Force deletes the old file first, and a reader may look in between.
    [System.IO.File]::Move("$Path.tmp", $Path, $true)
}

function Add-Error([string] $Text) {
    $counters.errors++
    $counters.lastError = "$([datetime]::UtcNow.ToString('HH:mm:ss')) $Text"
    Add-Content -LiteralPath (Join-Path $StateDirectory 'binder.errors') -Value $counters.lastError
}

function New-Binding {
    try {
        $job = New-GlassBinding -LocalPort $LocalPort -Router $Router
        $counters.created++
        $job
    }
    catch { Add-Error "New-GlassBinding: $($_.Exception.Message)"; $null }
}

function Remove-Binding($Job) {
    try { $Job | Stop-Job; $Job | Remove-Job -Force; $counters.removed++ }
    catch { Add-Error "removing $($Job.ChannelId): $($_.Exception.Message)" }
}

$stable = New-GlassBinding -LocalPort $LocalPort -Router $Router
$counters.created++
# Rotating bindings: @{ Job; Until (live until); Since (retiring since) }
$live = [System.Collections.Generic.List[object]]::new()
$retiring = [System.Collections.Generic.List[object]]::new()
$removed = [System.Collections.Generic.List[string]]::new()
$lastStatus = [datetime]::MinValue

function Write-Channels {
    $doc = [ordered]@{
        stable   = $stable.ChannelId
        live     = @($live | ForEach-Object { $_.Job.ChannelId })
        retiring = @($retiring | ForEach-Object { $_.Job.ChannelId })
        removed  = @($removed)
    }
    Write-Whole (Join-Path $StateDirectory 'channels.json') ($doc | ConvertTo-Json -Compress)
}

Write-Channels
try {
    while (-not (Test-Path -LiteralPath $stopFile)) {
        $now = [datetime]::UtcNow
        $changed = $false
        if ($stable.State -ne 'Running') { throw "The stable binding ended: $($stable.JobStateInfo.State)." }
        foreach ($b in @($live)) {
            if ($b.Job.State -ne 'Running') {
                $counters.failedJobs++
                Add-Error "binding $($b.Job.ChannelId) ended by itself: $($b.Job.JobStateInfo.State)"
            }
            if ($now -ge $b.Until -or $b.Job.State -ne 'Running') {
                $null = $live.Remove($b); $b.Since = $now; $retiring.Add($b); $changed = $true
            }
        }
        foreach ($b in @($retiring)) {
            if (($now - $b.Since).TotalSeconds -ge $GraceSeconds) {
                Remove-Binding $b.Job
                $null = $retiring.Remove($b)
                $removed.Add($b.Job.ChannelId)
                if ($removed.Count -gt 50) { $removed.RemoveAt(0) }
                $changed = $true
            }
        }
        while ($live.Count -lt $Rotating) {
            $job = New-Binding
            if (-not $job) { break }
            $life = $MinLifeSeconds + $random.NextDouble() * ($MaxLifeSeconds - $MinLifeSeconds)
            $live.Add(@{ Job = $job; Until = [datetime]::UtcNow.AddSeconds($life); Since = $null })
            $changed = $true
        }
        if ($changed) { Write-Channels }
        if (($now - $lastStatus).TotalSeconds -ge 1) {
            Write-Whole (Join-Path $StateDirectory 'binder.json') ($counters | ConvertTo-Json -Compress)
            $lastStatus = $now
        }
        Write-GlassMemoryAnswer -ReadyFile $probe
        Start-Sleep -Milliseconds 200
    }
}
finally {
    foreach ($b in @($live) + @($retiring)) { Remove-Binding $b.Job }
    Remove-Binding $stable
    Write-Whole (Join-Path $StateDirectory 'binder.json') ($counters | ConvertTo-Json -Compress)
    Set-Content -LiteralPath (Join-Path $StateDirectory 'binder.done') -Value $PID
}
