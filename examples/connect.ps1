#!/usr/bin/env pwsh
<#
.SYNOPSIS
    Forwards a local port to a glass channel until stopped.
.EXAMPLE
    dotnet pwsh ./examples/connect.ps1 -Router 203.0.113.1:7000 -Id 0123456789abcdef0123456789abcdef -LocalPort 2222
#>
[CmdletBinding()]
param(
    # HOST:PORT; by default $env:GLASS_ROUTER or the router saved with Set-GlassClientConfig.
    [string] $Router,
    [Parameter(Mandatory)] [string] $Id,
    [Parameter(Mandatory)] [int] $LocalPort,
    # A file to create once the local port listens.
    [string] $ReadyFile,
    [string] $ModulePath = $(if ($env:GLASS_MODULE) { $env:GLASS_MODULE } else { Join-Path $PSScriptRoot '../out/Glass/Glass.psd1' })
)
$ErrorActionPreference = 'Stop'
Import-Module $ModulePath

$routerArgs = if ($Router) { @{ Router = $Router } } else { @{} }
$channel = Connect-GlassChannel -Id $Id -LocalPort $LocalPort @routerArgs
Write-Host "Forwarding $($channel.LocalEndPoint) to channel $($channel.ChannelId)"
if ($ReadyFile) { Set-Content -Path $ReadyFile -Value $PID }
try {
    # Show what the forwarding reports (failed connections are errors naming their cause) as it happens.
    while ($channel.State -eq 'Running') {
        $channel | Receive-Job -ErrorAction Continue
        $null = $channel | Wait-Job -Timeout 1
    }
    $channel | Receive-Job
    throw "The forwarding ended: $($channel.JobStateInfo.State)."
}
finally {
    $channel | Stop-Job
}
