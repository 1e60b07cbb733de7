# Starts the real Glass parts inside a GlassTestNet topology: the router (translator and
# controller, examples/router.ps1) in the router namespace, a test server and a binding behind
# NAT B, a forwarded channel behind NAT A. Shared by the Pester tests and examples/demo.ps1.

Set-StrictMode -Version Latest
$ErrorActionPreference = 'Stop'

$RepoRoot = (Resolve-Path (Join-Path $PSScriptRoot '../..')).Path

function Get-GlassE2EModule {
    if ($env:GLASS_MODULE) { return $env:GLASS_MODULE }
    Join-Path $RepoRoot 'out/Glass/Glass.psd1'
}

function Get-GlassE2ETestPeer {
    $dll = if ($env:GLASS_TESTPEER) { $env:GLASS_TESTPEER } else { Join-Path $RepoRoot 'tests/Glass.TestPeer/bin/Release/net10.0/glass-testpeer.dll' }
    if (-not (Test-Path -LiteralPath $dll)) { throw "glass-testpeer not found at $dll; run ./build.ps1 build first." }
    $dll
}

function Get-GlassE2EDotnet {
    $cmd = Get-Command dotnet -CommandType Application -ErrorAction Ignore | Select-Object -First 1
    if ($cmd) { $cmd.Source } else { [Environment]::ProcessPath }
}

function ConvertFrom-GlassE2EPeerOutput([string] $Text) {
    @($Text -split "`n" | Where-Object { $_.Trim().StartsWith('{') } | ForEach-Object { $_ | ConvertFrom-Json })
}

function Start-GlassE2EPwsh {
    param($Net, [string] $Namespace, [string] $Script, [string[]] $ArgumentList, [hashtable] $Environment)
    $pwsh = Get-GlassPwshCommand
    $env:GLASS_MODULE = Get-GlassE2EModule
    Start-GlassNetProcess -Net $Net -Namespace $Namespace -FilePath $pwsh.FilePath -Environment $Environment -ArgumentList (
        @($pwsh.ArgumentList) + @('-NoProfile', '-NonInteractive', '-File', (Join-Path $RepoRoot $Script)) + $ArgumentList)
}

function Wait-GlassE2EFile {
    param($Process, [string] $Path, [string] $Because, [int] $TimeoutSeconds = 60)
    Wait-GlassCondition -TimeoutSeconds $TimeoutSeconds -Because $Because {
        if ($Process.HasExited) { throw "$Because failed: the process exited ($($Process.ExitCode)): $($Process.ReadStderr()) $($Process.ReadStdout())" }
        Test-Path -LiteralPath $Path
    } | Out-Null
}

function Start-GlassE2ERouter {
    <#
    Starts translator and controller in the router namespace from a YAML config, in one pwsh
    process or (-Separate) in two; returns where they listen. The controller's key is generated
    into the net's temp directory; clients in each namespace trust it on first use.
    The limits (-LinksPerAddress, -ConnectRatePerAddress, -ConnectionsPerAddress, -MaxSessions)
    and -LeaseSeconds go into the config only when given, so the router keeps its defaults
    otherwise; -AllowPlaintext sets tls.allowPlaintext (plain GLASS/1 and the binary BIND/CONN). -Script runs
    another host script with router.ps1's parameters (-ConfigPath, -Role, -ReadyFile), e.g. the
    benchmark's, which also reports the process's managed memory. -Environment adds variables to
    the router processes' environment.
    #>
    param($Net, [string] $PortRange = '60000-60099', [int] $Queue = 6, [int] $ControllerPort = 7000, [switch] $Separate,
        [int] $TimeWaitSeconds = 30, [int] $PendingSeconds = 60, [ValidateSet('kernel', 'none')] [string] $Offload = 'kernel', [switch] $KeepSessions,
        [int] $LinksPerAddress, [int] $ConnectRatePerAddress, [int] $ConnectionsPerAddress, [int] $MaxSessions, [int] $MetricsPort, [switch] $FailOpen,
        [int] $LeaseSeconds, [switch] $AllowPlaintext,
        [string] $Script = 'examples/router.ps1', [hashtable] $Environment,
        # More top-level YAML (e.g. an access section), appended as given.
        [string[]] $ConfigLines = @())
    Import-Module (Get-GlassE2EModule) -Global
    $first, $last = $PortRange -split '-'
    # Keep the router's own outgoing connections out of the relay range.
    Invoke-GlassNetCommand -Net $Net -Namespace router -FilePath sysctl -ArgumentList @('-qw', "net.ipv4.ip_local_port_range=32768 $([int]$first - 1)") | Out-Null
    $socket = Join-Path $Net.TempDirectory 'translator.sock'
    $config = Join-Path $Net.TempDirectory 'router.yaml'
    @"
queue: $Queue
portRange: $PortRange
controlSocket: $socket
offload: $Offload
keepSessions: $(if ($KeepSessions) { 'true' } else { 'false' })
failOpen: $(if ($FailOpen) { 'true' } else { 'false' })
controller:
  address: 0.0.0.0
  port: $ControllerPort
  registry: $(Join-Path $Net.TempDirectory "controller-$ControllerPort.db")
timeouts:
  timeWait: $TimeWaitSeconds
  pending: $PendingSeconds
$(if ($LeaseSeconds) { "  lease: $LeaseSeconds" })
tls:
  certificate: $(Join-Path $Net.TempDirectory "controller-$ControllerPort.pem")
  allowPlaintext: $(if ($AllowPlaintext) { 'true' } else { 'false' })
"@ | Set-Content -Path $config
    if ($MetricsPort) { Add-Content -Path $config -Value @('metrics:', "  port: $MetricsPort") }
    if ($ConfigLines) { Add-Content -Path $config -Value $ConfigLines }
    $limits = [ordered]@{ linksPerAddress = $LinksPerAddress; connectRatePerAddress = $ConnectRatePerAddress; connectionsPerAddress = $ConnectionsPerAddress; sessions = $MaxSessions }
    $given = @($limits.Keys | Where-Object { $limits[$_] -gt 0 })
    if ($given) {
        Add-Content -Path $config -Value (@('limits:') + @($given | ForEach-Object { "  ${_}: $($limits[$_])" }))
    }
    $roles = if ($Separate) { 'Translator', 'Controller' } else { , 'Both' }
    $processes = foreach ($role in $roles) {
        $ready = Join-Path $Net.TempDirectory "router-$role-$ControllerPort.ready"
        Remove-Item -LiteralPath $ready -ErrorAction Ignore
        $p = Start-GlassE2EPwsh -Net $Net -Namespace router -Script $Script -Environment $Environment -ArgumentList @(
            '-ConfigPath', $config, '-Role', $role, '-ReadyFile', $ready)
        Wait-GlassE2EFile -Process $p -Path $ready -Because "the glass router ($role) to start"
        $p
    }
    [pscustomobject]@{
        Process       = $processes
        Address       = "$($Net.RouterAddress):$ControllerPort"
        ControlSocket = $socket
        ConfigPath    = $config
        FirstPort     = [int]$first
        LastPort      = [int]$last
    }
}

function Start-GlassE2ETranslator {
    <# Starts one more translator in the router namespace from a config file, e.g. to restart it. #>
    param($Net, [string] $ConfigPath, [string] $Name = 'translator-2')
    $ready = Join-Path $Net.TempDirectory "$Name.ready"
    Remove-Item -LiteralPath $ready -ErrorAction Ignore
    $p = Start-GlassE2EPwsh -Net $Net -Namespace router -Script 'examples/router.ps1' -ArgumentList @(
        '-ConfigPath', $ConfigPath, '-Role', 'Translator', '-ReadyFile', $ready)
    Wait-GlassE2EFile -Process $p -Path $ready -Because "the glass translator ($Name) to start"
    $p
}

function Start-GlassE2EServer {
    <# glass-testpeer serve on 127.0.0.1:9000 behind NAT B: the local server a binding exposes. #>
    # -HoldFile: the server reads nothing while that file exists.
    param($Net, [long] $Bytes, [int] $Seed = 2, [int] $Count = 1, [int] $Port = 9000, [string] $HoldFile)
    $ready = Join-Path $Net.TempDirectory "serve-$Port.ready"
    $arguments = @((Get-GlassE2ETestPeer), 'serve', '--listen', "127.0.0.1:$Port", '--bytes', "$Bytes", '--seed', "$Seed",
        '--count', "$Count", '--ready-file', $ready, '--timeout', '180')
    if ($HoldFile) { $arguments += @('--hold-file', $HoldFile) }
    $p = Start-GlassNetProcess -Net $Net -Namespace hostB -FilePath (Get-GlassE2EDotnet) -ArgumentList $arguments
    Wait-GlassE2EFile -Process $p -Path $ready -Because 'glass-testpeer serve to listen behind NAT B'
    $p
}

function Start-GlassE2EEchoServer {
    <# glass-testpeer echo-serve on 127.0.0.1:<Port> behind NAT B, serving every connection until killed. #>
    param($Net, [int] $Port = 9000)
    $ready = Join-Path $Net.TempDirectory "echo-$Port.ready"
    $p = Start-GlassNetProcess -Net $Net -Namespace hostB -FilePath (Get-GlassE2EDotnet) -ArgumentList @(
        (Get-GlassE2ETestPeer), 'echo-serve', '--listen', "127.0.0.1:$Port", '--ready-file', $ready)
    Wait-GlassE2EFile -Process $p -Path $ready -Because 'the echo server behind NAT B to listen'
    $p
}

function Start-GlassE2EBinding {
    <# New-GlassBinding behind NAT B for the local server; returns the process and the channel id. #>
    param($Net, $Router, [int] $LocalPort = 9000)
    $file = Join-Path $Net.TempDirectory "channel-$LocalPort.id"
    # A second binding of the same local port must not read the first one's id.
    Remove-Item -LiteralPath $file -ErrorAction Ignore
    $p = Start-GlassE2EPwsh -Net $Net -Namespace hostB -Script 'examples/bind.ps1' -ArgumentList @(
        '-Router', $Router.Address, '-LocalPort', "$LocalPort", '-ChannelFile', $file)
    Wait-GlassE2EFile -Process $p -Path $file -Because 'New-GlassBinding to obtain a channel id'
    [pscustomobject]@{ Process = $p; ChannelId = (Get-Content -LiteralPath $file -Raw).Trim() }
}

function Start-GlassE2EChannel {
    <# Connect-GlassChannel behind NAT A, forwarding a local port to the channel. #>
    param($Net, $Router, [string] $ChannelId, [int] $LocalPort = 5555)
    $ready = Join-Path $Net.TempDirectory "channel-$LocalPort.ready"
    $p = Start-GlassE2EPwsh -Net $Net -Namespace hostA -Script 'examples/connect.ps1' -ArgumentList @(
        '-Router', $Router.Address, '-Id', $ChannelId, '-LocalPort', "$LocalPort", '-ReadyFile', $ready)
    Wait-GlassE2EFile -Process $p -Path $ready -Because 'Connect-GlassChannel to listen behind NAT A'
    $p
}

function Get-GlassE2EEndpoint {
    <# Connect-GlassChannel without -LocalPort, behind NAT A: one router endpoint, as "address:port", for an application to dial. #>
    param($Net, $Router, [string] $ChannelId)
    $pwsh = Get-GlassPwshCommand
    $text = Invoke-GlassNetCommand -Net $Net -Namespace hostA -FilePath $pwsh.FilePath -TimeoutSeconds 60 -ArgumentList (@($pwsh.ArgumentList) + @(
            '-NoProfile', '-NonInteractive', '-Command',
            "Import-Module '$(Get-GlassE2EModule)'; `$e = Connect-GlassChannel -Id $ChannelId -Router $($Router.Address); `$e.Address.ToString() + ':' + `$e.Port"))
    $text.Trim()
}

function Get-GlassE2EControllerStatus {
    <# The controller's GLASS/1 STATUS counters; it answers on loopback only, so ask from inside the router's namespace. #>
    param($Net, [int] $Port = 7000)
    $line = Invoke-GlassNetCommand -Net $Net -Namespace router -FilePath sh -ArgumentList @(
        '-c', "echo GLASS/1 STATUS | socat -t 5 - TCP:127.0.0.1:$Port")
    if ($line.Trim() -notlike 'OK {*') { throw "The controller answered STATUS with '$($line.Trim())'." }
    $line.Trim().Substring(3) | ConvertFrom-Json
}

function Get-GlassE2EOffloadEntry {
    <# The router's conntrack entries that a translator on this queue made (they carry its mark), as conntrack -L lines. #>
    param($Net, [int] $Queue = 6)
    $mark = 0x474C0000 -bor $Queue
    $out = Invoke-GlassNetCommand -Net $Net -Namespace router -FilePath conntrack -ArgumentList @('-L', '-p', 'tcp', '--mark', "$mark")
    @($out -split "`n" | Where-Object { $_ -match "mark=$mark" })
}

function Get-GlassE2ERouterRule {
    <# Every rule a translator added in the router's namespace (they carry its comment), in any table. #>
    param($Net)
    $rules = foreach ($table in 'filter', 'raw', 'nat') {
        Invoke-GlassNetCommand -Net $Net -Namespace router -FilePath iptables -ArgumentList @('-t', $table, '-S')
    }
    @($rules -split "`n" | Where-Object { $_ -match 'glass-translator-' })
}

function Start-GlassE2ETransfer {
    <# glass-testpeer send through a forwarded port behind NAT A: a new connection, a new link, a new session. #>
    param($Net, [string] $Bytes, [int] $Seed, [int] $LocalPort = 5555)
    Start-GlassNetProcess -Net $Net -Namespace hostA -FilePath (Get-GlassE2EDotnet) -ArgumentList @(
        (Get-GlassE2ETestPeer), 'send', '--connect', "127.0.0.1:$LocalPort", '--bytes', $Bytes, '--seed', "$Seed", '--timeout', '120')
}

function Assert-GlassE2EIntact {
    <# A transfer from Start-GlassE2ETransfer to a Start-GlassE2EServer: both directions hash the same at both ends. #>
    param($Send, $Serve)
    Wait-GlassNetProcess -Process $Send -TimeoutSeconds 150 | Should -Be 0 -Because $Send.ReadStderr()
    $sent = ConvertFrom-GlassE2EPeerOutput $Send.ReadStdout() | Select-Object -First 1
    $served = Wait-GlassCondition -TimeoutSeconds 30 -Because 'the server to report the connection' {
        ConvertFrom-GlassE2EPeerOutput $Serve.ReadStdout() | Where-Object receivedSha256 -eq $sent.sentSha256
    }
    $served.received | Should -Be $sent.sent
    $sent.receivedSha256 | Should -Be $served.sentSha256
    $sent.received | Should -Be $served.sent
}

Export-ModuleMember -Function Get-GlassE2EEndpoint, Start-GlassE2ETranslator, Get-GlassE2EControllerStatus, Get-GlassE2EOffloadEntry, Get-GlassE2ERouterRule, Get-GlassE2EModule, Get-GlassE2ETestPeer, Get-GlassE2EDotnet, ConvertFrom-GlassE2EPeerOutput,
    Start-GlassE2ERouter, Start-GlassE2EServer, Start-GlassE2EBinding, Start-GlassE2EChannel, Start-GlassE2EPwsh, Start-GlassE2EEchoServer,
    Start-GlassE2ETransfer, Assert-GlassE2EIntact
