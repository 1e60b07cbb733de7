#!/usr/bin/env pwsh
<#
.SYNOPSIS
    End-to-end benchmark: Glass against the kernel's NAT and a socat relay, in network namespaces
    it makes, every path measured in the same run. docs/performance.md explains it.
.DESCRIPTION
    Paths (each in its own copy of the test topology, tests/pester/GlassTestNet.psm1):
      kernel  kernel NAT: DNAT+SNAT on the router to NAT B's public address, a port forward on
              NAT B to hostB's server; hostA dials the router port. The path's limit.
      socat   a socat on the router joining an accepted connection from B's side with one from
              A's side, a socat forwarder at each end (how, in docs/performance.md).
      glass   Connect-GlassChannel -LocalPort on hostA, New-GlassBinding on hostB.
      direct  the application on hostA dials the router endpoint the controller hands out for
              each connection (Connect-GlassChannel without -LocalPort, or glass-bench direct
              for the workloads with many connections).
      none    as glass, the router started with -Offload none (the userspace packet path).
    Workloads, bytes verified in each:
      bulk1 bulk8     one stream / 8 streams, -BulkBytes in all, A to B; Gbit/s, router CPU s/GiB
      echo64 echo16k  round trips of 64 B / 16 KiB on one connection; p50, p99
      setups          sequential connect, 1-byte echo, close; setups/s, p50, p99, machine CPU per setup
      hold            -HoldConnections idle connections; the router's memory per connection
    Writes out/bench/e2e.json, e2e.md (the tables of docs/performance.md) and e2e.svg.
.EXAMPLE
    dotnet pwsh ./build.ps1 bench                    # engine bench, fuzz, then this at full size
.EXAMPLE
    dotnet pwsh tests/bench/E2E.Bench.ps1 -Quick -Paths kernel,glass -Workloads bulk1,echo64
#>
[CmdletBinding()]
param(
    # kernel, socat, glass, direct, none (a comma-separated string works too, as pwsh -File passes it)
    [string[]] $Paths = @('kernel', 'socat', 'glass', 'direct', 'none'),
    # bulk1, bulk8, echo64, echo16k, setups, hold
    [string[]] $Workloads = @('bulk1', 'bulk8', 'echo64', 'echo16k', 'setups', 'hold'),
    [ValidateRange(1, 99)] [int] $Runs = 3,
    # Bytes per bulk run, A to B, split evenly over the streams.
    [long] $BulkBytes = 2GB,
    [int] $EchoCount = 2000,
    [int] $SetupCount = 500,
    # Setups each Glass path makes before anything is measured (JIT tiering of the setup code).
    [int] $WarmupSetups = 2000,
    # Connections each Glass path holds once before the hold's baseline (JIT of the hold's code).
    [int] $WarmupHold = 1000,
    [int] $HoldConnections = 10000,
    # socat runs three processes per connection; pid_max (often 32768) caps it well below 10,000.
    [int] $SocatHoldConnections = 1000,
    [int] $HoldParallel = 64,
    # Smaller sizes and one run, to check the mechanics (unless a size is given explicitly).
    [switch] $Quick,
    [string] $OutDirectory = (Join-Path $PSScriptRoot '../../out/bench')
)

$ErrorActionPreference = 'Stop'
Set-StrictMode -Version Latest

$AllPaths = [ordered]@{
    kernel = 'kernel NAT'
    socat  = 'socat relay'
    glass  = 'Glass -LocalPort'
    direct = 'Glass direct'
    none   = 'Glass offload none'
}
$AllWorkloads = [ordered]@{
    bulk1   = 'bulk, 1 stream'
    bulk8   = 'bulk, 8 streams'
    echo64  = 'echo 64 B'
    echo16k = 'echo 16 KiB'
    setups  = 'sequential setups'
    hold    = 'idle connections held'
}
$Paths = @($Paths -split ',' | ForEach-Object { $_.Trim() } | Where-Object { $_ })
$Workloads = @($Workloads -split ',' | ForEach-Object { $_.Trim() } | Where-Object { $_ })
foreach ($p in $Paths) { if (-not $AllPaths.Contains($p)) { throw "Unknown path '$p'; use $(@($AllPaths.Keys) -join ', ')." } }
foreach ($w in $Workloads) { if (-not $AllWorkloads.Contains($w)) { throw "Unknown workload '$w'; use $(@($AllWorkloads.Keys) -join ', ')." } }
# Keep the documented order whatever order they were given in.
$Paths = @($AllPaths.Keys | Where-Object { $Paths -contains $_ })
$Workloads = @($AllWorkloads.Keys | Where-Object { $Workloads -contains $_ })

if ($Quick) {
    $quickValues = @{ Runs = 1; BulkBytes = 256MB; EchoCount = 500; SetupCount = 100; WarmupSetups = 200; WarmupHold = 100; HoldConnections = 1000; SocatHoldConnections = 200 }
    foreach ($name in $quickValues.Keys) {
        if (-not $PSBoundParameters.ContainsKey($name)) { Set-Variable -Name $name -Value $quickValues[$name] }
    }
}

Import-Module (Join-Path $PSScriptRoot '../pester/GlassTestNet.psm1') -Force
Import-Module (Join-Path $PSScriptRoot '../pester/GlassE2E.psm1') -Force

$RepoRoot = (Resolve-Path (Join-Path $PSScriptRoot '../..')).Path
$Dotnet = Get-GlassE2EDotnet
$Peer = Get-GlassE2ETestPeer
$BenchDll = if ($env:GLASS_BENCH) { $env:GLASS_BENCH } else { Join-Path $RepoRoot 'tests/Glass.Bench/bin/Release/net10.0/glass-bench.dll' }
if (-not (Test-Path -LiteralPath $BenchDll)) { throw "glass-bench not found at $BenchDll; run ./build.ps1 build first." }
$Inv = [System.Globalization.CultureInfo]::InvariantCulture
$ClkTck = [int](& getconf CLK_TCK)

# Ports. hostB serves bulk on 9000 and echo on 9001 in every net; each path has its own ports
# towards those two (bulk, echo).
$ServePort = 9000
$EchoPort = 9001
$KernelPorts = @{ bulk = 6100; echo = 6101 }                      # router ports DNATed to B
$SocatPorts = @{ bulk = @{ a = 6200; b = 6201; local = 5200 }; echo = @{ a = 6210; b = 6211; local = 5201 } }
$GlassLocalPorts = @{ bulk = 5000; echo = 5001 }                  # Connect-GlassChannel -LocalPort
$SocatPool = 16                                                     # B's pre-dialled connections per target

# ------------------------------------------------------------------------------------------
# Small helpers
# ------------------------------------------------------------------------------------------

function Write-Step([string] $Text) { Write-Host "[$([datetime]::Now.ToString('HH:mm:ss'))] $Text" }

function Get-Stat([double[]] $Values) {
    $v = @($Values | Where-Object { $null -ne $_ -and -not [double]::IsNaN($_) } | Sort-Object)
    if ($v.Count -eq 0) { return $null }
    $mid = [int][Math]::Floor($v.Count / 2)
    $median = if ($v.Count % 2) { $v[$mid] } else { ($v[$mid - 1] + $v[$mid]) / 2 }
    [ordered]@{ median = $median; min = $v[0]; max = $v[-1]; values = [double[]]$Values }
}

function ConvertFrom-JsonLines([string] $Text) {
    @($Text -split "`n" | Where-Object { $_.Trim().StartsWith('{') } | ForEach-Object { $_ | ConvertFrom-Json })
}

function Invoke-Ns {
    # Runs FILE ARGS in a namespace of the net; returns stdout.
    param($Net, [string] $Namespace, [string] $FilePath, [string[]] $ArgumentList, [double] $TimeoutSeconds = 120)
    Invoke-GlassNetCommand -Net $Net -Namespace $Namespace -FilePath $FilePath -ArgumentList $ArgumentList -TimeoutSeconds $TimeoutSeconds
}

function Invoke-Sh($Net, [string] $Namespace, [string] $Script, [double] $TimeoutSeconds = 60) {
    Invoke-Ns $Net $Namespace sh @('-c', $Script) -TimeoutSeconds $TimeoutSeconds
}

function Start-PipedProcess {
    <#
    Like Start-GlassNetProcess, but stdin is a pipe this script holds: closing it (the hold
    workloads' signal to finish) is $p.Process.StandardInput.Close(). Recorded in the net, so
    Remove-GlassTestNet stops it too.
    #>
    param($Net, [string] $Namespace, [string] $FilePath, [string[]] $ArgumentList)
    $ns = switch ($Namespace) { 'hostA' { $Net.HostANs } 'hostB' { $Net.HostBNs } 'router' { $Net.RouterNs } default { $Namespace } }
    $base = Join-Path $Net.TempDirectory ('{0:D3}-piped-{1}' -f $Net.Processes.Count, [IO.Path]::GetFileName($FilePath))
    $psi = [System.Diagnostics.ProcessStartInfo]::new('sh')
    $psi.UseShellExecute = $false
    $psi.RedirectStandardInput = $true
    foreach ($a in @('-c', 'out=$1; err=$2; shift 2; exec "$@" >"$out" 2>"$err"', 'glass-bench-piped',
            "$base.stdout", "$base.stderr", 'ip', 'netns', 'exec', $ns, $FilePath) + $ArgumentList) {
        $psi.ArgumentList.Add([string]$a)
    }
    $process = [System.Diagnostics.Process]::Start($psi)
    $record = [pscustomobject]@{ Pid = $process.Id; Process = $process; StdoutPath = "$base.stdout"; StderrPath = "$base.stderr" }
    $record | Add-Member -MemberType ScriptProperty -Name HasExited -Value { $this.Process.HasExited }
    $record | Add-Member -MemberType ScriptMethod -Name ReadStdout -Value { Get-Content -Raw -LiteralPath $this.StdoutPath -ErrorAction Ignore }
    $record | Add-Member -MemberType ScriptMethod -Name ReadStderr -Value { Get-Content -Raw -LiteralPath $this.StderrPath -ErrorAction Ignore }
    $Net.Processes.Add($record)
    $record
}

function Stop-ProcessTree($Process) {
    # A process this script started and everything it forked (socat pools), by pid.
    if ($Process -and -not $Process.Process.HasExited) {
        try { $Process.Process.Kill($true) } catch { Write-Verbose "kill $($Process.Pid): $_" }
        $null = $Process.Process.WaitForExit(5000)
    }
}

function Wait-File($Process, [string] $Path, [string] $Because, [double] $TimeoutSeconds = 60) {
    Wait-GlassCondition -TimeoutSeconds $TimeoutSeconds -Because $Because {
        if ($Process.HasExited) { throw "$Because failed: the process exited: $($Process.ReadStderr())" }
        Test-Path -LiteralPath $Path
    } | Out-Null
}

# ------------------------------------------------------------------------------------------
# What the router costs: CPU and memory from /proc, conntrack and sockets from its namespace
# ------------------------------------------------------------------------------------------

function Get-CpuSeconds([int[]] $Pids) {
    # utime + stime, plus cutime + cstime: socat's finished children are reaped into its parent.
    $ticks = 0L
    foreach ($id in $Pids) {
        $stat = Get-Content -Raw -LiteralPath "/proc/$id/stat" -ErrorAction Ignore
        if (-not $stat) { continue }
        $f = $stat.Substring($stat.LastIndexOf(')') + 2).Split(' ')
        # $f[0] is field 3 (state): utime, stime, cutime, cstime are fields 14 to 17.
        $ticks += [long]$f[11] + [long]$f[12] + [long]$f[13] + [long]$f[14]
    }
    $ticks / $ClkTck
}

function Get-SoftirqSeconds {
    # Machine-wide (all namespaces, all users of this machine): the "cpu" line's 7th value.
    $cpu = (Get-Content -LiteralPath /proc/stat -TotalCount 1).Split(' ', [StringSplitOptions]::RemoveEmptyEntries)
    [long]$cpu[7] / $ClkTck
}

function Get-ProcessMemory([int[]] $Pids) {
    # Sums over the processes, in bytes: VmRSS and RssAnon (/proc/PID/status), Pss and
    # Private_Dirty (/proc/PID/smaps_rollup; PSS shares pages among forked socat children fairly).
    $m = [ordered]@{ processes = 0; rssBytes = 0L; rssAnonBytes = 0L; pssBytes = 0L; privateDirtyBytes = 0L }
    foreach ($id in $Pids) {
        $status = Get-Content -LiteralPath "/proc/$id/status" -ErrorAction Ignore
        $rollup = Get-Content -LiteralPath "/proc/$id/smaps_rollup" -ErrorAction Ignore
        if (-not $status -or -not $rollup) { continue }
        $m.processes++
        foreach ($line in @($status) + @($rollup)) {
            if ($line -match '^(VmRSS|RssAnon|Pss|Private_Dirty):\s+(\d+) kB') {
                $key = @{ VmRSS = 'rssBytes'; RssAnon = 'rssAnonBytes'; Pss = 'pssBytes'; Private_Dirty = 'privateDirtyBytes' }[$Matches[1]]
                $m[$key] += [long]$Matches[2] * 1024
            }
        }
    }
    $m
}

function Get-NamespacePids($Net, [string] $Comm) {
    $ns = $Net.RouterNs
    $all = @(& ip netns pids $ns) | Where-Object { $_ -match '^\d+$' }
    @($all | Where-Object { (Get-Content -LiteralPath "/proc/$_/comm" -ErrorAction Ignore) -eq $Comm } | ForEach-Object { [int]$_ })
}

function Get-SlabObjectSize([string] $Cache) {
    $line = Get-Content -LiteralPath /proc/slabinfo -ErrorAction Ignore | Where-Object { $_ -match "^$Cache\s" } | Select-Object -First 1
    if ($line) { [int]($line -split '\s+')[3] } else { $null }
}

function Get-RouterKernelState($Net) {
    # conntrack entries and TCP sockets in the router's namespace.
    $out = Invoke-Sh $Net router @'
c=$(conntrack -C 2>/dev/null || echo 0)
e=$(conntrack -L -p tcp --state ESTABLISHED 2>/dev/null | wc -l)
echo "$c $e"
grep '^TCP:' /proc/net/sockstat
'@
    $lines = $out -split "`n"
    $ct = $lines[0].Trim() -split ' '
    $tcp = if ($lines[1] -match 'inuse (\d+) orphan (\d+) tw (\d+)') { @{ inuse = [long]$Matches[1]; tw = [long]$Matches[3] } } else { @{ inuse = 0; tw = 0 } }
    [ordered]@{ conntrack = [long]$ct[0]; conntrackEstablished = [long]$ct[1]; tcpSockets = $tcp.inuse; tcpTimeWait = $tcp.tw }
}

# ------------------------------------------------------------------------------------------
# The paths: each net kind is one copy of the topology with its router and hostB's servers
# ------------------------------------------------------------------------------------------

function Start-Servers($Ctx) {
    $net = $Ctx.Net
    # One way, A to B: the server sends nothing (--bytes 0) and reports what it received. It
    # closes its side only after A's end of stream: a connection half-closed from the start
    # would lose its NAT mapping after nf_conntrack_tcp_timeout_close_wait while it waits in
    # socat's pool of pre-dialled connections. XXH3 rather than SHA-256 at both ends: hashing
    # alone would cap every path near 5 Gbit/s on 2 cores and hide the relays' differences.
    $ready = Join-Path $net.TempDirectory 'serve.ready'
    $Ctx.Serve = Start-GlassNetProcess -Net $net -Namespace hostB -FilePath $Dotnet -ArgumentList @(
        $Peer, 'serve', '--listen', "0.0.0.0:$ServePort", '--bytes', '0', '--count', '0', '--send-after-eof', 'true', '--ready-file', $ready,
        '--digest', 'xxh3')
    Wait-File $Ctx.Serve $ready 'glass-testpeer serve to listen behind NAT B'
    if ($HasEchoTools) {
        $ready = Join-Path $net.TempDirectory 'echo.ready'
        $Ctx.Echo = Start-GlassNetProcess -Net $net -Namespace hostB -FilePath $Dotnet -ArgumentList @(
            $Peer, 'echo-serve', '--listen', "0.0.0.0:$EchoPort", '--ready-file', $ready)
        Wait-File $Ctx.Echo $ready 'glass-testpeer echo-serve to listen behind NAT B'
    }
}

function New-KernelNat($Ctx) {
    $net = $Ctx.Net
    Invoke-Ns $net router sysctl @('-qw', 'net.ipv4.ip_forward=1', 'net.ipv4.conf.all.send_redirects=0',
        'net.ipv4.conf.default.send_redirects=0', "net.ipv4.conf.$($net.RouterBridge).send_redirects=0") | Out-Null
    foreach ($kind in 'bulk', 'echo') {
        $hostPort = if ($kind -eq 'bulk') { $ServePort } else { $EchoPort }
        $routerPort = $KernelPorts[$kind]
        Invoke-Ns $net router iptables @('-t', 'nat', '-A', 'PREROUTING', '-d', $net.RouterAddress, '-p', 'tcp', '--dport', "$routerPort",
            '-j', 'DNAT', '--to-destination', "$($net.NatBPublicAddress):$hostPort") | Out-Null
        Invoke-Ns $net router iptables @('-t', 'nat', '-A', 'POSTROUTING', '-d', $net.NatBPublicAddress, '-p', 'tcp', '--dport', "$hostPort",
            '-j', 'SNAT', '--to-source', $net.RouterAddress) | Out-Null
        Invoke-Ns $net natB iptables @('-t', 'nat', '-A', 'PREROUTING', '-i', $net.NatPublicInterface, '-d', $net.NatBPublicAddress,
            '-p', 'tcp', '--dport', "$hostPort", '-j', 'DNAT', '--to-destination', "$($net.HostBAddress):$hostPort") | Out-Null
    }
    $Ctx.Targets = @{ bulk = "$($net.RouterAddress):$($KernelPorts.bulk)"; echo = "$($net.RouterAddress):$($KernelPorts.echo)" }
}

function Start-SocatPool($Ctx, [string] $Kind, [int] $Size, [switch] $Once) {
    <#
    B's side of the socat relay: $Size connections dialled to the router ahead of time, each
    joined to hostB's server at once (socat opens both addresses before copying). With a loop,
    each is dialled again when its relay ends; -Once dials each once (the hold's extra pool).
    #>
    $net = $Ctx.Net
    $hostPort = if ($Kind -eq 'bulk') { $ServePort } else { $EchoPort }
    $loop = if ($Once) { '"$@" &' } else { '( while :; do "$@" || sleep 0.05; done ) &' }
    $script = 'n=$1; shift; i=0; while [ $i -lt $n ]; do ' + $loop + ' i=$((i+1)); done; wait'
    Start-GlassNetProcess -Net $net -Namespace hostB -FilePath sh -ArgumentList @('-c', $script, 'socat-pool', "$Size",
        'socat', '-b', '262144', '-t', '100000', "TCP:$($net.RouterAddress):$($SocatPorts[$Kind].b)", "TCP:127.0.0.1:$hostPort")
}

function Stop-SocatPool($Ctx, [string] $Kind, $Pool) {
    <#
    Ends pre-dialled connections that no A connection used. Their relays on the router still
    listen for A and would not notice that B is gone; they are the socat children whose B
    connection is now in CLOSE-WAIT, and are stopped by pid.
    #>
    Stop-ProcessTree $Pool
    Start-Sleep -Milliseconds 300
    $out = Invoke-Sh $Ctx.Net router "ss -Htnp state close-wait '( sport = :$($SocatPorts[$Kind].b) )'"
    $pids = @([regex]::Matches($out, 'pid=(\d+)') | ForEach-Object { [int]$_.Groups[1].Value } | Sort-Object -Unique)
    $parents = @($Ctx.SocatRouters | ForEach-Object { $_.Pid })
    foreach ($id in $pids) {
        if ($parents -notcontains $id) { Stop-Process -Id $id -Force -ErrorAction Ignore }
    }
}

function Get-SocatListeners($Ctx, [string] $Kind) {
    [int](Invoke-Sh $Ctx.Net router "ss -Hltn 'sport = :$($SocatPorts[$Kind].a)' | wc -l").Trim()
}

function Wait-SocatPool($Ctx, [string] $Kind, [int] $Listeners, [double] $TimeoutSeconds = 60) {
    Wait-GlassCondition -TimeoutSeconds $TimeoutSeconds -IntervalMilliseconds 200 -Because "$Listeners socat relays listening for A ($Kind)" {
        (Get-SocatListeners $Ctx $Kind) -ge $Listeners
    } | Out-Null
}

function New-SocatRelay($Ctx) {
    <#
    Router: per target one socat accepts B's connections (fork); each child then listens for
    one A connection on a port shared with its siblings (SO_REUSEPORT; tcp_migrate_req hands a
    closing listener's queued connections to a sibling) and copies between the two.
    hostA: socat listens locally and dials the router for each connection (fork).
    #>
    $net = $Ctx.Net
    Invoke-Ns $net router sysctl @('-qw', 'net.ipv4.tcp_migrate_req=1') | Out-Null
    $Ctx.SocatRouters = @()
    $Ctx.SocatPools = @{}
    foreach ($kind in 'bulk', 'echo') {
        $p = $SocatPorts[$kind]
        $Ctx.SocatRouters += Start-GlassNetProcess -Net $net -Namespace router -FilePath socat -ArgumentList @(
            '-b', '262144', '-t', '100000', "TCP-LISTEN:$($p.b),fork,reuseaddr,backlog=4096",
            "TCP-LISTEN:$($p.a),reuseaddr,reuseport,backlog=64")
        Start-GlassNetProcess -Net $net -Namespace hostA -FilePath socat -ArgumentList @(
            '-b', '262144', '-t', '100000', "TCP-LISTEN:$($p.local),bind=127.0.0.1,fork,reuseaddr,backlog=4096",
            "TCP:$($net.RouterAddress):$($p.a)") | Out-Null
    }
    Wait-GlassCondition -TimeoutSeconds 10 -Because 'the socat relays to listen' {
        [int](Invoke-Sh $net router "ss -Hltn '( sport = :$($SocatPorts.bulk.b) or sport = :$($SocatPorts.echo.b) )' | wc -l").Trim() -ge 2
    } | Out-Null
    foreach ($kind in 'bulk', 'echo') {
        if ($kind -eq 'echo' -and -not $HasEchoTools) { continue }
        $Ctx.SocatPools[$kind] = Start-SocatPool $Ctx $kind $SocatPool
        Wait-SocatPool $Ctx $kind $SocatPool
    }
    $Ctx.Targets = @{ bulk = "127.0.0.1:$($SocatPorts.bulk.local)"; echo = "127.0.0.1:$($SocatPorts.echo.local)" }
}

function New-GlassPath($Ctx, [string] $Offload) {
    $net = $Ctx.Net
    # The router runs as examples/glass-router.service runs it: with at most two malloc arenas
    # (docs/performance.md, "hold").
    $Ctx.Router = Start-GlassE2ERouter -Net $net -PortRange 60000-60999 -Offload $Offload -TimeWaitSeconds 2 `
        -LinksPerAddress 100000 -ConnectRatePerAddress 1000000 -MaxSessions 200000 -Script 'tests/bench/E2E.Router.ps1' `
        -Environment @{ MALLOC_ARENA_MAX = '2' }
    $Ctx.Channels = @{}
    $Ctx.Targets = @{}
    $Ctx.EchoShards = @()
    foreach ($kind in 'bulk', 'echo') {
        if ($kind -eq 'echo' -and -not $HasEchoTools) { continue }
        $hostPort = if ($kind -eq 'bulk') { $ServePort } else { $EchoPort }
        # The hold may need more than one binding and forwarder (see $HoldShards); the others use the first.
        $shards = if ($kind -eq 'echo') { $HoldShards } else { 1 }
        for ($i = 0; $i -lt $shards; $i++) {
            $binding = Start-GlassE2EBinding -Net $net -Router $Ctx.Router -LocalPort $hostPort
            $localPort = $GlassLocalPorts[$kind] + 10 * $i
            Start-GlassE2EChannel -Net $net -Router $Ctx.Router -ChannelId $binding.ChannelId -LocalPort $localPort | Out-Null
            if ($i -eq 0) {
                $Ctx.Channels[$kind] = $binding.ChannelId
                $Ctx.Targets[$kind] = "127.0.0.1:$localPort"
            }
            if ($kind -eq 'echo') { $Ctx.EchoShards += @{ Channel = $binding.ChannelId; Target = "127.0.0.1:$localPort" } }
        }
    }
    # Each shard is its own binding: two sharing one would hold twice the sockets in one process.
    $ids = @($Ctx.EchoShards | ForEach-Object { $_.Channel } | Sort-Object -Unique)
    if ($ids.Count -ne @($Ctx.EchoShards).Count) { throw "The hold's bindings share channel ids: $($ids -join ', ')." }
}

function Get-RouterPids($Ctx, [string] $Path, [switch] $ForMemory) {
    switch ($Path) {
        'kernel' { @() }
        'socat' {
            # CPU: the two parents (their finished children are reaped into them); memory: every
            # socat process in the router's namespace, live relays included.
            if ($ForMemory) { Get-NamespacePids $Ctx.Net socat } else { @($Ctx.SocatRouters | ForEach-Object { $_.Pid }) }
        }
        default { @($Ctx.Router.Process | ForEach-Object { $_.Pid }) }
    }
}

function Get-ManagedMemory($Ctx) {
    # Asks the router process (tests/bench/E2E.Router.ps1) to collect garbage and report.
    $ready = Join-Path $Ctx.Net.TempDirectory "router-Both-7000.ready"
    $answer = "$ready.memory.json"
    Remove-Item -LiteralPath $answer -ErrorAction Ignore
    Set-Content -LiteralPath "$ready.memory-request" -Value ''
    Wait-GlassCondition -TimeoutSeconds 30 -Because 'the router to report its managed memory' { Test-Path -LiteralPath $answer } | Out-Null
    Get-Content -Raw -LiteralPath $answer | ConvertFrom-Json
}

function Get-DirectEndpoint($Ctx, [string] $Kind) {
    # What an application does: ask the module (Connect-GlassChannel without -LocalPort) for one
    # router endpoint, then dial it.
    Get-GlassE2EEndpoint -Net $Ctx.Net -Router $Ctx.Router -ChannelId $Ctx.Channels[$Kind]
}

function Wait-Quiet($Ctx, [string] $Path) {
    # Before a hold: the previous workload's sessions and relays are gone.
    switch ($Path) {
        'socat' {
            foreach ($kind in 'bulk', 'echo') {
                Wait-GlassCondition -TimeoutSeconds 60 -IntervalMilliseconds 200 -Because "socat relays on $kind to finish" {
                    [int](Invoke-Sh $Ctx.Net router "ss -Htn state established '( sport = :$($SocatPorts[$kind].a) )' | wc -l").Trim() -eq 0
                } | Out-Null
            }
            Wait-SocatPool $Ctx 'echo' $SocatPool
        }
        'kernel' { }
        default {
            Wait-GlassCondition -TimeoutSeconds 60 -IntervalMilliseconds 250 -Because 'the translator''s sessions to end' {
                $s = Get-GlassTranslatorStatus -ControlSocket $Ctx.Router.ControlSocket
                $s.SessionsActive + $s.SessionsPending -eq 0
            } | Out-Null
        }
    }
}

function Get-HoldSnapshot($Ctx, [string] $Path, [switch] $NoWait) {
    # The router's memory (managed heap first: it collects garbage before /proc is read), its
    # conntrack entries and TCP sockets. Unless -NoWait, first waits for earlier work to end.
    if (-not $NoWait) { Wait-Quiet $Ctx $Path }
    $managed = if ($Path -in 'glass', 'direct', 'none') { Get-ManagedMemory $Ctx }
    [ordered]@{
        managed = $managed
        memory  = Get-ProcessMemory (Get-RouterPids $Ctx $Path -ForMemory)
        kernel  = Get-RouterKernelState $Ctx.Net
    }
}

# ------------------------------------------------------------------------------------------
# Workloads: each returns its metrics for one run, or throws
# ------------------------------------------------------------------------------------------

function Invoke-Bulk($Ctx, [string] $Path, [int] $Streams, [int] $Seed) {
    $net = $Ctx.Net
    $per = [long][Math]::Floor($BulkBytes / $Streams)
    $timeout = [int][Math]::Max(120, $BulkBytes / 20MB)
    $endpoint = $null
    if ($Path -eq 'direct' -and $Streams -eq 1) { $endpoint = Get-DirectEndpoint $Ctx 'bulk' }
    $routerPids = Get-RouterPids $Ctx $Path
    $status0 = if ($Path -in 'glass', 'direct', 'none') { Get-GlassTranslatorStatus -ControlSocket $Ctx.Router.ControlSocket }
    $cpu0 = Get-CpuSeconds $routerPids
    $soft0 = Get-SoftirqSeconds
    $clock = [System.Diagnostics.Stopwatch]::StartNew()
    if ($Path -eq 'direct' -and $Streams -gt 1) {
        $out = Invoke-Ns $net hostA $Dotnet @($BenchDll, 'direct', 'send', '--router', $Ctx.Router.Address, '--channel', $Ctx.Channels.bulk,
            '--connections', "$Streams", '--bytes', "$per", '--seed', "$Seed", '--timeout', "$timeout", '--digest', 'xxh3') -TimeoutSeconds ($timeout + 30)
    }
    else {
        $target = if ($endpoint) { $endpoint } else { $Ctx.Targets.bulk }
        $out = Invoke-Ns $net hostA $Dotnet @($Peer, 'send', '--connect', $target, '--connections', "$Streams", '--bytes', "$per",
            '--seed', "$Seed", '--timeout', "$timeout", '--digest', 'xxh3') -TimeoutSeconds ($timeout + 30)
    }
    $wall = $clock.Elapsed.TotalSeconds
    if ($Path -eq 'socat') {
        # The relays' CPU reaches the parent when they exit and are reaped.
        Wait-GlassCondition -TimeoutSeconds 30 -IntervalMilliseconds 100 -Because 'the socat relays to end' {
            [int](Invoke-Sh $net router "ss -Htn state established '( sport = :$($SocatPorts.bulk.a) )' | wc -l").Trim() -eq 0
        } | Out-Null
        Start-Sleep -Milliseconds 200
    }
    $cpu1 = Get-CpuSeconds $routerPids
    $soft1 = Get-SoftirqSeconds
    $sent = ConvertFrom-JsonLines $out
    if ($sent.Count -ne $Streams) { throw "expected $Streams finished streams, got $($sent.Count)" }
    foreach ($s in $sent) {
        if ($s.sent -ne $per) { throw "stream $($s.conn) sent $($s.sent) of $per bytes" }
        if ($s.received -ne 0) { throw "stream $($s.conn) received $($s.received) bytes from a server that sends none" }
    }
    # The server's own account: every stream arrived whole, with the digest of what was sent.
    $want = @($sent | ForEach-Object { $_.sentXxh3 })
    Wait-GlassCondition -TimeoutSeconds 60 -IntervalMilliseconds 100 -Because 'the server to confirm every stream' {
        $served = ConvertFrom-JsonLines $Ctx.Serve.ReadStdout() | Where-Object { $want -contains $_.receivedXxh3 -and $_.received -eq $per }
        @($served).Count -ge $Streams
    } | Out-Null
    $total = [double]($per * $Streams)
    $seconds = ($sent | Measure-Object -Property seconds -Maximum).Maximum
    $gib = $total / 1GB
    $metrics = [ordered]@{
        gbps             = $total * 8 / $seconds / 1e9
        routerCpuPerGiB  = ($cpu1 - $cpu0) / $gib
        softirqPerGiB    = ($soft1 - $soft0) / $gib
    }
    $extra = [ordered]@{ bytes = $total; seconds = $seconds; wallSeconds = $wall; routerCpuSeconds = $cpu1 - $cpu0; softirqSeconds = $soft1 - $soft0 }
    if ($status0) {
        $status1 = Get-GlassTranslatorStatus -ControlSocket $Ctx.Router.ControlSocket
        $extra.packetsRelayed = $status1.PacketsRelayed - $status0.PacketsRelayed
        $extra.drops = [ordered]@{}
        foreach ($k in $status1.Drops.Keys) {
            $before = if ($status0.Drops.ContainsKey($k)) { $status0.Drops[$k] } else { 0 }
            if ($status1.Drops[$k] - $before) { $extra.drops[$k] = $status1.Drops[$k] - $before }
        }
    }
    @{ Metrics = $metrics; Extra = $extra }
}

function Invoke-Echo($Ctx, [string] $Path, [int] $Size) {
    $target = if ($Path -eq 'direct') { Get-DirectEndpoint $Ctx 'echo' } else { $Ctx.Targets.echo }
    $out = Invoke-Ns $Ctx.Net hostA $Dotnet @($Peer, 'echo', '--connect', $target, '--size', "$Size", '--count', "$EchoCount",
        '--warmup', "$([Math]::Max(10, [int]($EchoCount / 10)))", '--timeout', '120') -TimeoutSeconds 150
    $r = ConvertFrom-JsonLines $out | Select-Object -Last 1
    if (-not $r) { throw "glass-testpeer echo printed no result: $out" }
    if ($r.failures -ne 0 -or $r.count -ne $EchoCount) { throw "echo: $($r.failures) failures in $($r.count) round trips" }
    @{ Metrics = [ordered]@{ p50us = [double]$r.p50us; p99us = [double]$r.p99us }; Extra = [ordered]@{ meanus = [double]$r.meanus } }
}

function Invoke-Setups($Ctx, [string] $Path) {
    $timeout = [int][Math]::Max(120, $SetupCount / 5)
    $out = if ($Path -eq 'direct') {
        Invoke-Ns $Ctx.Net hostA $Dotnet @($BenchDll, 'direct', 'setups', '--router', $Ctx.Router.Address, '--channel', $Ctx.Channels.echo,
            '--count', "$SetupCount", '--timeout', "$timeout") -TimeoutSeconds ($timeout + 30)
    }
    else {
        Invoke-Ns $Ctx.Net hostA $Dotnet @($Peer, 'setups', '--connect', $Ctx.Targets.echo, '--count', "$SetupCount",
            '--timeout', "$timeout") -TimeoutSeconds ($timeout + 30)
    }
    $r = ConvertFrom-JsonLines $out | Select-Object -Last 1
    if (-not $r) { throw "setups printed no result: $out" }
    if ($r.failed -ne 0 -or $r.ok -ne $SetupCount) { throw "setups: $($r.failed) of $($r.count) failed" }
    $extra = [ordered]@{}
    if ($r.PSObject.Properties['requestP50us']) { $extra.controllerRequestP50us = [double]$r.requestP50us }
    $metrics = [ordered]@{ perSecond = [double]$r.perSecond; p50us = [double]$r.p50us; p99us = [double]$r.p99us }
    # The tool reads /proc/stat around its sequence (its own start-up left out).
    if ($r.PSObject.Properties['machineCpuUs'] -and [double]$r.machineCpuUs -ge 0) { $metrics.cpuUs = [double]$r.machineCpuUs }
    @{ Metrics = $metrics; Extra = $extra }
}

function Invoke-Hold($Ctx, [string] $Path) {
    $net = $Ctx.Net
    $n = if ($Path -eq 'socat') { $SocatHoldConnections } else { $HoldConnections }
    $timeout = [int][Math]::Max(180, $n / 20)
    $isGlass = $Path -in 'glass', 'direct', 'none'
    $before = Get-HoldSnapshot $Ctx $Path
    $base = $Ctx.HoldBaseline[$Path]
    $pool = $null
    if ($Path -eq 'socat') {
        $pool = Start-SocatPool $Ctx 'echo' $n -Once
        Wait-SocatPool $Ctx 'echo' ($SocatPool + $n) -TimeoutSeconds $timeout
    }
    # Glass: one holder per shard (binding and forwarder), the connections split evenly.
    $shards = @(if ($isGlass) { $Ctx.EchoShards } else { @{ Channel = $null; Target = $Ctx.Targets.echo } })
    $holders = @()
    $ok = 0
    try {
        $clock = [System.Diagnostics.Stopwatch]::StartNew()
        for ($i = 0; $i -lt $shards.Count; $i++) {
            $count = [int][Math]::Floor($n / $shards.Count) + $(if ($i -lt $n % $shards.Count) { 1 } else { 0 })
            $ready = Join-Path $net.TempDirectory "hold-$Path-$i-$([guid]::NewGuid().ToString('n').Substring(0, 6)).ready"
            $common = @('--connections', "$count", '--ready-file', $ready, '--parallel', "$HoldParallel", '--timeout', "$($timeout * 2)")
            $h = if ($Path -eq 'direct') {
                Start-PipedProcess $net hostA $Dotnet (@($BenchDll, 'direct', 'hold', '--router', $Ctx.Router.Address, '--channel', $shards[$i].Channel) + $common)
            }
            else {
                Start-PipedProcess $net hostA $Dotnet (@($Peer, 'hold', '--connect', $shards[$i].Target) + $common)
            }
            $h | Add-Member -NotePropertyName ReadyFile -NotePropertyValue $ready
            $h | Add-Member -NotePropertyName Count -NotePropertyValue $count
            $holders += $h
        }
        try {
            foreach ($h in $holders) { Wait-File $h $h.ReadyFile "$($h.Count) connections to be held" -TimeoutSeconds $timeout }
            $openSeconds = $clock.Elapsed.TotalSeconds
            # The ready file says how many opened; a hold that opened fewer is a failed run.
            $opened = ($holders | ForEach-Object { [int](Get-Content -Raw -LiteralPath $_.ReadyFile).Trim() } | Measure-Object -Sum).Sum
            if ($opened -ne $n) { throw "hold: only $opened of $n connections opened" }
            Start-Sleep -Seconds 1
            $after = Get-HoldSnapshot $Ctx $Path -NoWait
        }
        finally {
            # Closing stdin tells a holder to check every connection once more and finish.
            foreach ($h in $holders) {
                try { $h.Process.StandardInput.Close() } catch { Write-Verbose "closing a holder's stdin: $_" }
            }
        }
        foreach ($h in $holders) {
            if (-not $h.Process.WaitForExit(($timeout + 60) * 1000)) { throw 'a holder did not finish' }
            $r = ConvertFrom-JsonLines $h.ReadStdout() | Select-Object -Last 1
            if (-not $r) { throw "hold printed no result: $($h.ReadStderr())" }
            if ($r.failed -ne 0) { throw "hold: $($r.failed) of $($h.Count) connections failed: $($h.ReadStderr())" }
            $ok += $r.ok
        }
    }
    finally {
        # Whatever happened, no holder or pool outlives its run.
        foreach ($h in $holders) { Stop-ProcessTree $h }
        if ($pool) { Stop-SocatPool $Ctx 'echo' $pool }
    }
    if ($ok -ne $n) { throw "hold: $ok of $n connections answered at the end" }
    # Per connection: what the router holds with the n connections open, less what it held just
    # after warm-up. (Less what it held just before this run is in "marginal": a table grown in
    # an earlier run keeps its capacity, so that figure depends on the order of the runs.)
    $conntrackBytes = Get-SlabObjectSize nf_conntrack
    $tcpBytes = Get-SlabObjectSize TCP
    $per = {
        param($from)
        [ordered]@{
            pssBytes = ($after.memory.pssBytes - $from.memory.pssBytes) / $n
            rssBytes = ($after.memory.rssBytes - $from.memory.rssBytes) / $n
            managedBytes = if ($isGlass) { ($after.managed.managedBytes - $from.managed.managedBytes) / $n } else { $null }
            gcHeapBytes = if ($isGlass) { ($after.managed.heapSizeBytes - $from.managed.heapSizeBytes) / $n } else { $null }
            conntrackEstablished = ($after.kernel.conntrackEstablished - $from.kernel.conntrackEstablished) / $n
            tcpSockets = ($after.kernel.tcpSockets - $from.kernel.tcpSockets) / $n
        }
    }
    $sinceWarmup = & $per $base
    $metrics = [ordered]@{
        pssPerConn         = $sinceWarmup.pssBytes
        managedPerConn     = $sinceWarmup.managedBytes
        conntrackPerConn   = $sinceWarmup.conntrackEstablished
        socketsPerConn     = $sinceWarmup.tcpSockets
        kernelBytesPerConn = $sinceWarmup.conntrackEstablished * $conntrackBytes + $sinceWarmup.tcpSockets * $tcpBytes
        openPerSecond      = $n / $openSeconds
    }
    $extra = [ordered]@{
        connections = $n; holders = $holders.Count; openSeconds = $openSeconds
        perConnectionSinceWarmup = $sinceWarmup; perConnectionMarginal = & $per $before
        warmup = $base; before = $before; after = $after
        conntrackObjectBytes = $conntrackBytes; tcpSocketObjectBytes = $tcpBytes
    }
    @{ Metrics = $metrics; Extra = $extra }
}

# ------------------------------------------------------------------------------------------
# Reporting: table, JSON, markdown, SVG
# ------------------------------------------------------------------------------------------

# metric id -> label, unit, which way is better, how to print
$MetricInfo = [ordered]@{
    'bulk1.gbps'            = @{ Label = 'bulk 1 stream: throughput'; Unit = 'Gbit/s'; Better = 'higher'; Format = '0.00' }
    'bulk1.routerCpuPerGiB' = @{ Label = 'bulk 1 stream: router CPU'; Unit = 's/GiB'; Better = 'lower'; Format = '0.000' }
    'bulk1.softirqPerGiB'   = @{ Label = 'bulk 1 stream: softirq, whole machine'; Unit = 's/GiB'; Better = 'lower'; Format = '0.000' }
    'bulk8.gbps'            = @{ Label = 'bulk 8 streams: throughput'; Unit = 'Gbit/s'; Better = 'higher'; Format = '0.00' }
    'bulk8.routerCpuPerGiB' = @{ Label = 'bulk 8 streams: router CPU'; Unit = 's/GiB'; Better = 'lower'; Format = '0.000' }
    'bulk8.softirqPerGiB'   = @{ Label = 'bulk 8 streams: softirq, whole machine'; Unit = 's/GiB'; Better = 'lower'; Format = '0.000' }
    'echo64.p50us'          = @{ Label = 'echo 64 B: round trip p50'; Unit = 'us'; Better = 'lower'; Format = '0' }
    'echo64.p99us'          = @{ Label = 'echo 64 B: round trip p99'; Unit = 'us'; Better = 'lower'; Format = '0' }
    'echo16k.p50us'         = @{ Label = 'echo 16 KiB: round trip p50'; Unit = 'us'; Better = 'lower'; Format = '0' }
    'echo16k.p99us'         = @{ Label = 'echo 16 KiB: round trip p99'; Unit = 'us'; Better = 'lower'; Format = '0' }
    'setups.perSecond'      = @{ Label = 'setups: rate'; Unit = '/s'; Better = 'higher'; Format = '0' }
    'setups.p50us'          = @{ Label = 'setups: setup time p50'; Unit = 'us'; Better = 'lower'; Format = '0' }
    'setups.p99us'          = @{ Label = 'setups: setup time p99'; Unit = 'us'; Better = 'lower'; Format = '0' }
    'setups.cpuUs'          = @{ Label = 'setups: CPU per setup, whole machine'; Unit = 'us'; Better = 'lower'; Format = '0' }
    'hold.pssPerConn'       = @{ Label = 'hold: router processes, PSS per connection'; Unit = 'B'; Better = 'lower'; Format = '0' }
    'hold.managedPerConn'   = @{ Label = 'hold: router managed heap per connection'; Unit = 'B'; Better = 'lower'; Format = '0' }
    'hold.conntrackPerConn' = @{ Label = 'hold: router conntrack entries per connection'; Unit = ''; Better = 'lower'; Format = '0.00' }
    'hold.socketsPerConn'   = @{ Label = 'hold: router TCP sockets per connection'; Unit = ''; Better = 'lower'; Format = '0.00' }
    'hold.kernelBytesPerConn' = @{ Label = 'hold: router kernel objects per connection'; Unit = 'B'; Better = 'lower'; Format = '0' }
    'hold.openPerSecond'    = @{ Label = 'hold: connections opened'; Unit = '/s'; Better = 'higher'; Format = '0' }
}

function Format-Number($Value, [string] $Format) {
    if ($null -eq $Value) { return '-' }
    ([double]$Value).ToString($Format, $Inv)
}

function Format-Ratio($Value, $Anchor) {
    if ($null -eq $Value -or $null -eq $Anchor -or [double]$Anchor -eq 0) { return '-' }
    ([double]$Value / [double]$Anchor).ToString('0.00', $Inv)
}

function Get-Summary($Records) {
    # metric id -> path -> stat (median, min, max, values)
    $summary = [ordered]@{}
    foreach ($id in $MetricInfo.Keys) {
        $workload, $metric = $id -split '\.'
        $byPath = [ordered]@{}
        foreach ($path in $Paths) {
            $values = @($Records | Where-Object { $_.path -eq $path -and $_.workload -eq $workload -and $_.ok } |
                ForEach-Object { $_.metrics[$metric] } | Where-Object { $null -ne $_ })
            if ($values.Count) { $byPath[$path] = Get-Stat $values }
        }
        if ($byPath.Count) { $summary[$id] = $byPath }
    }
    $summary
}

function Write-ConsoleTable($Summary) {
    foreach ($id in $Summary.Keys) {
        $info = $MetricInfo[$id]
        Write-Host ''
        Write-Host ("{0} ({1}, {2} is better)" -f $info.Label, $(if ($info.Unit) { $info.Unit } else { 'count' }), $info.Better) -ForegroundColor Cyan
        Write-Host ('  {0,-20} {1,10} {2,22} {3,8} {4,8}' -f 'path', 'median', 'min-max', 'x kernel', 'x socat')
        $k = if ($Summary[$id].Contains('kernel')) { $Summary[$id]['kernel'].median }
        $s = if ($Summary[$id].Contains('socat')) { $Summary[$id]['socat'].median }
        foreach ($path in $Summary[$id].Keys) {
            $st = $Summary[$id][$path]
            Write-Host ('  {0,-20} {1,10} {2,22} {3,8} {4,8}' -f $AllPaths[$path], (Format-Number $st.median $info.Format),
                ('{0}-{1}' -f (Format-Number $st.min $info.Format), (Format-Number $st.max $info.Format)),
                (Format-Ratio $st.median $k), (Format-Ratio $st.median $s))
        }
    }
}

function Get-Markdown($Summary, $Meta, $Skipped, $Failures) {
    $sb = [System.Text.StringBuilder]::new()
    $cols = @($Paths)
    $null = $sb.AppendLine("Run of $($Meta.startedUtc) UTC on $($Meta.host.cpus) cores (load average $($Meta.host.loadAverageStart) at the start, $($Meta.host.loadAverageEnd) at the end), commit ``$($Meta.host.commit)``; $($Meta.options.runs) run(s) per cell, bulk $($Meta.options.bulkBytes / 1MB) MiB, echo $($Meta.options.echoCount) round trips, $($Meta.options.setupCount) setups, hold $($Meta.options.holdConnections) connections (socat $($Meta.options.socatHoldConnections)).")
    $null = $sb.AppendLine()
    $null = $sb.AppendLine('Median (min–max) of the runs:')
    $null = $sb.AppendLine()
    $null = $sb.AppendLine('| metric | unit | ' + (($cols | ForEach-Object { $AllPaths[$_] }) -join ' | ') + ' |')
    $null = $sb.AppendLine('| --- | --- | ' + (($cols | ForEach-Object { '---:' }) -join ' | ') + ' |')
    foreach ($id in $Summary.Keys) {
        $info = $MetricInfo[$id]
        $cells = foreach ($path in $cols) {
            if ($Summary[$id].Contains($path)) {
                $st = $Summary[$id][$path]
                if ($st.values.Count -gt 1) {
                    '{0} ({1}–{2})' -f (Format-Number $st.median $info.Format), (Format-Number $st.min $info.Format), (Format-Number $st.max $info.Format)
                }
                else { Format-Number $st.median $info.Format }
            }
            else { '' }
        }
        $unit = if ($info.Unit) { $info.Unit } else { 'count' }
        $null = $sb.AppendLine("| $($info.Label) | $unit ($($info.Better) is better) | $($cells -join ' | ') |")
    }
    $null = $sb.AppendLine()
    $null = $sb.AppendLine('Ratios of the medians, to kernel NAT / to socat relay:')
    $null = $sb.AppendLine()
    $null = $sb.AppendLine('| metric | ' + (($cols | ForEach-Object { $AllPaths[$_] }) -join ' | ') + ' |')
    $null = $sb.AppendLine('| --- | ' + (($cols | ForEach-Object { '---:' }) -join ' | ') + ' |')
    foreach ($id in $Summary.Keys) {
        $k = if ($Summary[$id].Contains('kernel')) { $Summary[$id]['kernel'].median }
        $s = if ($Summary[$id].Contains('socat')) { $Summary[$id]['socat'].median }
        $cells = foreach ($path in $cols) {
            if ($Summary[$id].Contains($path)) { '{0} / {1}' -f (Format-Ratio $Summary[$id][$path].median $k), (Format-Ratio $Summary[$id][$path].median $s) } else { '' }
        }
        $null = $sb.AppendLine("| $($MetricInfo[$id].Label) | $($cells -join ' | ') |")
    }
    if ($Skipped.Count) {
        $null = $sb.AppendLine()
        $null = $sb.AppendLine('Not measured:')
        $null = $sb.AppendLine()
        foreach ($s in $Skipped) { $null = $sb.AppendLine("- $($AllPaths[$s.path]), $($AllWorkloads[$s.workload]): $($s.reason)") }
    }
    if ($Failures.Count) {
        $null = $sb.AppendLine()
        $null = $sb.AppendLine('Failed runs (left out of the medians):')
        $null = $sb.AppendLine()
        foreach ($f in $Failures) { $null = $sb.AppendLine("- $($AllPaths[$f.path]), $($AllWorkloads[$f.workload]), run $($f.run): $($f.error)") }
    }
    $sb.ToString()
}

function Get-Svg($Summary, $Meta) {
    # One panel per metric: a bar per path at the median, a whisker from min to max.
    $colors = @{ kernel = '#4c78a8'; socat = '#f58518'; glass = '#54a24b'; direct = '#72b7b2'; none = '#b279a2' }
    $panelW = 400; $panelH = 50 + 22 * $Paths.Count; $columns = 3
    $ids = @($Summary.Keys)
    $rows = [Math]::Ceiling($ids.Count / $columns)
    $width = $columns * $panelW + 20; $height = 60 + $rows * ($panelH + 10)
    $esc = { param($t) [System.Security.SecurityElement]::Escape([string]$t) }
    $sb = [System.Text.StringBuilder]::new()
    $null = $sb.AppendLine("<svg xmlns='http://www.w3.org/2000/svg' width='$width' height='$height' font-family='sans-serif' font-size='11'>")
    $null = $sb.AppendLine("<rect width='100%' height='100%' fill='white'/>")
    $null = $sb.AppendLine("<text x='10' y='20' font-size='14' font-weight='bold'>Glass end-to-end benchmark, $(& $esc $Meta.startedUtc) UTC, $($Meta.options.runs) run(s): median bars, min–max whiskers</text>")
    $x0 = 10
    foreach ($path in $Paths) {
        $null = $sb.AppendLine("<rect x='$x0' y='30' width='10' height='10' fill='$($colors[$path])'/><text x='$($x0 + 14)' y='39'>$(& $esc $AllPaths[$path])</text>")
        $x0 += 150
    }
    for ($i = 0; $i -lt $ids.Count; $i++) {
        $id = $ids[$i]; $info = $MetricInfo[$id]
        $px = 10 + ($i % $columns) * $panelW; $py = 55 + [Math]::Floor($i / $columns) * ($panelH + 10)
        $null = $sb.AppendLine("<g transform='translate($px,$py)'>")
        $null = $sb.AppendLine("<text x='0' y='12' font-weight='bold'>$(& $esc $info.Label)</text>")
        $unit = if ($info.Unit) { $info.Unit } else { 'count' }
        $null = $sb.AppendLine("<text x='0' y='26' fill='#555'>$(& $esc $unit), $($info.Better) is better</text>")
        $max = ($Summary[$id].Values | ForEach-Object { $_.max } | Measure-Object -Maximum).Maximum
        if (-not $max -or $max -le 0) { $max = 1 }
        $barX = 110; $barW = $panelW - $barX - 70
        $j = 0
        foreach ($path in $Paths) {
            $y = 32 + 22 * $j; $j++
            $null = $sb.AppendLine("<text x='0' y='$($y + 12)'>$(& $esc $AllPaths[$path])</text>")
            if (-not $Summary[$id].Contains($path)) { $null = $sb.AppendLine("<text x='$barX' y='$($y + 12)' fill='#888'>not measured</text>"); continue }
            $st = $Summary[$id][$path]
            $w = [Math]::Max(0.0, $barW * [double]$st.median / $max)
            $null = $sb.AppendLine(("<rect x='{0}' y='{1}' width='{2:0.0}' height='14' fill='{3}'/>" -f $barX, ($y + 2), $w, $colors[$path]))
            $x1 = $barX + $barW * [Math]::Max(0.0, [double]$st.min) / $max; $x2 = $barX + $barW * [Math]::Max(0.0, [double]$st.max) / $max
            $null = $sb.AppendLine(("<line x1='{0:0.0}' x2='{1:0.0}' y1='{2}' y2='{2}' stroke='black'/><line x1='{0:0.0}' x2='{0:0.0}' y1='{3}' y2='{4}' stroke='black'/><line x1='{1:0.0}' x2='{1:0.0}' y1='{3}' y2='{4}' stroke='black'/>" -f $x1, $x2, ($y + 9), ($y + 5), ($y + 13)))
            $null = $sb.AppendLine("<text x='$($barX + $barW + 4)' y='$($y + 12)'>$(Format-Number $st.median $info.Format)</text>")
        }
        $null = $sb.AppendLine('</g>')
    }
    $null = $sb.AppendLine('</svg>')
    $sb.ToString()
}

# ------------------------------------------------------------------------------------------
# The run
# ------------------------------------------------------------------------------------------

$reason = Test-GlassNetPrerequisite
if ($reason) { throw "The end-to-end benchmark cannot run here: $reason" }
foreach ($tool in 'socat', 'conntrack', 'prlimit', 'ss') {
    if (-not (Get-Command $tool -CommandType Application -ErrorAction Ignore)) { throw "The end-to-end benchmark needs '$tool' (apt-get install socat conntrack util-linux iproute2)." }
}
# A forwarder holds two sockets per connection; children inherit this process's limit. Where
# the hard limit cannot be raised (no CAP_SYS_RESOURCE, e.g. in a container), the Glass paths
# spread the held connections over several bindings and forwarders (shards) instead.
& prlimit --pid $PID --nofile=1048576:1048576 2>$null
$nofile = [long]((Get-Content /proc/self/limits | Where-Object { $_ -like 'Max open files*' }) -split '\s+')[4]
& prlimit --pid $PID "--nofile=$($nofile):$($nofile)" 2>$null
$HoldShardSize = [int][Math]::Max(1000, [Math]::Floor(($nofile - 1000) / 2))
$HoldShards = if ($Workloads -contains 'hold') { [int][Math]::Ceiling($HoldConnections / $HoldShardSize) } else { 1 }

$peerHelp = (& $Dotnet $Peer --help) -join "`n"
$HasEchoTools = $peerHelp -match 'echo-serve' -and $peerHelp -match '\bsetups\b' -and $peerHelp -match '\bhold\b'
$skipped = [System.Collections.Generic.List[object]]::new()
foreach ($w in @($Workloads)) {
    if ($w -in 'echo64', 'echo16k', 'setups', 'hold' -and -not $HasEchoTools) {
        foreach ($p in $Paths) { $skipped.Add([ordered]@{ path = $p; workload = $w; reason = 'glass-testpeer has no echo-serve/echo/setups/hold yet' }) }
    }
}
$Workloads = @($Workloads | Where-Object { $HasEchoTools -or $_ -notin 'echo64', 'echo16k', 'setups', 'hold' })

$started = [datetime]::UtcNow
$loadStart = (Get-Content /proc/loadavg).Split(' ')[0..2] -join ' '
$commit = (& git -C $RepoRoot rev-parse --short HEAD 2>$null)
if (& git -C $RepoRoot status --porcelain --untracked-files=no 2>$null) { $commit = "$commit+changes" }
Write-Step "paths: $($Paths -join ', '); workloads: $($Workloads -join ', '); runs: $Runs; bulk $($BulkBytes / 1MB) MiB; load $loadStart"

$contexts = [ordered]@{}
$records = [System.Collections.Generic.List[object]]::new()
$failures = [System.Collections.Generic.List[object]]::new()
try {
    # One copy of the topology per router: nothing one path configures can help or hurt another.
    $kinds = [ordered]@{}
    foreach ($p in $Paths) { $kinds[$(if ($p -eq 'direct') { 'glass' } else { $p })] = $true }
    foreach ($kind in $kinds.Keys) {
        Write-Step "building the $kind net"
        $ctx = @{ Kind = $kind; Net = (New-GlassTestNet) }
        $contexts[$kind] = $ctx
        Start-Servers $ctx
        switch ($kind) {
            'kernel' { New-KernelNat $ctx }
            'socat' { New-SocatRelay $ctx }
            'glass' { New-GlassPath $ctx 'kernel' }
            'none' { New-GlassPath $ctx 'none' }
        }
    }
    $ctxOf = { param($p) $contexts[$(if ($p -eq 'direct') { 'glass' } else { $p })] }

    Write-Step 'warming up every path (JIT, ARP, first links)'
    foreach ($p in $Paths) {
        Write-Step "  $($AllPaths[$p])"
        $ctx = & $ctxOf $p
        $saved = $BulkBytes; $BulkBytes = 16MB
        try { $null = Invoke-Bulk $ctx $p 1 7 } finally { $BulkBytes = $saved }
        if ($HasEchoTools) {
            $savedEcho = $EchoCount; $EchoCount = 100
            try { $null = Invoke-Echo $ctx $p 64 } finally { $EchoCount = $savedEcho }
        }
        if ($Workloads -contains 'setups') {
            # A client or router process tiers its setup code up over the first thousand or so
            # connections: measured runs see a long-running process, as users do. socat forks per
            # connection and the kernel has nothing to warm, so a few suffice there.
            $savedSetups = $SetupCount; $SetupCount = if ($p -in 'glass', 'direct', 'none') { $WarmupSetups } else { 20 }
            try { $null = Invoke-Setups $ctx $p } finally { $SetupCount = $savedSetups }
        }
        elseif ($p -eq 'direct' -and $HasEchoTools) {
            $null = Invoke-Ns $ctx.Net hostA $Dotnet @($BenchDll, 'direct', 'setups', '--router', $ctx.Router.Address, '--channel', $ctx.Channels.echo, '--count', '20')
        }
        if ($Workloads -contains 'hold') {
            if (-not $ctx.Contains('HoldBaseline')) { $ctx.HoldBaseline = @{} }
            if ($p -in 'glass', 'direct', 'none' -and $WarmupHold -gt 0) {
                # A first hold compiles code that setups never run (many sessions at once: table
                # growth, conntrack dumps and sweeps over thousands), and a second one runs it
                # tiered up: megabytes of JIT code and pool threads, which are no connection's
                # memory. Two small holds first, so that the baseline has them. (Invoke-Hold needs
                # a baseline to report against; the real one is taken after every warm-up, below.)
                $ctx.HoldBaseline[$p] = Get-HoldSnapshot $ctx $p
                $savedHold = $HoldConnections; $HoldConnections = $WarmupHold
                try { 1..2 | ForEach-Object { $null = Invoke-Hold $ctx $p } } finally { $HoldConnections = $savedHold }
            }
        }
    }
    if ($Workloads -contains 'hold') {
        # Each baseline after every path's warm-up: Glass -LocalPort and direct share a router,
        # and one taken before the other's warm-up counted its growth (~8 MB at 64ebebe) as the
        # first path's connections.
        foreach ($p in $Paths) {
            $ctx = & $ctxOf $p
            $ctx.HoldBaseline[$p] = Get-HoldSnapshot $ctx $p
        }
    }

    # Paths interleaved within each run, so that a noisy neighbour hits them all alike.
    for ($run = 1; $run -le $Runs; $run++) {
        foreach ($w in $Workloads) {
            foreach ($p in $Paths) {
                $ctx = & $ctxOf $p
                $seed = 1000 * $run + 100 * [array]::IndexOf(@($AllPaths.Keys), $p) + [array]::IndexOf(@($AllWorkloads.Keys), $w)
                Write-Step "run $run/$Runs  $($AllWorkloads[$w])  $($AllPaths[$p])"
                try {
                    $r = switch ($w) {
                        'bulk1' { Invoke-Bulk $ctx $p 1 $seed }
                        'bulk8' { Invoke-Bulk $ctx $p 8 $seed }
                        'echo64' { Invoke-Echo $ctx $p 64 }
                        'echo16k' { Invoke-Echo $ctx $p 16384 }
                        'setups' { Invoke-Setups $ctx $p }
                        'hold' { Invoke-Hold $ctx $p }
                    }
                    $shown = ($r.Metrics.GetEnumerator() | Where-Object { $null -ne $_.Value } | ForEach-Object { '{0}={1}' -f $_.Key, ([double]$_.Value).ToString('0.###', $Inv) }) -join '  '
                    Write-Host "           $shown"
                    $records.Add([ordered]@{ path = $p; workload = $w; run = $run; ok = $true; metrics = $r.Metrics; extra = $r.Extra })
                }
                catch {
                    Write-Warning "run $run, $w, $p failed: $($_.Exception.Message)"
                    $failures.Add([ordered]@{ path = $p; workload = $w; run = $run; error = $_.Exception.Message })
                    $records.Add([ordered]@{ path = $p; workload = $w; run = $run; ok = $false; error = $_.Exception.Message })
                }
            }
        }
    }
}
finally {
    foreach ($ctx in $contexts.Values) {
        # socat's pools dial again as soon as a relay ends: stop the loops before the net goes.
        if ($ctx.Contains('SocatPools')) { foreach ($pool in $ctx.SocatPools.Values) { Stop-ProcessTree $pool } }
        Remove-GlassTestNet -Net $ctx.Net
    }
}

$summary = Get-Summary $records
$meta = [ordered]@{
    startedUtc = $started.ToString('yyyy-MM-dd HH:mm')
    durationSeconds = [int]([datetime]::UtcNow - $started).TotalSeconds
    host = [ordered]@{
        kernel = (& uname -r); cpus = [Environment]::ProcessorCount; commit = $commit
        loadAverageStart = $loadStart; loadAverageEnd = (Get-Content /proc/loadavg).Split(' ')[0..2] -join ' '
        conntrackObjectBytes = Get-SlabObjectSize nf_conntrack; tcpSocketObjectBytes = Get-SlabObjectSize TCP; clkTck = $ClkTck
    }
    options = [ordered]@{
        paths = $Paths; workloads = $Workloads; runs = $Runs; bulkBytes = $BulkBytes; echoCount = $EchoCount; setupCount = $SetupCount
        warmupSetups = $WarmupSetups; warmupHold = $WarmupHold
        holdConnections = $HoldConnections; socatHoldConnections = $SocatHoldConnections; holdParallel = $HoldParallel; quick = [bool]$Quick
    }
}
$null = New-Item -ItemType Directory -Force -Path $OutDirectory
$json = [ordered]@{
    meta = $meta
    paths = $AllPaths
    metrics = $MetricInfo
    summary = $summary
    runs = $records
    skipped = $skipped
    failures = $failures
}
$json | ConvertTo-Json -Depth 12 | Set-Content -LiteralPath (Join-Path $OutDirectory 'e2e.json')
Get-Markdown $summary $meta $skipped $failures | Set-Content -LiteralPath (Join-Path $OutDirectory 'e2e.md')
Get-Svg $summary $meta | Set-Content -LiteralPath (Join-Path $OutDirectory 'e2e.svg')

Write-ConsoleTable $summary
foreach ($s in $skipped) { Write-Host "not measured: $($AllPaths[$s.path]), $($AllWorkloads[$s.workload]): $($s.reason)" -ForegroundColor Yellow }
Write-Host ''
Write-Step "wrote $(Join-Path $OutDirectory 'e2e.json'), e2e.md, e2e.svg in $($meta.durationSeconds) s"
if ($failures.Count) {
    Write-Warning "$($failures.Count) run(s) failed; see failures in e2e.json."
    exit 1
}
