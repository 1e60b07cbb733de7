#!/usr/bin/env pwsh
<#
.SYNOPSIS
    Runs a glass router (translator and controller) in this process until stopped (Ctrl+C or SIGTERM).
.EXAMPLE
    sudo dotnet pwsh ./examples/router.ps1 -ConfigPath ./examples/router.yaml
#>
[CmdletBinding()]
param(
    [string] $ConfigPath = (Join-Path $PSScriptRoot 'router.yaml'),
    [string] $ModulePath = $(if ($env:GLASS_MODULE) { $env:GLASS_MODULE } else { Join-Path $PSScriptRoot '../out/Glass/Glass.psd1' }),
    # A file to create once both parts are up, for scripts that wait for the router.
    [string] $ReadyFile
)
$ErrorActionPreference = 'Stop'
Import-Module $ModulePath

$translator = Start-GlassTranslator -ConfigPath $ConfigPath -Name translator
$controller = Start-GlassController -ConfigPath $ConfigPath -Name controller
$translator, $controller | Format-Table | Out-String | Write-Host
if ($ReadyFile) { Set-Content -Path $ReadyFile -Value $PID }

try {
    # Both run until stopped; if either fails, report why and stop the other.
    $done = Wait-Job -Job $translator, $controller -Any
    $done | Receive-Job -ErrorAction Continue
    throw "The $($done.Name) stopped: $($done.JobStateInfo.State)."
}
finally {
    $translator, $controller | Stop-Job
}
