#!/usr/bin/env pwsh
<#
.SYNOPSIS
    Exposes a local TCP server on a fresh glass channel and serves until stopped.
.EXAMPLE
    dotnet pwsh ./examples/bind.ps1 -Router 203.0.113.1:7000 -LocalPort 22
#>
[CmdletBinding()]
param(
    # HOST:PORT; by default $env:GLASS_ROUTER or the router saved with Set-GlassClientConfig.
    [string] $Router,
    [Parameter(Mandatory)] [int] $LocalPort,
    # A file to write the channel id to, for scripts that hand it on.
    [string] $ChannelFile,
    [string] $ModulePath = $(if ($env:GLASS_MODULE) { $env:GLASS_MODULE } else { Join-Path $PSScriptRoot '../out/Glass/Glass.psd1' })
)
$ErrorActionPreference = 'Stop'
Import-Module $ModulePath

$routerArgs = if ($Router) { @{ Router = $Router } } else { @{} }
$binding = New-GlassBinding -LocalPort $LocalPort @routerArgs
Write-Host "Channel id: $($binding.ChannelId)"
if ($ChannelFile) {
    # Written whole, then renamed, so a reader never sees half an id.
    Set-Content -Path "$ChannelFile.tmp" -Value $binding.ChannelId -NoNewline
    Move-Item -Force "$ChannelFile.tmp" $ChannelFile
}
try {
    $binding | Wait-Job | Out-Null
    $binding | Receive-Job
    throw "The binding ended: $($binding.JobStateInfo.State)."
}
finally {
    $binding | Stop-Job
}
