#!/usr/bin/env pwsh
<#
.SYNOPSIS
    Tries a glass translator on one machine, as the original design's own test did: two local
    clients dial 127.0.0.1 at two router ports, the 16-byte LINK datagram splices them, each sends
    "test" and reads the other's, then -Bytes of random data cross each way. Prints what happened.
.EXAMPLE
    sudo dotnet pwsh ./examples/one-machine.ps1
.EXAMPLE
    sudo dotnet pwsh ./examples/one-machine.ps1 -Offload None -Bytes 64MB
#>
[CmdletBinding()]
param(
    [int] $Queue = 6,
    [string] $PortRange = '61000-61999',
    [string] $ControlSocket = '/run/glass/translator.sock',
    [ValidateSet('Kernel', 'None')] [string] $Offload = 'Kernel',
    # Random bytes each client sends after "test" (SHA-256 compared at the other end); 0 for none.
    [long] $Bytes = 1MB,
    [string] $Address = '127.0.0.1',
    [int] $TimeoutSec = 30,
    [string] $ModulePath = $(if ($env:GLASS_MODULE) { $env:GLASS_MODULE } else { Join-Path $PSScriptRoot '../out/Glass/Glass.psd1' })
)
$ErrorActionPreference = 'Stop'
Import-Module $ModulePath

$first = [int]($PortRange -split '-')[0]
$ports = $first, ($first + 1)
$translator = Start-GlassTranslator -Queue $Queue -PortRange $PortRange -ControlSocket $ControlSocket -Offload $Offload
$clients = @()
try {
    # LINK: (address, port, 0, 0) for each peer, big-endian; the ports are the router ports each dials.
    $ip = [System.Net.IPAddress]::Parse($Address).GetAddressBytes()
    $link = [byte[]]::new(16)
    foreach ($i in 0, 1) {
        [Array]::Copy($ip, 0, $link, 8 * $i, 4)
        $link[8 * $i + 4] = $ports[$i] -shr 8
        $link[8 * $i + 5] = $ports[$i] -band 0xff
    }
    $datagram = [System.Net.Sockets.Socket]::new('Unix', 'Dgram', 'Unspecified')
    try { $null = $datagram.SendTo($link, [System.Net.Sockets.UnixDomainSocketEndPoint]::new("$ControlSocket.dgram")) }
    finally { $datagram.Dispose() }

    $clients = foreach ($port in $ports) { [System.Net.Sockets.TcpClient]::new([System.Net.Sockets.AddressFamily]::InterNetwork) }
    $connects = foreach ($i in 0, 1) { $clients[$i].ConnectAsync($Address, $ports[$i]) }
    if (-not [System.Threading.Tasks.Task]::WaitAll([System.Threading.Tasks.Task[]]$connects, $TimeoutSec * 1000)) {
        throw "The two clients did not connect to ${Address}:$($ports -join ' and :') within $TimeoutSec s."
    }
    $streams = foreach ($c in $clients) { $c.ReceiveTimeout = $TimeoutSec * 1000; $c.GetStream() }

    # Each side writes "test" then its random bytes while the other side reads them: both at once,
    # so neither blocks on a full window.
    $payloads = foreach ($i in 0, 1) {
        $b = [System.Security.Cryptography.RandomNumberGenerator]::GetBytes(4 + $Bytes)
        [System.Text.Encoding]::ASCII.GetBytes('test').CopyTo($b, 0)
        , $b
    }
    $received = foreach ($i in 0, 1) { , [byte[]]::new(4 + $Bytes) }
    $writes = foreach ($i in 0, 1) { $streams[$i].WriteAsync($payloads[$i], 0, $payloads[$i].Length) }
    $reads = foreach ($i in 0, 1) { $streams[1 - $i].ReadExactlyAsync($received[1 - $i], 0, $received[1 - $i].Length).AsTask() }
    if (-not [System.Threading.Tasks.Task]::WaitAll([System.Threading.Tasks.Task[]]@($writes + $reads), $TimeoutSec * 1000)) {
        throw "The bytes did not cross within $TimeoutSec s."
    }
    $sha = { param($b) [Convert]::ToHexString([System.Security.Cryptography.SHA256]::HashData([byte[]]$b)).ToLowerInvariant() }
    $status = Get-GlassTranslatorStatus -ControlSocket $ControlSocket
    [pscustomobject]@{
        Offload           = $Offload
        ALocal            = "$($clients[0].Client.LocalEndPoint)"
        BLocal            = "$($clients[1].Client.LocalEndPoint)"
        AReceived         = [System.Text.Encoding]::ASCII.GetString($received[0], 0, 4)
        BReceived         = [System.Text.Encoding]::ASCII.GetString($received[1], 0, 4)
        Bytes             = $Bytes
        ASentSha256       = & $sha $payloads[0]
        BReceivedSha256   = & $sha $received[1]
        BSentSha256       = & $sha $payloads[1]
        AReceivedSha256   = & $sha $received[0]
        SessionsKeptLocal = $status.SessionsKeptLocal
        SessionsOffloaded = $status.SessionsOffloaded
        PacketsRelayed    = $status.PacketsRelayed
        Truncated         = $status.Drops['Truncated']
    }
}
finally {
    foreach ($c in $clients) { $c.Dispose() }
    Stop-GlassTranslator -Queue $Queue
}
