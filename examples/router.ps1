#!/usr/bin/env pwsh
<#
.SYNOPSIS
    Runs a glass router until stopped (Ctrl+C or SIGTERM): translator and controller in this
    process, or one of them (-Role), the other running in another process with the same config.
.EXAMPLE
    sudo dotnet pwsh ./examples/router.ps1 -ConfigPath ./examples/router.yaml
.EXAMPLE
    sudo dotnet pwsh ./examples/router.ps1 -Role Translator; dotnet pwsh ./examples/router.ps1 -Role Controller
#>
[CmdletBinding()]
param(
    [string] $ConfigPath = (Join-Path $PSScriptRoot 'router.yaml'),
    [ValidateSet('Both', 'Translator', 'Controller')]
    [string] $Role = 'Both',
    [string] $ModulePath = $(if ($env:GLASS_MODULE) { $env:GLASS_MODULE } else { Join-Path $PSScriptRoot '../out/Glass/Glass.psd1' }),
    # A file to create once both parts are up, for scripts that wait for the router.
    [string] $ReadyFile
)
$ErrorActionPreference = 'Stop'
Import-Module $ModulePath

$jobs = @(
    if ($Role -ne 'Controller') { Start-GlassTranslator -ConfigPath $ConfigPath -Name translator }
    if ($Role -ne 'Translator') { Start-GlassController -ConfigPath $ConfigPath -Name controller }
)
$jobs | Format-Table | Out-String | Write-Host
if ($ReadyFile) { Set-Content -Path $ReadyFile -Value $PID }

try {
    # They run until stopped; if one fails, report why and stop the rest.
    $done = Wait-Job -Job $jobs -Any
    $done | Receive-Job -ErrorAction Continue
    throw "The $($done.Name) stopped: $($done.JobStateInfo.State)."
}
finally {
    $jobs | Stop-Job
}
