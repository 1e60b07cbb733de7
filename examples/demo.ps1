#!/usr/bin/env pwsh
<#
.SYNOPSIS
    A real splice: two peers behind their own NATs talk through a glass router, in network
    namespaces this script makes and removes again. Needs root; run through ./build.ps1 demo.
#>
[CmdletBinding()]
param(
    # Bytes each way.
    [long] $Bytes = 32MB
)
$ErrorActionPreference = 'Stop'
Set-StrictMode -Version Latest
Import-Module (Join-Path $PSScriptRoot '../tests/pester/GlassTestNet.psm1') -Force
Import-Module (Join-Path $PSScriptRoot '../tests/pester/GlassE2E.psm1') -Force

$reason = Test-GlassNetPrerequisite
if ($reason) { throw "The demo cannot build its network: $reason" }

$net = New-GlassTestNet
try {
    Write-Host @"
Network (namespaces $($net.Id)):
  router   $($net.RouterAddress)            glass translator + controller
  NAT A    $($net.NatAPublicAddress) -> $($net.HostAAddress)   peer A (connects)
  NAT B    $($net.NatBPublicAddress) -> $($net.HostBAddress)   peer B (binds a local server)
"@
    $router = Start-GlassE2ERouter -Net $net
    Write-Host "Router up: controller at $($router.Address), relay ports $($router.FirstPort)-$($router.LastPort)."

    $serve = Start-GlassE2EServer -Net $net -Bytes $Bytes -Seed 2
    $binding = Start-GlassE2EBinding -Net $net -Router $router
    Write-Host "Peer B: New-GlassBinding -LocalPort 9000 -Router $($router.Address)"
    Write-Host "  ChannelId: $($binding.ChannelId)"

    Start-GlassE2EChannel -Net $net -Router $router -ChannelId $binding.ChannelId -LocalPort 5555 | Out-Null
    Write-Host "Peer A: Connect-GlassChannel -Id $($binding.ChannelId) -LocalPort 5555 -Router $($router.Address)"

    $captureB = Start-GlassCapture -Net $net -Namespace hostB
    Write-Host "Sending $($Bytes / 1MB) MiB each way between A's 127.0.0.1:5555 and B's 127.0.0.1:9000..."
    $out = Invoke-GlassNetCommand -Net $net -Namespace hostA -FilePath (Get-GlassE2EDotnet) -TimeoutSeconds 300 -ArgumentList @(
        (Get-GlassE2ETestPeer), 'send', '--connect', '127.0.0.1:5555', '--bytes', "$Bytes", '--seed', '1')
    $sent = ConvertFrom-GlassE2EPeerOutput $out
    $null = Wait-GlassNetProcess -Process $serve -TimeoutSeconds 60
    $served = ConvertFrom-GlassE2EPeerOutput $serve.ReadStdout()
    $seenB = Stop-GlassCapture $captureB
    # The session that carried the bytes: the forwarder keeps a spare link pending beside it.
    $session = Get-GlassSession -ControlSocket $router.ControlSocket |
        Sort-Object { $_.BytesFromA + $_.BytesFromB } -Descending | Select-Object -First 1

    $rows = @(
        [pscustomobject]@{ Direction = 'A -> B'; Bytes = $served.received; Sha256Sent = $sent.sentSha256.Substring(0, 16); Sha256Received = $served.receivedSha256.Substring(0, 16); Intact = $sent.sentSha256 -eq $served.receivedSha256 }
        [pscustomobject]@{ Direction = 'B -> A'; Bytes = $sent.received; Sha256Sent = $served.sentSha256.Substring(0, 16); Sha256Received = $sent.receivedSha256.Substring(0, 16); Intact = $served.sentSha256 -eq $sent.receivedSha256 }
    )
    $rows | Format-Table -AutoSize | Out-String | Write-Host
    Write-Host "Seconds: $([math]::Round($sent.seconds, 2)); addresses B saw: $($seenB.Addresses -join ', ') (A's public address $($net.NatAPublicAddress) never)."
    if ($session) {
        $carrier = if ($session.Offloaded) { 'carried by the kernel (a conntrack entry)' } else { 'relayed by the translator' }
        Write-Host ("Translator session: $($session.PeerA) <-> $($session.PeerB), state $($session.State), ${carrier}: " +
            "$($session.BytesFromA + $session.BytesFromB) bytes in $($session.PacketsFromA + $session.PacketsFromB) packets.")
    }
    if (-not ($rows.Intact -notcontains $false) -or $seenB.Addresses -contains $net.NatAPublicAddress) {
        throw 'The demo failed: bytes differ or B saw A''s address.'
    }
    Write-Host "Channel $($binding.ChannelId): $($Bytes * 2) bytes crossed the glass router intact."
}
finally {
    Remove-GlassTestNet -Net $net
}
