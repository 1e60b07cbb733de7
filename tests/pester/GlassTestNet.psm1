<#
.SYNOPSIS
    Network-namespace test harness for Glass end-to-end tests (Linux, root).

.DESCRIPTION
    Builds a small simulated internet out of network namespaces:

        hostA (192.168.1.2) --lan-- natA (192.168.1.1 | 203.0.113.2) --pub--+
                                                                           br0  router (203.0.113.1)
        hostB (192.168.2.2) --lan-- natB (192.168.2.1 | 203.0.113.3) --pub--+
        (New-GlassTestNet -Attacker)    attacker (203.0.113.66) --pub--+

    The router namespace holds a bridge br0 that plays the public segment and carries the glass
    router's public address. natA/natB forward and MASQUERADE their LAN behind their public
    address. Every namespace name carries a random suffix (the net's Id) so that concurrent runs
    do not collide, and Remove-GlassTestNet tears everything down (processes first, by pid).

    Kernel behaviour worth knowing (see also New-GlassTestNet):
      * bridge netfilter (br_netfilter) may be built in and on by default in every new namespace
        (net.bridge.bridge-nf-call-iptables=1). It would run frames that the bridge merely
        switches (natA <-> natB) through the router namespace's iptables and conntrack, and
        evaluate PREROUTING at bridge level. The router namespace turns it off so that br0
        behaves like a plain switch plus one ordinary host.
      * Offloads are left on (ethtool is not needed): veth keeps TSO/GSO and checksum offload,
        so a capture may show TCP segments larger than the MTU (GSO super-packets) and, with
        -vv, "incorrect cksum" on locally sent packets. Neither affects what this harness checks.
      * IPv6 is disabled in every namespace: the topology is IPv4-only, and it keeps router
        solicitations / MLD reports out of captures.
#>

Set-StrictMode -Version Latest

$script:RoleNames = [ordered]@{
    router = 'RouterNs'
    natA   = 'NatANs'
    hostA  = 'HostANs'
    natB   = 'NatBNs'
    hostB  = 'HostBNs'
    attacker = 'AttackerNs'
}

function Get-GlassTool {
    # Full path of a required executable (PATH lookups are cached per session); -Package names
    # the Debian package to install in the error.
    param([Parameter(Mandatory)][string]$Name, [string]$Package)
    $cmd = Get-Command -Name $Name -CommandType Application -ErrorAction Ignore | Select-Object -First 1
    if (-not $cmd) {
        foreach ($dir in '/usr/sbin', '/sbin', '/usr/bin', '/bin') {
            $candidate = Join-Path $dir $Name
            if (Test-Path -LiteralPath $candidate -PathType Leaf) { return $candidate }
        }
        if ($Package) { throw "'$Name' is not installed: apt-get install $Package (./build.ps1 prereqs installs it)." }
        throw "Required executable '$Name' was not found in PATH."
    }
    $cmd.Source
}

function Invoke-GlassNative {
    # Runs an executable synchronously without a shell; returns ExitCode, Stdout, Stderr.
    param(
        [Parameter(Mandatory)][string]$FilePath,
        [string[]]$ArgumentList = @(),
        [double]$TimeoutSeconds = 60,
        [string]$WorkingDirectory
    )
    $psi = [System.Diagnostics.ProcessStartInfo]::new($FilePath)
    foreach ($a in $ArgumentList) { $psi.ArgumentList.Add([string]$a) }
    $psi.UseShellExecute = $false
    $psi.RedirectStandardInput = $true
    $psi.RedirectStandardOutput = $true
    $psi.RedirectStandardError = $true
    if ($WorkingDirectory) { $psi.WorkingDirectory = $WorkingDirectory }
    $p = [System.Diagnostics.Process]::Start($psi)
    try {
        $p.StandardInput.Close()
        $stdout = $p.StandardOutput.ReadToEndAsync()
        $stderr = $p.StandardError.ReadToEndAsync()
        if (-not $p.WaitForExit([int][Math]::Ceiling($TimeoutSeconds * 1000))) {
            try { $p.Kill($true) } catch { Write-Verbose "kill after timeout: $_" }
            $null = $p.WaitForExit(5000)
            throw "Timed out after $TimeoutSeconds s running: $FilePath $($ArgumentList -join ' ')"
        }
        $p.WaitForExit()
        [pscustomobject]@{
            ExitCode = $p.ExitCode
            Stdout   = $stdout.GetAwaiter().GetResult()
            Stderr   = $stderr.GetAwaiter().GetResult()
        }
    }
    finally {
        $p.Dispose()
    }
}

function Invoke-GlassChecked {
    # Invoke-GlassNative that throws (with stderr) on a non-zero exit code.
    param([Parameter(Mandatory)][string]$FilePath, [string[]]$ArgumentList = @(), [double]$TimeoutSeconds = 60)
    $r = Invoke-GlassNative -FilePath $FilePath -ArgumentList $ArgumentList -TimeoutSeconds $TimeoutSeconds
    if ($r.ExitCode -ne 0) {
        throw "Command failed (exit code $($r.ExitCode)): $FilePath $($ArgumentList -join ' ')`n$($r.Stderr.Trim())"
    }
    $r.Stdout
}

function Invoke-GlassIp {
    param([Parameter(ValueFromRemainingArguments)][string[]]$ArgumentList)
    $null = Invoke-GlassChecked -FilePath (Get-GlassTool ip) -ArgumentList $ArgumentList
}

function Get-GlassNamespaceList {
    $out = Invoke-GlassChecked -FilePath (Get-GlassTool ip) -ArgumentList 'netns', 'list'
    # Lines look like "name" or "name (id: 3)".
    @($out -split "`n" | ForEach-Object { ($_ -split '\s+')[0] } | Where-Object { $_ })
}

function Resolve-GlassNamespace {
    # Accepts a role (router, natA, hostA, natB, hostB), a property name (RouterNs, ...) or a
    # full namespace name of this net.
    param([Parameter(Mandatory)]$Net, [Parameter(Mandatory)][string]$Namespace)
    if ($Net.Namespaces -contains $Namespace) { return $Namespace }
    foreach ($role in $script:RoleNames.Keys) {
        $property = $script:RoleNames[$role]
        if ($Namespace -eq $role -or $Namespace -eq $property) { return $Net.$property }
    }
    throw "Unknown namespace '$Namespace' for test net $($Net.Id); use one of: $(@($script:RoleNames.Keys) -join ', ') or $($Net.Namespaces -join ', ')."
}

function Get-GlassRole {
    param($Net, [string]$NamespaceName)
    foreach ($role in $script:RoleNames.Keys) {
        if ($Net.($script:RoleNames[$role]) -eq $NamespaceName) { return $role }
    }
    $NamespaceName
}

function Read-GlassSharedFile {
    # Reads a file another process may still be writing to.
    param([string]$Path)
    if (-not (Test-Path -LiteralPath $Path -PathType Leaf)) { return '' }
    $fs = [System.IO.FileStream]::new($Path, [System.IO.FileMode]::Open, [System.IO.FileAccess]::Read,
        [System.IO.FileShare]::ReadWrite -bor [System.IO.FileShare]::Delete)
    try {
        $reader = [System.IO.StreamReader]::new($fs)
        $reader.ReadToEnd()
    }
    finally {
        $fs.Dispose()
    }
}

function Send-GlassSignal {
    # Sends a signal to one pid, unless .NET already saw the process exit.
    param([Parameter(Mandatory)][System.Diagnostics.Process]$Process, [string]$Signal = 'TERM')
    if ($Process.HasExited) { return }
    $r = Invoke-GlassNative -FilePath (Get-GlassTool kill) -ArgumentList @('-s', $Signal, [string]$Process.Id) -TimeoutSeconds 10
    if ($r.ExitCode -ne 0 -and -not $Process.HasExited) {
        Write-Warning "kill -s $Signal $($Process.Id) failed: $($r.Stderr.Trim())"
    }
}

function Wait-GlassCondition {
    <#
    .SYNOPSIS
        Polls a script block until it returns a truthy value; returns that value.
    .DESCRIPTION
        Throws "Timed out after N s waiting for <Because>" when the deadline passes. An exception
        thrown by the block is not swallowed: it ends the wait at once (use that to fail fast,
        e.g. when the process being waited for has died).
    #>
    [CmdletBinding()]
    param(
        [Parameter(Mandatory, Position = 0)][scriptblock]$ScriptBlock,
        [ValidateRange(0, 86400)][double]$TimeoutSeconds = 30,
        [Parameter(Mandatory)][string]$Because,
        [ValidateRange(1, 60000)][int]$IntervalMilliseconds = 50
    )
    $clock = [System.Diagnostics.Stopwatch]::StartNew()
    while ($true) {
        $result = & $ScriptBlock
        if ($result) { return $result }
        if ($clock.Elapsed.TotalSeconds -ge $TimeoutSeconds) {
            throw "Timed out after $TimeoutSeconds s waiting for $Because"
        }
        $remaining = [int](($TimeoutSeconds - $clock.Elapsed.TotalSeconds) * 1000)
        Start-Sleep -Milliseconds ([Math]::Max(1, [Math]::Min($IntervalMilliseconds, $remaining)))
    }
}

function Test-GlassNetPrerequisite {
    <#
    .SYNOPSIS
        Returns $null when network-namespace tests can run here, otherwise the reason they can't.
    .DESCRIPTION
        Checks Linux, root, the tools (ip, iptables, tcpdump, sysctl, sh, kill) and then probes for real:
        creates a throw-away namespace with a veth pair, a bridge and a MASQUERADE rule.
    #>
    [CmdletBinding()]
    [OutputType([string])]
    param()
    if (-not $IsLinux) { return 'network namespace tests need Linux' }
    $uidLine = Get-Content -LiteralPath /proc/self/status -ErrorAction Ignore | Where-Object { $_ -like 'Uid:*' }
    if (-not $uidLine -or ($uidLine -split '\s+')[2] -ne '0') {
        return 'network namespace tests need root (effective uid 0)'
    }
    foreach ($tool in 'ip', 'iptables', 'tcpdump', 'sysctl', 'sh', 'kill') {
        try { $null = Get-GlassTool $tool } catch { return "'$tool' is not installed or not in PATH" }
    }
    $probe = 'glass-probe-' + [Convert]::ToHexString([System.Security.Cryptography.RandomNumberGenerator]::GetBytes(3)).ToLowerInvariant()
    $ip = Get-GlassTool ip
    $step = "create namespace $probe"
    try {
        $null = Invoke-GlassChecked $ip 'netns', 'add', $probe
        $step = 'create a veth pair in a namespace'
        $null = Invoke-GlassChecked $ip '-n', $probe, 'link', 'add', 'p0', 'type', 'veth', 'peer', 'name', 'p1'
        $step = 'create a bridge in a namespace'
        $null = Invoke-GlassChecked $ip '-n', $probe, 'link', 'add', 'b0', 'type', 'bridge'
        $step = 'run a command in a namespace (ip netns exec)'
        $null = Invoke-GlassChecked $ip 'netns', 'exec', $probe, (Get-GlassTool ip), 'link', 'show', 'p0'
        $step = 'add an iptables MASQUERADE rule (nat table) in a namespace'
        $null = Invoke-GlassChecked $ip 'netns', 'exec', $probe, (Get-GlassTool iptables), '-t', 'nat', '-A', 'POSTROUTING', '-o', 'p0', '-j', 'MASQUERADE'
        $step = 'run tcpdump'
        $null = Invoke-GlassChecked (Get-GlassTool tcpdump) '--version'
    }
    catch {
        return "cannot $step`: $($_.Exception.Message)"
    }
    finally {
        $null = Invoke-GlassNative $ip 'netns', 'delete', $probe
    }
    $null
}

function Get-GlassNetConfigHome {
    # XDG_CONFIG_HOME of the processes in one namespace (role) of the net: under its temp directory.
    param([Parameter(Mandatory)]$Net, [Parameter(Mandatory)][string]$Role)
    Join-Path $Net.TempDirectory "config-$Role"
}

function Get-GlassNetDataHome {
    # XDG_DATA_HOME of the same: New-GlassBinding keeps each channel's secret there, one file per
    # binding, which must go with the net and not pile up in the user's ~/.local/share/glass.
    param([Parameter(Mandatory)]$Net, [Parameter(Mandatory)][string]$Role)
    Join-Path $Net.TempDirectory "data-$Role"
}

function New-GlassTestNet {
    <#
    .SYNOPSIS
        Creates the router / natA / hostA / natB / hostB namespaces and returns a description.
    .PARAMETER MtuA
        MTU of every link of leg A: router's bridge port natA, natA's pub and lan, hostA's eth0.
    .PARAMETER MtuB
        Same for leg B. br0 itself gets max(MtuA, MtuB) (set explicitly; a bridge would otherwise
        follow its smallest port), so the router advertises the larger MSS and each peer's MSS
        keeps the router's segments within that peer's leg. A frame larger than a leg's MTU is
        dropped silently at that leg's veth, as on a real layer-2 segment.
    .PARAMETER Attacker
        Adds a sixth namespace, attacker (glass-evil-<id>, 203.0.113.66 on the public segment), for
        tests that forge packets; the router routes 198.51.100.0/24 through it, so spoofed sources
        there are answered (if at all) towards the attacker.
    #>
    [CmdletBinding()]
    param(
        [ValidateRange(576, 65535)][int]$MtuA = 1500,
        [ValidateRange(576, 65535)][int]$MtuB = 1500,
        [switch]$Attacker
    )
    $id = [Convert]::ToHexString([System.Security.Cryptography.RandomNumberGenerator]::GetBytes(3)).ToLowerInvariant()
    $temp = Join-Path ([System.IO.Path]::GetTempPath()) "glass-testnet-$id"
    $null = New-Item -ItemType Directory -Path $temp -Force

    $net = [pscustomobject]@{
        PSTypeName         = 'Glass.TestNet'
        Id                 = $id
        RouterNs           = "glass-router-$id"
        NatANs             = "glass-nata-$id"
        HostANs            = "glass-hosta-$id"
        NatBNs             = "glass-natb-$id"
        HostBNs            = "glass-hostb-$id"
        AttackerNs         = $(if ($Attacker) { "glass-evil-$id" } else { $null })
        Namespaces         = [string[]]@(@("glass-router-$id", "glass-nata-$id", "glass-hosta-$id", "glass-natb-$id", "glass-hostb-$id") +
            @(if ($Attacker) { "glass-evil-$id" }))
        PrefixLength       = 24
        PublicSubnet       = '203.0.113.0/24'
        RouterAddress      = '203.0.113.1'
        NatAPublicAddress  = '203.0.113.2'
        NatALanAddress     = '192.168.1.1'
        HostAAddress       = '192.168.1.2'
        LanASubnet         = '192.168.1.0/24'
        NatBPublicAddress  = '203.0.113.3'
        NatBLanAddress     = '192.168.2.1'
        HostBAddress       = '192.168.2.2'
        AttackerAddress    = $(if ($Attacker) { '203.0.113.66' } else { $null })
        AttackerSubnet     = $(if ($Attacker) { '198.51.100.0/24' } else { $null })
        LanBSubnet         = '192.168.2.0/24'
        RouterBridge       = 'br0'
        RouterPortA        = 'natA'
        RouterPortB        = 'natB'
        NatPublicInterface = 'pub'
        NatLanInterface    = 'lan'
        HostInterface      = 'eth0'
        MtuA               = $MtuA
        MtuB               = $MtuB
        TempDirectory      = $temp
        Processes          = [System.Collections.Generic.List[object]]::new()
        Created            = $false
    }

    $ip = Get-GlassTool ip
    $sysctl = Get-GlassTool sysctl
    $iptables = Get-GlassTool iptables
    try {
        foreach ($ns in $net.Namespaces) {
            Invoke-GlassIp netns add $ns
            # IPv4-only topology: no IPv6 link-local chatter in captures.
            $null = Invoke-GlassChecked $ip 'netns', 'exec', $ns, $sysctl, '-q', '-w',
                'net.ipv6.conf.all.disable_ipv6=1', 'net.ipv6.conf.default.disable_ipv6=1'
            Invoke-GlassIp -n $ns link set lo up
        }

        # Router: the public segment is a bridge; the router is an ordinary host on it.
        $r = $net.RouterNs
        Invoke-GlassIp -n $r link add br0 type bridge stp_state 0
        # br_netfilter would otherwise run switched frames through this namespace's iptables.
        $bridgeNf = Invoke-GlassNative $ip 'netns', 'exec', $r, $sysctl, '-q', '-w',
            'net.bridge.bridge-nf-call-iptables=0', 'net.bridge.bridge-nf-call-ip6tables=0', 'net.bridge.bridge-nf-call-arptables=0'
        if ($bridgeNf.ExitCode -ne 0) { Write-Verbose "bridge netfilter sysctls not available: $($bridgeNf.Stderr.Trim())" }

        $legs = @(
            @{ Nat = $net.NatANs; HostNs = $net.HostANs; Port = 'natA'; Mtu = $MtuA; Public = $net.NatAPublicAddress; Gateway = $net.NatALanAddress; HostAddr = $net.HostAAddress }
            @{ Nat = $net.NatBNs; HostNs = $net.HostBNs; Port = 'natB'; Mtu = $MtuB; Public = $net.NatBPublicAddress; Gateway = $net.NatBLanAddress; HostAddr = $net.HostBAddress }
        )
        foreach ($leg in $legs) {
            $mtu = [string]$leg.Mtu
            # Each veth is created inside its namespaces (ip -n ... peer ... netns ...), so the
            # fixed names never exist in, or collide within, the host namespace.
            Invoke-GlassIp -n $leg.Nat link add pub mtu $mtu type veth peer name $leg.Port mtu $mtu netns $r
            Invoke-GlassIp -n $r link set $leg.Port master br0
            Invoke-GlassIp -n $r link set $leg.Port up
            Invoke-GlassIp -n $leg.Nat link add lan mtu $mtu type veth peer name eth0 mtu $mtu netns $leg.HostNs

            Invoke-GlassIp -n $leg.Nat addr add "$($leg.Public)/24" dev pub
            Invoke-GlassIp -n $leg.Nat addr add "$($leg.Gateway)/24" dev lan
            Invoke-GlassIp -n $leg.Nat link set pub up
            Invoke-GlassIp -n $leg.Nat link set lan up
            $null = Invoke-GlassChecked $ip 'netns', 'exec', $leg.Nat, $sysctl, '-q', '-w', 'net.ipv4.ip_forward=1'
            $null = Invoke-GlassChecked $ip 'netns', 'exec', $leg.Nat, $iptables, '-t', 'nat', '-A', 'POSTROUTING', '-o', 'pub', '-j', 'MASQUERADE'

            Invoke-GlassIp -n $leg.HostNs addr add "$($leg.HostAddr)/24" dev eth0
            Invoke-GlassIp -n $leg.HostNs link set eth0 up
            Invoke-GlassIp -n $leg.HostNs route add default via $leg.Gateway dev eth0
        }

        Invoke-GlassIp -n $r link set br0 mtu ([string][Math]::Max($MtuA, $MtuB))
        Invoke-GlassIp -n $r addr add "$($net.RouterAddress)/24" dev br0
        Invoke-GlassIp -n $r link set br0 up

        $links = @(@($net.RouterNs, 'br0'), @($net.RouterNs, 'natA'), @($net.RouterNs, 'natB'),
            @($net.NatANs, 'pub'), @($net.NatANs, 'lan'), @($net.HostANs, 'eth0'),
            @($net.NatBNs, 'pub'), @($net.NatBNs, 'lan'), @($net.HostBNs, 'eth0'))
        if ($Attacker) {
            # A third host on the public segment, and the subnet it pretends to route.
            $e = $net.AttackerNs
            Invoke-GlassIp -n $e link add pub type veth peer name evil netns $r
            Invoke-GlassIp -n $r link set evil master br0
            Invoke-GlassIp -n $r link set evil up
            Invoke-GlassIp -n $e addr add "$($net.AttackerAddress)/24" dev pub
            Invoke-GlassIp -n $e link set pub up
            Invoke-GlassIp -n $r route add $net.AttackerSubnet via $net.AttackerAddress dev br0
            $links += , @($e, 'pub')
            $links += , @($r, 'evil')
        }

        # Links come up asynchronously (carrier on veth, bridge port forwarding state): poll.
        $null = Wait-GlassCondition -TimeoutSeconds 10 -Because "links of test net $id to come up" -ScriptBlock {
            $down = foreach ($check in $links) {
                $state = Invoke-GlassChecked $ip '-n', $check[0], '-o', 'link', 'show', 'dev', $check[1]
                if ($state -notmatch 'state UP' -or $state -match 'NO-CARRIER') { $check -join '/' }
            }
            -not $down
        }
        $net.Created = $true
        $net
    }
    catch {
        $err = $_
        Remove-GlassTestNet -Net $net
        throw "New-GlassTestNet failed (torn down again): $($err.Exception.Message)"
    }
}

function Start-GlassNetProcess {
    <#
    .SYNOPSIS
        Starts FILE ARGS... inside a namespace of the net, in the background.
    .DESCRIPTION
        Runs `ip netns exec NS FILE ARGS...` through `sh -c 'exec ...'` with stdin from /dev/null
        and stdout/stderr redirected to files in the net's temp directory. sh and ip both exec in
        place, so Pid is the command's own process. The process is recorded in $Net.Processes
        and killed by Remove-GlassTestNet.
    .OUTPUTS
        [pscustomobject] Glass.NetProcess: Pid, Namespace, Role, FilePath, ArgumentList,
        StdoutPath, StderrPath, Process ([System.Diagnostics.Process]), StartTime; script
        properties HasExited, ExitCode; script methods ReadStdout(), ReadStderr(),
        WaitForExit(seconds) -> bool.
    #>
    [CmdletBinding()]
    param(
        [Parameter(Mandatory)]$Net,
        [Parameter(Mandatory)][string]$Namespace,
        [Parameter(Mandatory)][string]$FilePath,
        [string[]]$ArgumentList = @(),
        [string]$WorkingDirectory,
        [hashtable]$Environment
    )
    $ns = Resolve-GlassNamespace -Net $Net -Namespace $Namespace
    $role = Get-GlassRole -Net $Net -NamespaceName $ns
    $index = $Net.Processes.Count
    $leaf = ([System.IO.Path]::GetFileName($FilePath) -replace '[^A-Za-z0-9._-]', '_')
    $base = Join-Path $Net.TempDirectory ('{0:D3}-{1}-{2}' -f $index, $role, $leaf)
    $stdoutPath = "$base.stdout"
    $stderrPath = "$base.stderr"

    $psi = [System.Diagnostics.ProcessStartInfo]::new((Get-GlassTool sh))
    $psi.UseShellExecute = $false
    # Each namespace is its own machine with its own client settings (the router keys its clients
    # pinned on first use) and channel secrets, never the user's own: unless the caller names another.
    $psi.Environment['XDG_CONFIG_HOME'] = Get-GlassNetConfigHome -Net $Net -Role $role
    $psi.Environment['XDG_DATA_HOME'] = Get-GlassNetDataHome -Net $Net -Role $role
    foreach ($a in @('-c', 'out=$1; err=$2; shift 2; exec "$@" </dev/null >"$out" 2>"$err"', 'glass-netproc',
            $stdoutPath, $stderrPath, (Get-GlassTool ip), 'netns', 'exec', $ns, $FilePath) + @($ArgumentList)) {
        $psi.ArgumentList.Add([string]$a)
    }
    if ($WorkingDirectory) { $psi.WorkingDirectory = $WorkingDirectory }
    if ($Environment) {
        foreach ($key in $Environment.Keys) { $psi.Environment[[string]$key] = [string]$Environment[$key] }
    }
    $process = [System.Diagnostics.Process]::Start($psi)

    $record = [pscustomobject]@{
        PSTypeName   = 'Glass.NetProcess'
        Pid          = $process.Id
        Namespace    = $ns
        Role         = $role
        FilePath     = $FilePath
        ArgumentList = [string[]]@($ArgumentList)
        StdoutPath   = $stdoutPath
        StderrPath   = $stderrPath
        Process      = $process
        StartTime    = [datetime]::UtcNow
    }
    $record | Add-Member -MemberType ScriptProperty -Name HasExited -Value { $this.Process.HasExited }
    $record | Add-Member -MemberType ScriptProperty -Name ExitCode -Value {
        if ($this.Process.HasExited) { $this.Process.ExitCode } else { $null }
    }
    $record | Add-Member -MemberType ScriptMethod -Name ReadStdout -Value { Read-GlassSharedFile $this.StdoutPath }
    $record | Add-Member -MemberType ScriptMethod -Name ReadStderr -Value { Read-GlassSharedFile $this.StderrPath }
    $record | Add-Member -MemberType ScriptMethod -Name WaitForExit -Value {
        param([double]$Seconds)
        $this.Process.WaitForExit([int][Math]::Ceiling($Seconds * 1000))
    }
    $Net.Processes.Add($record)
    $record
}

function Wait-GlassNetProcess {
    <#
    .SYNOPSIS
        Waits for a process from Start-GlassNetProcess to exit; returns its exit code.
        Throws on timeout (with the tail of its stderr); the process is left running.
    #>
    [CmdletBinding()]
    param(
        [Parameter(Mandatory, ValueFromPipeline)]$Process,
        [double]$TimeoutSeconds = 60
    )
    process {
        if (-not $Process.Process.WaitForExit([int][Math]::Ceiling($TimeoutSeconds * 1000))) {
            $tail = ($Process.ReadStderr() -split "`n" | Select-Object -Last 20) -join "`n"
            throw "Timed out after $TimeoutSeconds s waiting for pid $($Process.Pid) ($($Process.FilePath)) in $($Process.Namespace) to exit. stderr:`n$tail"
        }
        $Process.Process.WaitForExit()
        $Process.Process.ExitCode
    }
}

function Stop-GlassNetProcess {
    <#
    .SYNOPSIS
        Stops processes from Start-GlassNetProcess by pid: Signal (default TERM), then after
        TimeoutSeconds SIGKILL to the process and its descendants. Never throws for processes
        that already exited.
    #>
    [CmdletBinding()]
    param(
        [Parameter(Mandatory, ValueFromPipeline)][object[]]$Process,
        [ValidateSet('TERM', 'INT', 'HUP', 'KILL')][string]$Signal = 'TERM',
        [double]$TimeoutSeconds = 5
    )
    begin { $all = [System.Collections.Generic.List[object]]::new() }
    process { foreach ($p in $Process) { if ($p) { $all.Add($p) } } }
    end {
        foreach ($p in $all) {
            try { Send-GlassSignal -Process $p.Process -Signal $Signal } catch { Write-Verbose "signal $($p.Pid): $_" }
        }
        $clock = [System.Diagnostics.Stopwatch]::StartNew()
        foreach ($p in $all) {
            $left = [Math]::Max(0, $TimeoutSeconds - $clock.Elapsed.TotalSeconds)
            if (-not $p.Process.WaitForExit([int]($left * 1000))) {
                try { $p.Process.Kill($true) } catch { Write-Verbose "kill $($p.Pid): $_" }
                $null = $p.Process.WaitForExit(5000)
            }
        }
    }
}

function Invoke-GlassNetCommand {
    <#
    .SYNOPSIS
        Runs FILE ARGS... synchronously inside a namespace of the net and returns its stdout
        (one string). Throws with the exit code and stderr on a non-zero exit or on timeout.
    #>
    [CmdletBinding()]
    [OutputType([string])]
    param(
        [Parameter(Mandatory)]$Net,
        [Parameter(Mandatory)][string]$Namespace,
        [Parameter(Mandatory)][string]$FilePath,
        [string[]]$ArgumentList = @(),
        [double]$TimeoutSeconds = 120,
        [string]$WorkingDirectory
    )
    $ns = Resolve-GlassNamespace -Net $Net -Namespace $Namespace
    # The namespace's own client settings, as Start-GlassNetProcess gives them.
    $role = Get-GlassRole -Net $Net -NamespaceName $ns
    $config = Get-GlassNetConfigHome -Net $Net -Role $role
    $data = Get-GlassNetDataHome -Net $Net -Role $role
    $all = @('netns', 'exec', $ns, (Get-GlassTool env), "XDG_CONFIG_HOME=$config", "XDG_DATA_HOME=$data", $FilePath) + @($ArgumentList)
    $r = Invoke-GlassNative -FilePath (Get-GlassTool ip) -ArgumentList $all -TimeoutSeconds $TimeoutSeconds -WorkingDirectory $WorkingDirectory
    if ($r.ExitCode -ne 0) {
        throw "'$FilePath $($ArgumentList -join ' ')' in namespace $ns failed with exit code $($r.ExitCode): $($r.Stderr.Trim())"
    }
    $r.Stdout
}

function Start-GlassCapture {
    <#
    .SYNOPSIS
        Starts tcpdump (-U -n, as root) inside a namespace, writing a pcap to the net's temp
        directory, and returns once tcpdump reports it is listening.
    .OUTPUTS
        [pscustomobject] Glass.Capture: Net, Namespace, Interface, Filter, PcapPath, Process.
    #>
    [CmdletBinding()]
    param(
        [Parameter(Mandatory)]$Net,
        [Parameter(Mandatory)][string]$Namespace,
        [string]$Interface = 'any',
        [string]$Filter,
        [ValidateRange(0, 262144)][int]$SnapLength = 0,
        # Kernel capture buffer (tcpdump -B). veth delivers GSO super-packets of up to 64 KiB,
        # which overflow tcpdump's default 2 MiB buffer on a busy machine ("dropped by kernel").
        [ValidateRange(1024, 1048576)][int]$BufferSizeKiB = 32768,
        [double]$TimeoutSeconds = 10
    )
    $ns = Resolve-GlassNamespace -Net $Net -Namespace $Namespace
    $role = Get-GlassRole -Net $Net -NamespaceName $ns
    $pcap = Join-Path $Net.TempDirectory ('capture-{0:D3}-{1}-{2}.pcap' -f $Net.Processes.Count, $role, ($Interface -replace '[^A-Za-z0-9._-]', '_'))
    # --immediate-mode: packets reach the file as they come; without it tcpdump holds them up to a
    # second and loses what it still holds when stopped, so a "never saw X" check could pass on nothing.
    $tcpdumpArgs = @('-i', $Interface, '--immediate-mode', '-U', '-n', '-Z', 'root', '-s', [string]$SnapLength, '-B', [string]$BufferSizeKiB, '-w', $pcap)
    if ($Filter) { $tcpdumpArgs += $Filter }
    $proc = Start-GlassNetProcess -Net $Net -Namespace $ns -FilePath (Get-GlassTool tcpdump) -ArgumentList $tcpdumpArgs
    Wait-GlassCondition -TimeoutSeconds $TimeoutSeconds -Because "tcpdump in $ns to listen on $Interface" -ScriptBlock {
        if ($proc.HasExited) {
            throw "tcpdump in $ns exited with code $($proc.ExitCode): $($proc.ReadStderr().Trim())"
        }
        ($proc.ReadStderr() -match 'listening on') -and (Test-Path -LiteralPath $pcap)
    } | Out-Null
    [pscustomobject]@{
        PSTypeName = 'Glass.Capture'
        Net        = $Net
        Namespace  = $ns
        Interface  = $Interface
        Filter     = $Filter
        PcapPath   = $pcap
        Process    = $proc
    }
}

function Stop-GlassCapture {
    <#
    .SYNOPSIS
        Stops a capture (SIGINT, so tcpdump flushes) and summarises the pcap via `tcpdump -n -r`.
    .OUTPUTS
        [pscustomobject] Glass.CaptureResult: PcapPath, Namespace, Interface, PacketCount (lines
        of `tcpdump -r`, i.e. packets; with -i any a forwarded packet counts once per interface,
        and a GSO super-packet counts once), Addresses (distinct IPv4 source/destination
        addresses of IP packets, sorted), DroppedByKernel (from tcpdump's summary, or $null).
    #>
    [CmdletBinding()]
    param([Parameter(Mandatory, ValueFromPipeline)]$Capture)
    process {
        Stop-GlassNetProcess -Process $Capture.Process -Signal INT -TimeoutSeconds 10
        $dropped = $null
        if ($Capture.Process.ReadStderr() -match '(\d+) packets? dropped by kernel') { $dropped = [int64]$Matches[1] }

        $r = Invoke-GlassNative -FilePath (Get-GlassTool tcpdump) -ArgumentList '-n', '-r', $Capture.PcapPath -TimeoutSeconds 120
        if ($r.ExitCode -ne 0) {
            throw "tcpdump -r $($Capture.PcapPath) failed (exit code $($r.ExitCode)): $($r.Stderr.Trim())"
        }
        $lines = @($r.Stdout -split "`n" | Where-Object { $_.Trim() })
        $addresses = [System.Collections.Generic.HashSet[string]]::new()
        $pattern = [regex]'\bIP (\d{1,3}(?:\.\d{1,3}){3})(?:\.\d+)? > (\d{1,3}(?:\.\d{1,3}){3})(?:\.\d+)?:'
        foreach ($line in $lines) {
            $m = $pattern.Match($line)
            if ($m.Success) {
                $null = $addresses.Add($m.Groups[1].Value)
                $null = $addresses.Add($m.Groups[2].Value)
            }
        }
        [pscustomobject]@{
            PSTypeName      = 'Glass.CaptureResult'
            PcapPath        = $Capture.PcapPath
            Namespace       = $Capture.Namespace
            Interface       = $Capture.Interface
            PacketCount     = $lines.Count
            Addresses       = [string[]]@($addresses | Sort-Object { [version]$_ })
            DroppedByKernel = $dropped
        }
    }
}

function Remove-GlassTestNet {
    <#
    .SYNOPSIS
        Tears a test net down: stops every process started through Start-GlassNetProcess (TERM,
        then SIGKILL by pid after a grace period), kills by pid anything else still running in
        its namespaces, deletes the namespaces and the temp directory. Idempotent; never throws
        (problems become warnings).
    #>
    [CmdletBinding()]
    param(
        [Parameter(Mandatory, ValueFromPipeline)][AllowNull()]$Net,
        [switch]$KeepTempDirectory,
        [double]$GraceSeconds = 3
    )
    process {
        try {
            if ($null -eq $Net) { return }
            try {
                $running = @($Net.Processes | Where-Object { -not $_.Process.HasExited })
                if ($running.Count) { Stop-GlassNetProcess -Process $running -TimeoutSeconds $GraceSeconds }
            }
            catch { Write-Warning "Remove-GlassTestNet $($Net.Id): stopping processes: $_" }

            $ip = Get-GlassTool ip
            $existing = @()
            try { $existing = Get-GlassNamespaceList } catch { Write-Warning "Remove-GlassTestNet $($Net.Id): $_" }
            foreach ($ns in $Net.Namespaces) {
                if ($existing -notcontains $ns) { continue }
                try {
                    # Anything still inside (children of recorded processes, ...) would keep the
                    # namespace and its veths alive after the name is gone.
                    $pids = (Invoke-GlassNative $ip 'netns', 'pids', $ns).Stdout -split '\s+' | Where-Object { $_ -match '^\d+$' }
                    foreach ($processId in $pids) {
                        Write-Verbose "killing leftover pid $processId in $ns"
                        $null = Invoke-GlassNative (Get-GlassTool kill) '-s', 'KILL', $processId
                    }
                    if ($pids) {
                        $nsName = $ns
                        Wait-GlassCondition -TimeoutSeconds 5 -Because "processes in $nsName to die" -ScriptBlock {
                            -not ((Invoke-GlassNative $ip 'netns', 'pids', $nsName).Stdout.Trim())
                        } | Out-Null
                    }
                }
                catch { Write-Warning "Remove-GlassTestNet $($Net.Id): processes in $ns`: $_" }
                try {
                    $r = Invoke-GlassNative $ip 'netns', 'delete', $ns
                    if ($r.ExitCode -ne 0 -and (Get-GlassNamespaceList) -contains $ns) {
                        Write-Warning "Remove-GlassTestNet $($Net.Id): ip netns delete $ns failed: $($r.Stderr.Trim())"
                    }
                }
                catch { Write-Warning "Remove-GlassTestNet $($Net.Id): deleting $ns`: $_" }
            }

            if (-not $KeepTempDirectory -and $Net.TempDirectory -and (Test-Path -LiteralPath $Net.TempDirectory)) {
                try { Remove-Item -LiteralPath $Net.TempDirectory -Recurse -Force }
                catch { Write-Warning "Remove-GlassTestNet $($Net.Id): removing $($Net.TempDirectory): $_" }
            }
            $Net.Created = $false
        }
        catch {
            Write-Warning "Remove-GlassTestNet: $_"
        }
    }
}

function Get-GlassPwshCommand {
    <#
    .SYNOPSIS
        How to start a child pwsh like the current one, as its own process (no `dotnet tool run`
        wrapper): FilePath is [Environment]::ProcessPath; when that is the dotnet host,
        ArgumentList holds the path of pwsh.dll.
    .OUTPUTS
        [pscustomobject] FilePath, ArgumentList (string[]).
    #>
    [CmdletBinding()]
    param()
    $exe = [Environment]::ProcessPath
    $leading = @()
    if ([System.IO.Path]::GetFileNameWithoutExtension($exe) -eq 'dotnet') {
        $leading = @([System.Reflection.Assembly]::GetEntryAssembly().Location)
    }
    [pscustomobject]@{
        FilePath     = $exe
        ArgumentList = [string[]]$leading
    }
}

Export-ModuleMember -Function New-GlassTestNet, Remove-GlassTestNet, Start-GlassNetProcess, Wait-GlassNetProcess,
    Stop-GlassNetProcess, Invoke-GlassNetCommand, Wait-GlassCondition, Start-GlassCapture, Stop-GlassCapture,
    Get-GlassPwshCommand, Test-GlassNetPrerequisite, Get-GlassTool, Invoke-GlassNative
