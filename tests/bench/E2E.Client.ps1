#!/usr/bin/env pwsh
<#
.SYNOPSIS
    A binding or a forwarder as the scale test and benchmark run them: one Glass client job in
    this process, plus answers to memory questions (MemoryProbe.ps1).
.DESCRIPTION
    Writes "<channel id>" to -ReadyFile (whole, then renamed) once the job runs; polls 4 times a
    second for "<ReadyFile>.memory-request". Ends with an error when the job ends.
#>
[CmdletBinding()]
param(
    [Parameter(Mandatory)] [ValidateSet('Binding', 'Forwarder')] [string] $Role,
    [Parameter(Mandatory)] [string] $Router,
    [Parameter(Mandatory)] [int] $LocalPort,
    # The channel a forwarder connects to.
    [string] $Id,
    [Parameter(Mandatory)] [string] $ReadyFile,
    [string] $ModulePath = $(if ($env:GLASS_MODULE) { $env:GLASS_MODULE } else { Join-Path $PSScriptRoot '../../out/Glass/Glass.psd1' })
)
$ErrorActionPreference = 'Stop'
Import-Module $ModulePath

$job = if ($Role -eq 'Binding') { New-GlassBinding -LocalPort $LocalPort -Router $Router }
else { Connect-GlassChannel -Id $Id -LocalPort $LocalPort -Router $Router }
Set-Content -LiteralPath "$ReadyFile.tmp" -Value $job.ChannelId -NoNewline
Move-Item -Force -LiteralPath "$ReadyFile.tmp" -Destination $ReadyFile

. (Join-Path $PSScriptRoot 'MemoryProbe.ps1')
try {
    while ($job.State -eq 'Running') {
        $job | Receive-Job -ErrorAction Continue
        Write-GlassMemoryAnswer -ReadyFile $ReadyFile
        Start-Sleep -Milliseconds 250
    }
    $job | Receive-Job
    throw "The $Role ended: $($job.JobStateInfo.State)."
}
finally {
    $job | Stop-Job
}
