#!/usr/bin/env pwsh
<#
.SYNOPSIS
    Soak run: minutes of churn (bindings made and removed, short connections, hashed transfers,
    resets, refused connects) through a glass router in network namespaces, while the router's
    and the clients' memory and descriptors are sampled; they must stay flat. docs/soak.md
    explains it.
.DESCRIPTION
    One copy of the test topology (tests/pester/GlassTestNet.psm1) per offload mode, run side by
    side: a router (tests/bench/E2E.Router.ps1: translator and controller in one pwsh process),
    an echo server behind NAT B, Soak.Binder.ps1 behind NAT B, Soak.Connector.ps1 behind NAT A.
    Every -SampleSeconds it records, per net: the router process's RSS, managed heap (after a
    full collection, asked of the process), descriptors and threads; the clients' same; the
    translator's sessions and the controller's bindings, channels and ports (its Prometheus
    endpoint); conntrack entries; the connector's and binder's counters.
    The verdict compares the median of the last third of the samples after warm-up with the
    median of the first third, against the tolerances it prints. Exits 1 when something grew
    beyond its tolerance, an operation failed (a hashed transfer above all), the router did not
    come back to idle after the churn, or a process or namespace outlived the run.
    Writes out/soak/soak.json (every sample and the verdict), soak.md (the tables) and soak.svg.
.EXAMPLE
    dotnet pwsh ./build.ps1 soak -SoakMinutes 3
.EXAMPLE
    dotnet pwsh tests/bench/Soak.ps1 -Minutes 10 -Offload none -SampleSeconds 10
#>
[CmdletBinding()]
param(
    [ValidateRange(1, 1440)] [double] $Minutes = 5,
    # kernel, none, or both (a comma-separated string works too).
    [string[]] $Offload = @('both'),
    [ValidateRange(1, 600)] [int] $SampleSeconds = 5,
    # Warm-up: at least this share of the run, until the router has created -WarmupSessions
    # sessions (its jobs' record rings, 1,000 records each, are full by then) and until the first
    # ended sessions have left the translator's table (its time-wait); at most half the run.
    [ValidateRange(0, 0.5)] [double] $WarmupFraction = 0.2,
    [int] $WarmupSessions = 1000,
    [string] $OutDirectory = (Join-Path $PSScriptRoot '../../out/soak')
)

$ErrorActionPreference = 'Stop'
Set-StrictMode -Version Latest

Import-Module (Join-Path $PSScriptRoot '../pester/GlassTestNet.psm1') -Force
Import-Module (Join-Path $PSScriptRoot '../pester/GlassE2E.psm1') -Force

$RepoRoot = (Resolve-Path (Join-Path $PSScriptRoot '../..')).Path
$Inv = [System.Globalization.CultureInfo]::InvariantCulture
$Modes = @($Offload -split ',' | ForEach-Object { $_.Trim() } | Where-Object { $_ } | ForEach-Object { if ($_ -eq 'both') { 'kernel', 'none' } else { $_ } } | Select-Object -Unique)
foreach ($m in $Modes) { if ($m -notin 'kernel', 'none') { throw "Unknown -Offload '$m'; use kernel, none or both." } }

$EchoPort = 9000
# Descriptors the idle router may hold beyond its count before the first client.
$IdleDescriptorSlack = 10
# How long the router may take to be idle after the clients left: a half-closed session whose
# other end vanished unseen waits out the transitory idle time (4 min, RFC 5382).
$IdleSeconds = 300
$RouterTimeWait = 30
$MetricsPort = 9100
$Queue = 6

# What must stay flat: the median of the last third after warm-up against the first third's.
# A figure may grow by the larger of Relative (of the first third's median) and Absolute.
$Checks = @(
    @{ Id = 'router.rss'; Label = 'router RSS'; Unit = 'MiB'; Relative = 0.10; Absolute = 16 }
    @{ Id = 'router.managed'; Label = 'router managed heap'; Unit = 'MiB'; Relative = 0.10; Absolute = 2 }
    @{ Id = 'router.fds'; Label = 'router descriptors'; Unit = ''; Relative = 0; Absolute = 10 }
    @{ Id = 'router.threads'; Label = 'router threads'; Unit = ''; Relative = 0; Absolute = 8 }
    @{ Id = 'controller.channels'; Label = 'controller channels'; Unit = ''; Relative = 0; Absolute = 5 }
    @{ Id = 'connector.rss'; Label = 'connector RSS'; Unit = 'MiB'; Relative = 0.10; Absolute = 24 }
    @{ Id = 'connector.managed'; Label = 'connector managed heap'; Unit = 'MiB'; Relative = 0.10; Absolute = 4 }
    @{ Id = 'connector.fds'; Label = 'connector descriptors'; Unit = ''; Relative = 0; Absolute = 10 }
    @{ Id = 'binder.rss'; Label = 'binder RSS'; Unit = 'MiB'; Relative = 0.10; Absolute = 24 }
    @{ Id = 'binder.managed'; Label = 'binder managed heap'; Unit = 'MiB'; Relative = 0.10; Absolute = 4 }
    @{ Id = 'binder.fds'; Label = 'binder descriptors'; Unit = ''; Relative = 0; Absolute = 10 }
    @{ Id = 'echo.fds'; Label = 'echo server descriptors'; Unit = ''; Relative = 0; Absolute = 10 }
)
# Shown beside them, without a verdict: they follow the load, not the run's age.
$Shown = @(
    @{ Id = 'router.rssAnon'; Label = 'router RSS, anonymous'; Unit = 'MiB' }
    @{ Id = 'router.committed'; Label = 'router GC committed'; Unit = 'MiB' }
    @{ Id = 'translator.sessions'; Label = 'translator sessions'; Unit = '' }
    @{ Id = 'translator.offloaded'; Label = 'sessions offloaded now'; Unit = '' }
    @{ Id = 'conntrack.total'; Label = 'conntrack entries'; Unit = '' }
    @{ Id = 'controller.bindings'; Label = 'controller bindings'; Unit = '' }
    @{ Id = 'connector.threads'; Label = 'connector threads'; Unit = '' }
    @{ Id = 'binder.threads'; Label = 'binder threads'; Unit = '' }
    @{ Id = 'echo.rss'; Label = 'echo server RSS'; Unit = 'MiB' }
)

function Write-Step([string] $Text) { Write-Host "[$([datetime]::Now.ToString('HH:mm:ss'))] $Text" }

# ------------------------------------------------------------------------------------------
# Starting one net: router, echo server, binder, connector
# ------------------------------------------------------------------------------------------

function Wait-StateFile($Ctx, $Process, [string] $Name, [string] $Because) {
    $path = Join-Path $Ctx.Net.TempDirectory $Name
    Wait-GlassCondition -TimeoutSeconds 120 -Because $Because {
        if ($Process.HasExited) { throw "$Because failed: the process exited ($($Process.ExitCode)): $($Process.ReadStderr())" }
        Test-Path -LiteralPath $path
    } | Out-Null
}

function Start-SoakNet([string] $Mode, [int] $Seed) {
    $ctx = [ordered]@{ Mode = $Mode; Net = (New-GlassTestNet) }
    $net = $ctx.Net
    $ctx.Router = Start-GlassE2ERouter -Net $net -Queue $Queue -PortRange 60000-60999 -Offload $Mode -MetricsPort $MetricsPort -TimeWaitSeconds $RouterTimeWait `
        -LinksPerAddress 100000 -ConnectRatePerAddress 1000000 -MaxSessions 200000 -Script 'tests/bench/E2E.Router.ps1'
    $ctx.RouterProbe = Join-Path $net.TempDirectory 'router-Both-7000.ready'
    # Before any client: what the idle router holds after the churn is compared with this.
    $ctx.Baseline = Get-ProcSample $ctx.Router.Process.Pid
    # An ended session stays in the translator's table for the router's timeouts.timeWait, in
    # both modes (an offloaded one from when conntrack reports its flow in time-wait).
    $ctx.Linger = $RouterTimeWait
    $ctx.Echo = Start-GlassE2EEchoServer -Net $net -Port $EchoPort
    $ctx.Binder = Start-GlassE2EPwsh -Net $net -Namespace hostB -Script 'tests/bench/Soak.Binder.ps1' -ArgumentList @('-Router', $ctx.Router.Address, '-LocalPort', "$EchoPort",
        '-StateDirectory', $net.TempDirectory, '-Seed', "$Seed")
    Wait-StateFile $ctx $ctx.Binder 'channels.json' "the binder behind NAT B ($Mode) to bind"
    $ctx.Connector = Start-GlassE2EPwsh -Net $net -Namespace hostA -Script 'tests/bench/Soak.Connector.ps1' -ArgumentList @('-Router', $ctx.Router.Address,
        '-StateDirectory', $net.TempDirectory, '-Seed', "$($Seed + 1)")
    Wait-StateFile $ctx $ctx.Connector 'connector.ready' "the connector behind NAT A ($Mode) to start"
    $ctx.Samples = [System.Collections.Generic.List[object]]::new()
    $ctx
}

# ------------------------------------------------------------------------------------------
# Sampling
# ------------------------------------------------------------------------------------------

function Get-ProcSample([int] $ProcessId) {
    # RSS (and its anonymous part: heaps, JIT code; the rest is mapped files), descriptors and
    # threads from /proc, in MiB; $null once the process is gone.
    $status = Get-Content -Raw -LiteralPath "/proc/$ProcessId/status" -ErrorAction Ignore
    if (-not $status) { return $null }
    [ordered]@{
        rss     = [long]([regex]::Match($status, 'VmRSS:\s+(\d+)').Groups[1].Value) / 1024.0
        rssAnon = [long]([regex]::Match($status, 'RssAnon:\s+(\d+)').Groups[1].Value) / 1024.0
        fds     = @(Get-ChildItem -LiteralPath "/proc/$ProcessId/fd" -ErrorAction Ignore).Count
        threads = [int]([regex]::Match($status, 'Threads:\s+(\d+)').Groups[1].Value)
    }
}

function Request-Managed([string] $Probe) {
    Remove-Item -LiteralPath "$Probe.memory.json" -ErrorAction Ignore
    Set-Content -LiteralPath "$Probe.memory-request" -Value ''
}

function Read-Managed([string] $Probe) {
    # MemoryProbe.ps1's answer in MiB: live managed objects, and what the GC has committed from
    # the OS (RSS growing while this stays put is native memory); $null when it did not come.
    $answer = "$Probe.memory.json"
    if (-not (Test-Path -LiteralPath $answer)) { return $null }
    $m = Get-Content -Raw -LiteralPath $answer | ConvertFrom-Json
    @{ managed = [double]$m.managedBytes / 1MB; committed = [double]$m.committedBytes / 1MB }
}

function Get-Metrics($Net) {
    # The router's Prometheus endpoint, from inside its namespace: name{labels} -> value, summed over labels.
    $text = Invoke-GlassNetCommand -Net $Net -Namespace router -FilePath curl -TimeoutSeconds 30 -ArgumentList @(
        '-s', '--max-time', '20', "http://127.0.0.1:$MetricsPort/metrics")
    $m = @{}
    foreach ($line in $text -split "`n") {
        if ($line -match '^(glass_[a-z_]+)(\{[^}]*\})?\s+([0-9.eE+-]+)') {
            $name = $Matches[1]; $labels = $Matches[2]; $value = [double]::Parse($Matches[3], $Inv)
            $m[$name] = $(if ($m.ContainsKey($name)) { $m[$name] } else { 0.0 }) + $value
            # Each reason too, as "name|reason".
            if ($labels -match '(?:reason|state)="([^"]+)"') { $m["$name|$($Matches[1])"] = $value }
        }
    }
    $m
}

function Get-Conntrack($Net) {
    $mark = 0x474C0000 -bor $Queue
    $out = Invoke-GlassNetCommand -Net $Net -Namespace router -FilePath sh -TimeoutSeconds 30 -ArgumentList @('-c',
        "conntrack -C 2>/dev/null || echo 0; conntrack -L -p tcp --mark $mark 2>/dev/null | grep -c ESTABLISHED || true")
    $lines = @($out -split "`n" | Where-Object { $_.Trim() })
    [ordered]@{ total = [long]$lines[0]; glassEstablished = [long]$lines[1] }
}

function Read-StateJson([string] $Path) {
    if (Test-Path -LiteralPath $Path) { Get-Content -Raw -LiteralPath $Path | ConvertFrom-Json -AsHashtable } else { $null }
}

function Get-Sample($Ctx, [double] $Elapsed) {
    $net = $Ctx.Net
    $metrics = Get-Metrics $net
    $get = { param($name) if ($metrics.ContainsKey($name)) { $metrics[$name] } else { $null } }
    $s = [ordered]@{
        t          = [Math]::Round($Elapsed, 1)
        router     = Get-ProcSample $Ctx.Router.Process.Pid
        connector  = Get-ProcSample $Ctx.Connector.Pid
        binder     = Get-ProcSample $Ctx.Binder.Pid
        echo       = Get-ProcSample $Ctx.Echo.Pid
        translator = [ordered]@{
            sessions = & $get 'glass_translator_sessions'; offloaded = & $get 'glass_translator_sessions_offloaded'
            created = & $get 'glass_translator_sessions_created_total'; released = & $get 'glass_translator_sessions_released_total'
            drops = & $get 'glass_translator_drops_total'; offloadFailures = & $get 'glass_translator_offload_failures_total'
            dropsByReason = [ordered]@{}
        }
        controller = [ordered]@{
            bindings = & $get 'glass_controller_bindings'; channels = & $get 'glass_controller_channels'
            portsInUse = & $get 'glass_controller_ports_in_use'; clientSessions = & $get 'glass_controller_client_sessions'
            connects = & $get 'glass_controller_connects_total'; refused = & $get 'glass_controller_refused_total'
        }
        conntrack  = Get-Conntrack $net
        ops        = Read-StateJson (Join-Path $net.TempDirectory 'connector.json')
        bindings   = Read-StateJson (Join-Path $net.TempDirectory 'binder.json')
    }
    foreach ($k in @($metrics.Keys | Where-Object { $_ -like 'glass_translator_drops_total|*' } | Sort-Object)) {
        $s.translator.dropsByReason[($k -split '\|')[1]] = $metrics[$k]
    }
    foreach ($role in 'router', 'connector', 'binder') { if ($s[$role]) { $s[$role].managed = $null; $s[$role].committed = $null } }
    $s
}

function Add-Samples([object[]] $Contexts, [double] $Elapsed) {
    # Ask every process for its managed heap at once, then read /proc and the counters, then the answers.
    foreach ($ctx in $Contexts) {
        Request-Managed $ctx.RouterProbe
        foreach ($role in 'connector', 'binder') { Request-Managed (Join-Path $ctx.Net.TempDirectory $role) }
    }
    $samples = @(foreach ($ctx in $Contexts) { Get-Sample $ctx $Elapsed })
    $deadline = [datetime]::UtcNow.AddSeconds(30)
    for ($i = 0; $i -lt $Contexts.Count; $i++) {
        $ctx = $Contexts[$i]; $s = $samples[$i]
        $probes = @{ router = $ctx.RouterProbe; connector = (Join-Path $ctx.Net.TempDirectory 'connector'); binder = (Join-Path $ctx.Net.TempDirectory 'binder') }
        foreach ($role in 'router', 'connector', 'binder') {
            if (-not $s[$role]) { continue }
            while ($null -eq ($m = Read-Managed $probes[$role]) -and [datetime]::UtcNow -lt $deadline) { Start-Sleep -Milliseconds 100 }
            if ($m) { $s[$role].managed = $m.managed; $s[$role].committed = $m.committed }
        }
        $ctx.Samples.Add($s)
    }
}

function Get-Value($Sample, [string] $Id) {
    $role, $name = $Id -split '\.', 2
    $part = $Sample[$role]
    if ($null -eq $part) { return $null }
    if ($part -is [System.Collections.IDictionary] -and $part.Contains($name) -and $null -ne $part[$name]) { [double]$part[$name] } else { $null }
}

# ------------------------------------------------------------------------------------------
# The verdict
# ------------------------------------------------------------------------------------------

function Get-Median([double[]] $Values) {
    $v = @($Values | Sort-Object)
    if ($v.Count -eq 0) { return $null }
    $mid = [int][Math]::Floor($v.Count / 2)
    if ($v.Count % 2) { $v[$mid] } else { ($v[$mid - 1] + $v[$mid]) / 2 }
}

function Get-Slope([double[]] $X, [double[]] $Y) {
    # Least squares, per unit of X.
    if ($X.Count -lt 3) { return $null }
    $mx = ($X | Measure-Object -Average).Average; $my = ($Y | Measure-Object -Average).Average
    $num = 0.0; $den = 0.0
    for ($i = 0; $i -lt $X.Count; $i++) { $num += ($X[$i] - $mx) * ($Y[$i] - $my); $den += ($X[$i] - $mx) * ($X[$i] - $mx) }
    if ($den -eq 0) { 0.0 } else { $num / $den }
}

function Get-WarmupEnd($Ctx, [double] $Duration) {
    # The first sample past the minimum share and the time-wait linger (plus a margin) with enough
    # sessions created, capped at half the run.
    $minimum = [Math]::Max($WarmupFraction * $Duration, $Ctx.Linger + 10)
    foreach ($s in $Ctx.Samples) {
        if ($s.t -lt $minimum) { continue }
        if ($s.t -ge 0.5 * $Duration) { return @{ t = $s.t; capped = $true } }
        $created = $s.translator.created
        if ($null -ne $created -and $created -ge $WarmupSessions) { return @{ t = $s.t; capped = $false } }
    }
    @{ t = 0.5 * $Duration; capped = $true }
}

function Get-Verdict($Ctx, [double] $Duration) {
    $warm = Get-WarmupEnd $Ctx $Duration
    $after = @($Ctx.Samples | Where-Object { $_.t -ge $warm.t })
    $third = [int][Math]::Floor($after.Count / 3)
    # How far apart the two thirds' middles are: a growth of "allowed" over that time is the
    # slowest the verdict catches, so a longer run is a stricter one.
    $apart = if ($third -ge 1) { ($after[$after.Count - 1 - [int][Math]::Floor($third / 2)].t - $after[[int][Math]::Floor($third / 2)].t) / 60 } else { $null }
    $rows = [System.Collections.Generic.List[object]]::new()
    foreach ($c in @($Checks) + @($Shown)) {
        $pts = @($after | ForEach-Object { $v = Get-Value $_ $c.Id; if ($null -ne $v) { , @($_.t, $v) } })
        $row = [ordered]@{ id = $c.Id; label = $c.Label; unit = $c.Unit; first = $null; last = $null; change = $null; allowed = $null
            slopePerMinute = $null; caughtPerMinute = $null; verdict = 'shown' }
        if ($third -ge 1 -and $pts.Count -ge 3) {
            $firstValues = @($pts | Select-Object -First $third | ForEach-Object { $_[1] })
            $lastValues = @($pts | Select-Object -Last $third | ForEach-Object { $_[1] })
            $row.first = Get-Median $firstValues
            $row.last = Get-Median $lastValues
            $row.change = $row.last - $row.first
            $row.slopePerMinute = 60 * (Get-Slope ([double[]]@($pts | ForEach-Object { $_[0] })) ([double[]]@($pts | ForEach-Object { $_[1] })))
        }
        if ($c.Contains('Absolute')) {
            if ($null -eq $row.first) { $row.verdict = 'no data' }
            else {
                $row.allowed = [Math]::Max($c.Relative * $row.first, $c.Absolute)
                if ($apart -gt 0) { $row.caughtPerMinute = $row.allowed / $apart }
                $row.verdict = if ($row.change -le $row.allowed) { 'flat' } else { 'GREW' }
            }
        }
        $rows.Add($row)
    }
    [ordered]@{ warmupEnd = $warm.t; warmupCapped = $warm.capped; samplesAfterWarmup = $after.Count; samplesPerThird = $third
        thirdsApartMinutes = $apart; rows = $rows }
}

function Format-Value($Value, [string] $Unit) {
    if ($null -eq $Value) { return '-' }
    if ($Unit -eq 'MiB') { ([double]$Value).ToString('0.0', $Inv) } else { ([double]$Value).ToString('0.#', $Inv) }
}

function Get-MarkdownTable($Ctx) {
    $v = $Ctx.Verdict
    $sb = [System.Text.StringBuilder]::new()
    $why = if ($v.warmupCapped) { " (capped at half the run: $WarmupSessions sessions created and $($Ctx.Linger + 10) s of time-wait linger not both reached before)" } else { '' }
    $apart = if ($null -ne $v.thirdsApartMinutes) { ([double]$v.thirdsApartMinutes).ToString('0.0', $Inv) } else { '-' }
    $null = $sb.AppendLine("Offload **$($Ctx.Mode)**: warm-up until $([int]$v.warmupEnd) s$why; $($v.samplesAfterWarmup) samples after it, $($v.samplesPerThird) per third, the thirds' middles $apart min apart.")
    $null = $sb.AppendLine()
    $null = $sb.AppendLine('| figure | unit | first third (median) | last third (median) | change | allowed | catches /min | slope /min | verdict |')
    $null = $sb.AppendLine('| --- | --- | ---: | ---: | ---: | ---: | ---: | ---: | --- |')
    foreach ($r in $v.rows) {
        $unit = if ($r.unit) { $r.unit } else { 'count' }
        $null = $sb.AppendLine("| $($r.label) | $unit | $(Format-Value $r.first $r.unit) | $(Format-Value $r.last $r.unit) | $(Format-Value $r.change $r.unit) | $(if ($null -ne $r.allowed) { '+' + (Format-Value $r.allowed $r.unit) } else { '' }) | $(Format-Value $r.caughtPerMinute $r.unit) | $(Format-Value $r.slopePerMinute $r.unit) | $($r.verdict) |")
    }
    $null = $sb.AppendLine()
    $o, $b = if ($Ctx.Contains('Final')) { $Ctx.Final.ops, $Ctx.Final.bindings } else { $null, $null }
    if ($o) {
        $parts = foreach ($k in $o.ops.Keys) { "$k $($o.ops[$k].ok)/$($o.ops[$k].ok + $o.ops[$k].failed)" }
        $null = $sb.AppendLine("Operations (succeeded/run): $($parts -join ', '); $($o.connections) connections, $($o.resets) ended by reset, $($o.refusedAsExpected) connects refused as expected; hashed transfers $($o.hashedTransfers - $o.hashedFailed)/$($o.hashedTransfers) ($([Math]::Round($o.hashedBytes / 1MB)) MiB echoed and checked).")
    }
    if ($b) { $null = $sb.AppendLine("Bindings: $($b.created) made, $($b.removed) removed, $($b.errors) errors.") }
    $t = $Ctx.Samples[-1].translator; $c = $Ctx.Samples[-1].controller
    $drops = ($t.dropsByReason.GetEnumerator() | Where-Object Value | ForEach-Object { "$($_.Key) $($_.Value)" }) -join ', '
    $null = $sb.AppendLine("Router: $($t.created) sessions created, $($t.released) released, $($t.drops) queued packets not relayed ($drops), $($t.offloadFailures) offload failures; controller $($c.connects) connects answered, $($c.refused) refused.")
    if ($Ctx.Contains('IdleProcess') -and $Ctx.IdleProcess) {
        $null = $sb.AppendLine("After the churn: idle $($Ctx.IdleSeconds) s after the stop (or sooner: the nets are checked in turn); router process before the first client / idle after: $($Ctx.Baseline.fds) / $($Ctx.IdleProcess.fds) descriptors, $($Ctx.Baseline.threads) / $($Ctx.IdleProcess.threads) threads, $(Format-Value $Ctx.Baseline.rss 'MiB') / $(Format-Value $Ctx.IdleProcess.rss 'MiB') MiB RSS.")
    }
    $sb.ToString()
}

function Get-Svg([object[]] $Contexts, [double] $Duration) {
    $colors = @{ kernel = '#4c78a8'; none = '#b279a2' }
    $panels = @(
        @{ Id = 'router.rss'; Label = 'router RSS, MiB' }, @{ Id = 'router.managed'; Label = 'router managed heap, MiB' }
        @{ Id = 'router.committed'; Label = 'router GC committed, MiB' }
        @{ Id = 'router.fds'; Label = 'router descriptors' }, @{ Id = 'router.threads'; Label = 'router threads' }
        @{ Id = 'translator.sessions'; Label = 'translator sessions' }, @{ Id = 'conntrack.total'; Label = 'conntrack entries' }
        @{ Id = 'connector.rss'; Label = 'connector RSS, MiB' }, @{ Id = 'binder.rss'; Label = 'binder RSS, MiB' }
        @{ Id = 'connector.fds'; Label = 'connector descriptors' }
    )
    $pw = 360; $ph = 170; $cols = 3; $rows = [Math]::Ceiling($panels.Count / $cols)
    $width = $cols * $pw + 20; $height = 60 + $rows * ($ph + 15)
    $sb = [System.Text.StringBuilder]::new()
    $null = $sb.AppendLine("<svg xmlns='http://www.w3.org/2000/svg' width='$width' height='$height' font-family='sans-serif' font-size='11'>")
    $null = $sb.AppendLine("<rect width='100%' height='100%' fill='white'/>")
    $null = $sb.AppendLine("<text x='10' y='20' font-size='14' font-weight='bold'>Glass soak, $([Math]::Round($Duration / 60, 1)) min: grey = warm-up, dashed = the thirds compared</text>")
    $x0 = 10
    foreach ($ctx in $Contexts) {
        $null = $sb.AppendLine("<rect x='$x0' y='30' width='10' height='10' fill='$($colors[$ctx.Mode])'/><text x='$($x0 + 14)' y='39'>offload $($ctx.Mode)</text>")
        $x0 += 130
    }
    for ($i = 0; $i -lt $panels.Count; $i++) {
        $p = $panels[$i]
        $px = 10 + ($i % $cols) * $pw; $py = 50 + [Math]::Floor($i / $cols) * ($ph + 15)
        $gx = 45; $gy = 20; $gw = $pw - 60; $gh = $ph - 45
        $all = @(foreach ($ctx in $Contexts) { foreach ($s in $ctx.Samples) { Get-Value $s $p.Id } }) | Where-Object { $null -ne $_ }
        # The axis spans the data with a margin (not from 0), so that a slow growth shows.
        $lo = 0.0; $hi = 1.0
        if ($all) { $lo = [double]($all | Measure-Object -Minimum).Minimum; $hi = [double]($all | Measure-Object -Maximum).Maximum }
        $pad = [Math]::Max(0.05 * [Math]::Abs($hi), 1.0)
        $min = [Math]::Max(0.0, $lo - $pad); $max = $hi + $pad
        $fx = { param([double] $t) $gx + $gw * [Math]::Min(1.0, $t / $Duration) }
        $fy = { param([double] $v) $gy + $gh - $gh * ($v - $min) / ($max - $min) }
        $null = $sb.AppendLine("<g transform='translate($px,$py)'><text x='0' y='12' font-weight='bold'>$($p.Label)</text>")
        $null = $sb.AppendLine("<rect x='$gx' y='$gy' width='$gw' height='$gh' fill='none' stroke='#ccc'/>")
        $null = $sb.AppendLine(("<text x='{0}' y='{1}' text-anchor='end' fill='#555'>{2}</text><text x='{0}' y='{3}' text-anchor='end' fill='#555'>{4}</text>" -f ($gx - 3), ($gy + 8), $max.ToString('0.#', $Inv), ($gy + $gh), $min.ToString('0.#', $Inv)))
        $null = $sb.AppendLine("<text x='$gx' y='$($gy + $gh + 14)' fill='#555'>0</text><text x='$($gx + $gw)' y='$($gy + $gh + 14)' text-anchor='end' fill='#555'>$([Math]::Round($Duration / 60, 1)) min</text>")
        foreach ($ctx in $Contexts) {
            $v = $ctx.Verdict
            $w = (& $fx $v.warmupEnd) - $gx
            $null = $sb.AppendLine(("<rect x='{0}' y='{1}' width='{2:0.0}' height='{3}' fill='#000' fill-opacity='0.04'/>" -f $gx, $gy, $w, $gh))
            $after = @($ctx.Samples | Where-Object { $_.t -ge $v.warmupEnd })
            if ($v.samplesPerThird -ge 1) {
                foreach ($t in $after[$v.samplesPerThird - 1].t, $after[$after.Count - $v.samplesPerThird].t) {
                    $null = $sb.AppendLine(("<line x1='{0:0.0}' x2='{0:0.0}' y1='{1}' y2='{2}' stroke='{3}' stroke-dasharray='3,3'/>" -f (& $fx $t), $gy, ($gy + $gh), $colors[$ctx.Mode]))
                }
            }
            $pts = @(foreach ($s in $ctx.Samples) { $val = Get-Value $s $p.Id; if ($null -ne $val) { '{0:0.0},{1:0.0}' -f (& $fx $s.t), (& $fy $val) } })
            if ($pts.Count) { $null = $sb.AppendLine("<polyline fill='none' stroke='$($colors[$ctx.Mode])' stroke-width='1.5' points='$($pts -join ' ')'/>") }
        }
        $null = $sb.AppendLine('</g>')
    }
    $null = $sb.AppendLine('</svg>')
    $sb.ToString()
}

# ------------------------------------------------------------------------------------------
# After the churn: the router must come back to idle
# ------------------------------------------------------------------------------------------

function Stop-Churn($Ctx) {
    # The clients stop their forwarders and bindings themselves (what a user does), then exit.
    Set-Content -LiteralPath (Join-Path $Ctx.Net.TempDirectory 'stop') -Value ''
}

function Wait-Idle($Ctx, [System.Diagnostics.Stopwatch] $SinceStop) {
    # Returns the problems found: clients that did not end cleanly, state the router kept.
    $problems = [System.Collections.Generic.List[string]]::new()
    foreach ($role in 'Connector', 'Binder') {
        $p = $Ctx[$role]
        if (-not $p.WaitForExit(120)) { $problems.Add("the $($role.ToLower()) did not exit within 120 s of the stop") }
        elseif ($p.ExitCode -ne 0) { $problems.Add("the $($role.ToLower()) exited with $($p.ExitCode): $(($p.ReadStderr() -split "`n" | Select-Object -Last 5) -join ' ')") }
    }
    # Sessions end by FIN or reset, then linger in time-wait (30 s here); offloaded ones end
    # with their conntrack entry; a half-closed one whose other end vanished unseen ends after
    # the transitory idle time (4 minutes). The controller forgets bindings that said goodbye at once.
    $script:last = $null
    try {
        Wait-GlassCondition -TimeoutSeconds $IdleSeconds -IntervalMilliseconds 2000 -Because 'the router to come back to idle' {
            $m = Get-Metrics $Ctx.Net
            $ct = Get-Conntrack $Ctx.Net
            $script:last = [ordered]@{
                sessions = $m['glass_translator_sessions'] ?? 0; offloaded = $m['glass_translator_sessions_offloaded'] ?? 0
                bindings = $m['glass_controller_bindings'] ?? 0; portsInUse = $m['glass_controller_ports_in_use'] ?? 0
                clientSessions = $m['glass_controller_client_sessions'] ?? 0; glassConntrackEstablished = $ct.glassEstablished
            }
            -not @($script:last.Values | Where-Object { $_ -ne 0 })
        } | Out-Null
    }
    catch {
        $kept = ($script:last.GetEnumerator() | Where-Object { $_.Value -ne 0 } | ForEach-Object { "$($_.Key)=$($_.Value)" }) -join ', '
        # What state they are in, at the translator and in conntrack, says why they stayed.
        $m = Get-Metrics $Ctx.Net
        $states = ($m.Keys | Where-Object { $_ -like 'glass_translator_sessions|*' -and $m[$_] } | ForEach-Object { "$($_.Split('|')[1]) $($m[$_])" }) -join ', '
        $mark = 0x474C0000 -bor $Queue
        $entries = Invoke-GlassNetCommand -Net $Ctx.Net -Namespace router -FilePath sh -TimeoutSeconds 30 -ArgumentList @('-c',
            "conntrack -L -p tcp --mark $mark 2>/dev/null | awk '{print `$4}' | sort | uniq -c | tr -s ' ' | tr '\n' ';'")
        $problems.Add("$IdleSeconds s after the churn the router still holds: $kept (translator: $states; its conntrack entries by state: $($entries.Trim()))")
    }
    $Ctx.Idle = $script:last
    $Ctx.IdleSeconds = [Math]::Round($SinceStop.Elapsed.TotalSeconds)
    # Every connection and binding is gone: the router's descriptors are back where they were
    # before the first client (give or take the few a first use opens for good).
    $Ctx.IdleProcess = Get-ProcSample $Ctx.Router.Process.Pid
    if ($Ctx.IdleProcess.fds -gt $Ctx.Baseline.fds + $IdleDescriptorSlack) {
        $problems.Add("the idle router holds $($Ctx.IdleProcess.fds) descriptors, $($Ctx.Baseline.fds) before the first client (allowed +$IdleDescriptorSlack)")
    }
    $problems
}

# ------------------------------------------------------------------------------------------
# The run
# ------------------------------------------------------------------------------------------

$reason = Test-GlassNetPrerequisite
if ($reason) { throw "The soak run cannot run here: $reason" }
foreach ($tool in 'conntrack', 'curl') {
    if (-not (Get-Command $tool -CommandType Application -ErrorAction Ignore)) { throw "The soak run needs '$tool' (apt-get install conntrack curl)." }
}
$duration = $Minutes * 60
$started = [datetime]::UtcNow
$loadStart = (Get-Content /proc/loadavg).Split(' ')[0..2] -join ' '
$commit = (& git -C $RepoRoot rev-parse --short HEAD 2>$null)
if (& git -C $RepoRoot status --porcelain --untracked-files=no 2>$null) { $commit = "$commit+changes" }
Write-Step "soak: offload $($Modes -join ', '); $Minutes min; a sample every $SampleSeconds s; load $loadStart"

$contexts = [System.Collections.Generic.List[object]]::new()
$problems = [System.Collections.Generic.List[string]]::new()
$namespaces = [System.Collections.Generic.List[string]]::new()
$pids = [System.Collections.Generic.List[object]]::new()
$null = New-Item -ItemType Directory -Force -Path $OutDirectory
try {
    $seed = 1
    foreach ($mode in $Modes) {
        Write-Step "building the net for offload $mode and starting its router and clients"
        $ctx = Start-SoakNet $mode $seed
        $seed += 10
        $contexts.Add($ctx)
        $namespaces.AddRange([string[]]$ctx.Net.Namespaces)
    }
    $clock = [System.Diagnostics.Stopwatch]::StartNew()
    $next = 0.0
    while ($clock.Elapsed.TotalSeconds -lt $duration) {
        if ($clock.Elapsed.TotalSeconds -ge $next) {
            Add-Samples $contexts $clock.Elapsed.TotalSeconds
            $line = foreach ($ctx in $contexts) {
                $s = $ctx.Samples[-1]
                $ops = if ($s.ops) { ($s.ops.ops.Values | ForEach-Object { $_.ok } | Measure-Object -Sum).Sum } else { 0 }
                $err = if ($s.ops) { $s.ops.errors } else { 0 }
                '{0}: rss {1} MiB heap {2} MiB fds {3} thr {4} sess {5} ct {6} ops {7} err {8}' -f $ctx.Mode, (Format-Value $s.router.rss 'MiB'),
                    (Format-Value $s.router.managed 'MiB'), $s.router.fds, $s.router.threads, $s.translator.sessions, $s.conntrack.total, $ops, $err
            }
            Write-Step ("{0,4:0} s  {1}" -f $clock.Elapsed.TotalSeconds, ($line -join ' | '))
            $next += $SampleSeconds
        }
        foreach ($ctx in $contexts) {
            foreach ($role in 'Router', 'Connector', 'Binder', 'Echo') {
                $p = if ($role -eq 'Router') { $ctx.Router.Process } else { $ctx[$role] }
                if ($p.HasExited) { throw "The $($role.ToLower()) of the offload-$($ctx.Mode) net exited early ($($p.ExitCode)): $(($p.ReadStderr() -split "`n" | Select-Object -Last 10) -join ' ')" }
            }
        }
        Start-Sleep -Milliseconds 250
    }
    Write-Step 'stopping the churn; waiting for the router to come back to idle'
    foreach ($ctx in $contexts) { Stop-Churn $ctx }
    $sinceStop = [System.Diagnostics.Stopwatch]::StartNew()
    foreach ($ctx in $contexts) {
        foreach ($p in (Wait-Idle $ctx $sinceStop)) { $problems.Add("offload $($ctx.Mode): $p") }
        $ctx.Final = [ordered]@{
            ops = Read-StateJson (Join-Path $ctx.Net.TempDirectory 'connector.json')
            bindings = Read-StateJson (Join-Path $ctx.Net.TempDirectory 'binder.json')
        }
        foreach ($name in 'connector.errors', 'binder.errors') {
            $path = Join-Path $ctx.Net.TempDirectory $name
            if (Test-Path -LiteralPath $path) { Copy-Item -LiteralPath $path -Destination (Join-Path $OutDirectory "$($ctx.Mode)-$name") }
        }
        $ctx.ChannelFiles = @(Get-ChildItem -Recurse -File -LiteralPath (Join-Path $ctx.Net.TempDirectory 'data-hostB') -ErrorAction Ignore).Count
    }
}
catch {
    $problems.Add("the run stopped: $($_.Exception.Message)")
    Write-Warning $_.Exception.Message
}
finally {
    foreach ($ctx in $contexts) {
        foreach ($p in $ctx.Net.Processes) { $pids.Add($p) }
        Remove-GlassTestNet -Net $ctx.Net
    }
}

# Nothing may outlive the run: no namespace of ours, no process we started.
$left = @(& ip netns list 2>$null | ForEach-Object { ($_ -split ' ')[0] } | Where-Object { $namespaces -contains $_ })
if ($left) { $problems.Add("namespaces left behind: $($left -join ', ')") }
$alive = @($pids | Where-Object { -not $_.Process.HasExited })
if ($alive) { $problems.Add("processes left behind: $(($alive | ForEach-Object { "$($_.Pid) ($([IO.Path]::GetFileName($_.FilePath)))" }) -join ', ')") }

foreach ($ctx in $contexts) {
    $ctx.Verdict = Get-Verdict $ctx $duration
    foreach ($r in $ctx.Verdict.rows) {
        if ($r.verdict -eq 'GREW') { $problems.Add("offload $($ctx.Mode): $($r.label) grew from $(Format-Value $r.first $r.unit) to $(Format-Value $r.last $r.unit) $($r.unit) (allowed +$(Format-Value $r.allowed $r.unit))") }
        if ($r.verdict -eq 'no data') { $problems.Add("offload $($ctx.Mode): no samples of $($r.label)") }
    }
    if ($ctx.Contains('Final') -and $ctx.Final.ops) {
        $o = $ctx.Final.ops
        if ($o.hashedFailed) { $problems.Add("offload $($ctx.Mode): $($o.hashedFailed) of $($o.hashedTransfers) hashed transfers failed") }
        $failed = @($o.ops.Keys | Where-Object { $o.ops[$_].failed } | ForEach-Object { "$_ $($o.ops[$_].failed)" })
        if ($failed) { $problems.Add("offload $($ctx.Mode): failed operations: $($failed -join ', '); last: $($o.lastError)") }
        if (($o.ops.Values | ForEach-Object { $_.ok } | Measure-Object -Sum).Sum -eq 0) { $problems.Add("offload $($ctx.Mode): no operation succeeded") }
    }
    if ($ctx.Contains('Final') -and $ctx.Final.bindings -and $ctx.Final.bindings.errors) {
        $problems.Add("offload $($ctx.Mode): $($ctx.Final.bindings.errors) binding errors; last: $($ctx.Final.bindings.lastError)")
    }
}

$meta = [ordered]@{
    startedUtc = $started.ToString('yyyy-MM-dd HH:mm'); durationSeconds = [int]([datetime]::UtcNow - $started).TotalSeconds
    minutes = $Minutes; sampleSeconds = $SampleSeconds; offload = $Modes; warmupFraction = $WarmupFraction; warmupSessions = $WarmupSessions
    host = [ordered]@{ kernel = (& uname -r); cpus = [Environment]::ProcessorCount; commit = $commit
        loadAverageStart = $loadStart; loadAverageEnd = (Get-Content /proc/loadavg).Split(' ')[0..2] -join ' ' }
    tolerances = $Checks
}
$md = [System.Text.StringBuilder]::new()
$null = $md.AppendLine("Soak of $($meta.startedUtc) UTC, $Minutes min, offload $($Modes -join ' and ')$(if ($Modes.Count -gt 1) { ' side by side' }), on $($meta.host.cpus) cores (load average $loadStart at the start, $($meta.host.loadAverageEnd) at the end), commit ``$commit``; a sample every $SampleSeconds s.")
$null = $md.AppendLine()
foreach ($ctx in $contexts) { if ($ctx.Contains('Verdict')) { $null = $md.AppendLine((Get-MarkdownTable $ctx)) } }
$null = $md.AppendLine($(if ($problems.Count) { "Verdict: FAILED`n`n" + (($problems | ForEach-Object { "- $_" }) -join "`n") } else { 'Verdict: flat; every operation succeeded or was refused as expected; the router came back to idle; nothing left behind.' }))

$json = [ordered]@{
    meta = $meta
    nets = @(foreach ($ctx in $contexts) {
            [ordered]@{ offload = $ctx.Mode; net = $ctx.Net.Id; lingerSeconds = $ctx.Linger; verdict = $ctx.Verdict; final = $(if ($ctx.Contains('Final')) { $ctx.Final }); idle = $(if ($ctx.Contains('Idle')) { $ctx.Idle })
                idleSeconds = $(if ($ctx.Contains('IdleSeconds')) { $ctx.IdleSeconds }); baselineRouterProcess = $ctx.Baseline
                idleRouterProcess = $(if ($ctx.Contains('IdleProcess')) { $ctx.IdleProcess }); channelSecretFiles = $(if ($ctx.Contains('ChannelFiles')) { $ctx.ChannelFiles }); samples = $ctx.Samples }
        })
    problems = $problems
}
$json | ConvertTo-Json -Depth 12 | Set-Content -LiteralPath (Join-Path $OutDirectory 'soak.json')
$md.ToString() | Set-Content -LiteralPath (Join-Path $OutDirectory 'soak.md')
if ($contexts.Count -and @($contexts | Where-Object { $_.Contains('Verdict') }).Count) {
    Get-Svg @($contexts) $duration | Set-Content -LiteralPath (Join-Path $OutDirectory 'soak.svg')
}
Write-Host ''
Write-Host $md.ToString()
Write-Step "wrote $(Join-Path $OutDirectory 'soak.json'), soak.md, soak.svg"
if ($problems.Count) { exit 1 }
