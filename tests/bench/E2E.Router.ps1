#!/usr/bin/env pwsh
<#
.SYNOPSIS
    The glass router as the end-to-end benchmark runs it: examples/router.ps1's translator and
    controller jobs in this process, plus answers to memory questions from the benchmark.
.DESCRIPTION
    Same parameters as examples/router.ps1. While the jobs run, this script polls (4 times a
    second) for the file "<ReadyFile>.memory-request" and answers it in "<ReadyFile>.memory.json"
    (MemoryProbe.ps1 says what it holds). The benchmark reads RSS and PSS from /proc itself.
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

. (Join-Path $PSScriptRoot 'MemoryProbe.ps1')
try {
    while ($true) {
        $done = @($jobs | Where-Object { $_.State -ne 'Running' })
        if ($done) {
            $done | Receive-Job -ErrorAction Continue
            throw "The $($done[0].Name) stopped: $($done[0].JobStateInfo.State)."
        }
        Write-GlassMemoryAnswer -ReadyFile $ReadyFile
        Start-Sleep -Milliseconds 250
    }
}
finally {
    $jobs | Stop-Job
}
