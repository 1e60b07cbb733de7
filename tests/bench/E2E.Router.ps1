#!/usr/bin/env pwsh
<#
.SYNOPSIS
    The glass router as the end-to-end benchmark runs it: examples/router.ps1's translator and
    controller jobs in this process, plus answers to memory questions from the benchmark.
.DESCRIPTION
    Same parameters as examples/router.ps1. While the jobs run, this script polls (4 times a
    second) for the file "<ReadyFile>.memory-request"; when it appears, it collects garbage fully
    and writes "<ReadyFile>.memory.json" with what only the process itself can see:
      managedBytes     GC.GetTotalMemory after a full, compacting collection: live managed objects
      heapSizeBytes    GCMemoryInfo.HeapSizeBytes (the GC heap, including fragmentation)
      committedBytes   GCMemoryInfo.TotalCommittedBytes (what the GC has committed from the OS)
      workingSetBytes  Environment.WorkingSet (the process's resident set)
    The benchmark reads RSS and PSS from /proc itself.
#>
[CmdletBinding()]
param(
    [Parameter(Mandatory)] [string] $ConfigPath,
    [ValidateSet('Both', 'Translator', 'Controller')]
    [string] $Role = 'Both',
    [Parameter(Mandatory)] [string] $ReadyFile,
    [string] $ModulePath = $(if ($env:GLASS_MODULE) { $env:GLASS_MODULE } else { Join-Path $PSScriptRoot '../../out/Glass/Glass.psd1' })
)
$ErrorActionPreference = 'Stop'
Import-Module $ModulePath

$jobs = @(
    if ($Role -ne 'Controller') { Start-GlassTranslator -ConfigPath $ConfigPath -Name translator }
    if ($Role -ne 'Translator') { Start-GlassController -ConfigPath $ConfigPath -Name controller }
)
$jobs | Format-Table | Out-String | Write-Host
Set-Content -Path $ReadyFile -Value $PID

$request = "$ReadyFile.memory-request"
$answer = "$ReadyFile.memory.json"
try {
    while ($true) {
        $done = @($jobs | Where-Object { $_.State -ne 'Running' })
        if ($done) {
            $done | Receive-Job -ErrorAction Continue
            throw "The $($done[0].Name) stopped: $($done[0].JobStateInfo.State)."
        }
        if (Test-Path -LiteralPath $request) {
            Remove-Item -LiteralPath $request
            [GC]::Collect(2, [GCCollectionMode]::Forced, $true, $true)
            [GC]::WaitForPendingFinalizers()
            $managed = [GC]::GetTotalMemory($true)
            $info = [GC]::GetGCMemoryInfo()
            [ordered]@{
                managedBytes    = $managed
                heapSizeBytes   = $info.HeapSizeBytes
                committedBytes  = $info.TotalCommittedBytes
                workingSetBytes = [Environment]::WorkingSet
            } | ConvertTo-Json -Compress | Set-Content -LiteralPath "$answer.tmp"
            Move-Item -Force -LiteralPath "$answer.tmp" -Destination $answer
        }
        Start-Sleep -Milliseconds 250
    }
}
finally {
    $jobs | Stop-Job
}
