# examples/ssh-walkthrough.md as written: its commands, read from the file with the placeholders
# filled in, run behind real NATs. A real sshd behind NAT B is exposed with New-GlassBinding
# -LocalPort 22 and reached from behind NAT A through ssh's ProxyCommand (Connect-GlassChannel
# -Stdio, with an installed pwsh and module, through ~/.ssh/config, and with the checkout's dotnet
# local tool) and through Connect-GlassChannel -LocalPort 2222. Beside it, offline: the systemd
# units' commands against the module, and the Grafana dashboard's metric names against
# src/Glass/Metrics/RouterMetrics.cs (and, online, against the router's own scrape).

BeforeDiscovery {
    Import-Module (Join-Path $PSScriptRoot 'GlassTestNet.psm1') -Force
    $script:SkipReason = Test-GlassNetPrerequisite
}

BeforeAll {
    $script:Repo = (Resolve-Path (Join-Path $PSScriptRoot '../..')).Path

    function Get-DashboardQuery {
        # Every PromQL expression of examples/grafana-dashboard.json: panel targets (rows included) and variable queries.
        $dashboard = Get-Content -LiteralPath (Join-Path $Repo 'examples/grafana-dashboard.json') -Raw | ConvertFrom-Json -Depth 64
        $panels = @($dashboard.panels) + @($dashboard.panels | Where-Object { $_.PSObject.Properties['panels'] } | ForEach-Object { $_.panels })
        @($panels | Where-Object { $_.PSObject.Properties['targets'] } | ForEach-Object { $_.targets.expr }) +
            @($dashboard.templating.list | Where-Object { $_.type -eq 'query' } | ForEach-Object { $_.query.query })
    }

    function Get-DashboardMetricName([string] $Query) {
        # glass_ series names; a regex such as {__name__=~"glass_.+"} names none.
        @([regex]::Matches($Query, '\bglass_[a-z0-9_]*[a-z0-9]\b') | ForEach-Object Value | Sort-Object -Unique)
    }
}

Describe "The SSH walk-through behind two NATs$(if ($SkipReason) { " (skipped: $SkipReason)" })" -Skip:([bool]$SkipReason) {
    BeforeAll {
        Import-Module (Join-Path $PSScriptRoot 'GlassTestNet.psm1') -Force
        Import-Module (Join-Path $PSScriptRoot 'GlassE2E.psm1') -Force

        $script:Sshd = Get-GlassTool sshd openssh-server
        $null = Get-GlassTool ssh openssh-client
        $null = Get-GlassTool scp openssh-client
        $sshKeygen = Get-GlassTool ssh-keygen openssh-client
        $script:Ip = Get-GlassTool ip iproute2
        $unshare = Get-GlassTool unshare util-linux

        # The commands come from the walk-through itself, placeholders filled in.
        $script:DocLines = Get-Content -LiteralPath (Join-Path $Repo 'examples/ssh-walkthrough.md')
        function Get-DocLine([string] $Pattern) {
            # The first line of the walk-through matching a regex (the first group, if it has one).
            foreach ($line in $DocLines) {
                $m = [regex]::Match($line, $Pattern)
                if ($m.Success) { return $(if ($m.Groups.Count -gt 1) { $m.Groups[1].Value } else { $line.Trim() }) }
            }
            throw "examples/ssh-walkthrough.md has no line matching '$Pattern'; this test runs the walk-through's commands."
        }

        $script:Net = New-GlassTestNet
        $script:Work = Join-Path $Net.TempDirectory 'walkthrough'
        $null = New-Item -ItemType Directory -Path $Work
        $script:RouterAddress = "$($Net.RouterAddress):7000"

        # The router: Start-GlassRouter -ConfigPath ./examples/router.yaml -Wait, that file with its
        # control socket and channel registry moved into this test's directory and its metrics section switched on.
        $module = Get-GlassE2EModule
        $socket = Join-Path $Work 'translator.sock'
        $routerYaml = Join-Path $Work 'router.yaml'
        (Get-Content (Join-Path $Repo 'examples/router.yaml') -Raw) -replace '(?m)^controlSocket: .*$', "controlSocket: $socket" -replace '(?m)^  registry: .*$', "  registry: $(Join-Path $Work 'controller.db')" |
            Set-Content -LiteralPath $routerYaml
        Add-Content -LiteralPath $routerYaml -Value @('metrics:', '  port: 9464')
        $routerLine = (Get-DocLine '^Start-GlassRouter -ConfigPath \./examples/router\.yaml ').Replace('./examples/router.yaml', "'$routerYaml'")
        $pwsh = Get-GlassPwshCommand
        $script:RouterProcess = Start-GlassNetProcess -Net $Net -Namespace router -FilePath $pwsh.FilePath -ArgumentList (@($pwsh.ArgumentList) + @(
                '-NoProfile', '-NonInteractive', '-Command', "Import-Module '$module'; $routerLine"))
        $ss = Get-GlassTool ss iproute2
        Wait-GlassCondition -TimeoutSeconds 60 -Because 'Start-GlassRouter -Wait to listen on port 7000' {
            if ($RouterProcess.HasExited) { throw "Start-GlassRouter exited ($($RouterProcess.ExitCode)): $($RouterProcess.ReadStderr()) $($RouterProcess.ReadStdout())" }
            (Test-Path -LiteralPath $socket) -and
                (Invoke-GlassNetCommand -Net $Net -Namespace router -FilePath $ss -ArgumentList @('-Htln', 'sport = :7000')).Trim()
        } | Out-Null

        # A pwsh on PATH, as an installed PowerShell is (a package, or a dotnet global tool), and on
        # each host the module where pwsh finds it by itself (the walk-through's
        # ~/.local/share/powershell/Modules, under this host's own XDG_DATA_HOME).
        $bin = Join-Path $Work 'bin'
        $null = New-Item -ItemType Directory -Path $bin
        $quoted = @($pwsh.FilePath) + @($pwsh.ArgumentList) | ForEach-Object { "'" + ($_ -replace "'", "'\''") + "'" }
        Set-Content -LiteralPath (Join-Path $bin 'pwsh') -Value "#!/bin/sh`nexec $($quoted -join ' ') `"`$@`""
        & chmod 755 (Join-Path $bin 'pwsh')
        function New-HostHome([string] $Name, [switch] $NoModule) {
            $root = Join-Path $Work $Name
            $data = Join-Path $root 'data'
            $null = New-Item -ItemType Directory -Path (Join-Path $root 'config'), $data
            if (-not $NoModule) {
                $modules = Join-Path $data 'powershell/Modules'
                $null = New-Item -ItemType Directory -Path $modules
                Copy-Item -Recurse (Split-Path $module) $modules
            }
            @{ PATH = "$bin`:$env:PATH"; XDG_CONFIG_HOME = (Join-Path $root 'config'); XDG_DATA_HOME = $data }
        }
        $script:HomeB = New-HostHome b
        $script:HomeA = New-HostHome a
        $script:HomeANoSecret = New-HostHome a-nosecret

        function Invoke-InHost {
            # FILE ARGS... in a host's namespace with that host's environment (no ssh agent), stdin
            # and stdout optionally from and to files (bytes untouched); returns ExitCode, Stdout, Stderr.
            param([string] $Namespace, [hashtable] $Environment, [string] $FilePath, [string[]] $ArgumentList,
                [string] $StdinPath = '/dev/null', [string] $StdoutPath, [string] $WorkingDirectory, [int] $TimeoutSeconds = 90)
            $envArgs = @('-u', 'SSH_AUTH_SOCK') + @($Environment.Keys | ForEach-Object { "$_=$($Environment[$_])" })
            $redirect = if ($StdoutPath) { 'exec "$@" <"$IN" >"$OUT"' } else { 'exec "$@" <"$IN"' }
            $all = @('netns', 'exec', $Net."$($Namespace)Ns", 'env') + $envArgs + @("IN=$StdinPath", "OUT=$StdoutPath", 'sh', '-c', $redirect, 'sh', $FilePath) + $ArgumentList
            Invoke-GlassNative $Ip $all $TimeoutSeconds $WorkingDirectory
        }
        function Invoke-HostShell {
            # One shell command line in host A (the walk-through's ssh lines), as Invoke-InHost.
            param([hashtable] $Environment, [string] $Line, [string] $StdinPath = '/dev/null', [string] $StdoutPath, [string] $WorkingDirectory)
            Invoke-InHost hostA $Environment sh @('-c', $Line) -StdinPath $StdinPath -StdoutPath $StdoutPath -WorkingDirectory $WorkingDirectory
        }
        function Invoke-HostPwsh([string] $Namespace, [hashtable] $Environment, [string] $Command) {
            $r = Invoke-InHost $Namespace $Environment pwsh @('-NoProfile', '-NonInteractive', '-Command', $Command)
            if ($r.ExitCode -ne 0) { throw "pwsh -Command '$Command' in $Namespace failed ($($r.ExitCode)): $($r.Stderr)" }
            $r.Stdout
        }

        # Keys made for this run: sshd's host key and A's key, authorized for root on B.
        $script:Key = Join-Path $Work 'id_ed25519'
        $hostKey = Join-Path $Work 'ssh_host_ed25519_key'
        foreach ($k in $Key, $hostKey) {
            $r = Invoke-GlassNative $sshKeygen @('-q', '-t', 'ed25519', '-N', '', '-C', 'glass-walkthrough', '-f', $k) 90
            if ($r.ExitCode -ne 0) { throw "ssh-keygen failed: $($r.Stderr)" }
        }
        Copy-Item "$Key.pub" (Join-Path $Work 'authorized_keys')
        $sshdConfig = Join-Path $Work 'sshd_config'
        @"
Port 22
ListenAddress 0.0.0.0
HostKey $hostKey
AuthorizedKeysFile $(Join-Path $Work 'authorized_keys')
PidFile none
UsePAM no
StrictModes no
PermitRootLogin prohibit-password
PasswordAuthentication no
KbdInteractiveAuthentication no
PrintMotd no
PrintLastLog no
Subsystem sftp internal-sftp
LogLevel VERBOSE
"@ | Set-Content -LiteralPath $sshdConfig
        # sshd in B's namespace on port 22, logging to stderr (-e). It wants /run/sshd and records
        # logins under /run and /var/log: a private mount namespace with its own empty /run and
        # /var/log keeps all that off this machine.
        $script:SshdProcess = Start-GlassNetProcess -Net $Net -Namespace hostB -FilePath $unshare -ArgumentList @(
            '--mount', '--propagation', 'private', 'sh', '-c',
            'mount -t tmpfs -o mode=755 glass-run /run && mount -t tmpfs -o mode=755 glass-log /var/log && mkdir -m 755 /run/sshd && exec "$0" -D -e -f "$1"',
            $Sshd, $sshdConfig)
        Wait-GlassCondition -TimeoutSeconds 30 -Because 'sshd behind NAT B to listen on port 22' {
            if ($SshdProcess.HasExited) { throw "sshd exited ($($SshdProcess.ExitCode)): $($SshdProcess.ReadStderr())" }
            $SshdProcess.ReadStderr() -match 'Server listening on 0\.0\.0\.0 port 22'
        } | Out-Null

        # Host B, in a pwsh kept open: the walk-through's lines, then (told by a file) its way to stop.
        $configB = (Get-DocLine '^Set-GlassClientConfig -Router router\.example:7000$').Replace('router.example:7000', $RouterAddress)
        $script:SecretLine = Get-DocLine '^\$secret = '
        $script:BindLine = Get-DocLine '^\$binding = New-GlassBinding -LocalPort 22 '
        $script:RebindLine = Get-DocLine '^New-GlassBinding -LocalPort 22 -ChannelId '
        $removeLine = Get-DocLine '`(Get-GlassBinding \| Remove-GlassBinding)`'
        function Start-HostB([string] $Name, [string] $SecretLine, [string] $BindLine) {
            $idFile = Join-Path $Work "$Name.id"
            $secretFile = Join-Path $Work "$Name.secret"
            $stopFile = Join-Path $Work "$Name.stop"
            $file = Join-Path $Work "$Name.ps1"
            @"
`$ErrorActionPreference = 'Stop'
$configB
$SecretLine
$BindLine
Set-Content -LiteralPath '$secretFile' -Value `$secret
Set-Content -LiteralPath '$idFile.tmp' -Value `$binding.ChannelId -NoNewline
Move-Item -Force '$idFile.tmp' '$idFile'
while (-not (Test-Path -LiteralPath '$stopFile')) {
    if (`$binding | Wait-Job -Timeout 1) { `$binding | Receive-Job; throw "The binding ended: `$(`$binding.State)." }
}
$removeLine
'removed'
"@ | Set-Content -LiteralPath $file
            $p = Start-GlassNetProcess -Net $Net -Namespace hostB -FilePath pwsh -Environment $HomeB -ArgumentList @('-NoProfile', '-NonInteractive', '-File', $file)
            Wait-GlassCondition -TimeoutSeconds 60 -Because 'New-GlassBinding -LocalPort 22 behind NAT B to get a channel id' {
                if ($p.HasExited) { throw "host B's pwsh exited ($($p.ExitCode)): $($p.ReadStderr()) $($p.ReadStdout())" }
                Test-Path -LiteralPath $idFile
            } | Out-Null
            [pscustomobject]@{
                Process   = $p
                ChannelId = (Get-Content -LiteralPath $idFile -Raw).Trim()
                Secret    = (Get-Content -LiteralPath $secretFile -Raw).Trim()
                StopFile  = $stopFile
            }
        }
        $script:BindingB = Start-HostB -Name binding-1 -SecretLine $SecretLine -BindLine $BindLine
        $BindingB.ChannelId | Should -Match '^[0-9a-f]{32}$'

        # Host A, once: the router and B's connect secret (and a home without the secret).
        $configA = (Get-DocLine '^Set-GlassClientConfig -Router router\.example:7000 -Secret ').Replace('router.example:7000', $RouterAddress).Replace('<the connect secret>', $BindingB.Secret)
        $null = Invoke-HostPwsh hostA $HomeA $configA
        $null = Invoke-HostPwsh hostA $HomeANoSecret "Set-GlassClientConfig -Router $RouterAddress"

        # What a test adds to the walk-through's ssh and scp lines: this run's key, no agent, no
        # user config, no known_hosts; user@ becomes root@.
        $script:TestOptions = "-F none -i '$Key' -o IdentitiesOnly=yes -o BatchMode=yes -o StrictHostKeyChecking=no -o UserKnownHostsFile=/dev/null -o LogLevel=ERROR"
        function ConvertTo-TestLine([string] $Line) {
            ($Line.Replace('<channel id>', $BindingB.ChannelId) -replace '\buser@', 'root@') -replace '^(ssh|scp) ', "`$1 $TestOptions "
        }
        $script:SshLine = ConvertTo-TestLine (Get-DocLine '^ssh -o ProxyCommand="pwsh ')
        $script:Payload = Join-Path $Work 'payload.bin'
        $bytes = [byte[]]::new(4MB); [System.Random]::new(8).NextBytes($bytes)
        [System.IO.File]::WriteAllBytes($Payload, $bytes)
        $script:PayloadHash = (Get-FileHash -LiteralPath $Payload -Algorithm SHA256).Hash
    }

    AfterAll {
        Remove-GlassTestNet -Net $script:Net
    }

    It 'ssh -o ProxyCommand="pwsh ... Connect-GlassChannel -Id ID -Stdio" runs a command on B; B sees the router, sshd the binding on 127.0.0.1, never A' {
        $SshLine | Should -BeLike 'ssh * root@glass'
        $captureA = Start-GlassCapture -Net $Net -Namespace hostA
        $captureB = Start-GlassCapture -Net $Net -Namespace hostB
        $r = Invoke-HostShell $HomeA "$SshLine 'echo ok; echo ""client=`$SSH_CLIENT""; echo ""addresses=`$(hostname -I)""'"
        # tcpdump hands packets over in blocks, up to a second late, and a stopped tcpdump drops the
        # block it has not handed over yet: wait until each capture holds the router's packets.
        $tcpdump = Get-GlassTool tcpdump tcpdump
        foreach ($capture in $captureA, $captureB) {
            Wait-GlassCondition -TimeoutSeconds 30 -IntervalMilliseconds 200 -Because "the capture in $($capture.Namespace) to show the router" {
                (Invoke-GlassNative $tcpdump @('-n', '-r', $capture.PcapPath) 90).Stdout -match "\b$([regex]::Escape($Net.RouterAddress))\.\d+[ :]"
            } | Out-Null
        }
        $seenA = Stop-GlassCapture $captureA
        $seenB = Stop-GlassCapture $captureB
        $r.ExitCode | Should -Be 0 -Because $r.Stderr
        $r.Stdout | Should -Match '(?m)^ok$'
        # The shell ran on B, behind its NAT.
        $r.Stdout | Should -Match "(?m)^addresses=$([regex]::Escape($Net.HostBAddress))\s*$"
        # sshd's client is the binding, which dials it on B itself.
        $r.Stdout | Should -Match '(?m)^client=127\.0\.0\.1 \d+ 22$'
        $sshdLog = $SshdProcess.ReadStderr()
        $sshdLog | Should -Match 'Accepted publickey for root from 127\.0\.0\.1 port \d+'
        foreach ($a in $Net.HostAAddress, $Net.NatAPublicAddress) {
            $sshdLog | Should -Not -Match ([regex]::Escape($a))
            $seenB.Addresses | Should -Not -Contain $a
        }
        # On the wire B and A each see the router, never the other.
        $seenB.Addresses | Should -Contain $Net.RouterAddress -Because "B's capture ($($seenB.PacketCount) packets; tcpdump: $($captureB.Process.ReadStderr().Trim()))"
        $seenA.Addresses | Should -Contain $Net.RouterAddress -Because "A's capture ($($seenA.PacketCount) packets; tcpdump: $($captureA.Process.ReadStderr().Trim()))"
        foreach ($b in $Net.HostBAddress, $Net.NatBPublicAddress) { $seenA.Addresses | Should -Not -Contain $b }
    }

    It 'carries a file up with the scp line and back with ssh cat, both intact' {
        $received = Join-Path $Work 'received-scp.bin'
        $back = Join-Path $Work 'back-ssh.bin'
        $scpLine = ConvertTo-TestLine (Get-DocLine '^scp -o ProxyCommand="pwsh ')
        $scpLine | Should -BeLike 'scp * report.pdf root@glass:'
        $r = Invoke-HostShell $HomeA ($scpLine.Replace(' report.pdf ', " '$Payload' ") + "'$received'")
        $r.ExitCode | Should -Be 0 -Because $r.Stderr
        (Get-FileHash -LiteralPath $received -Algorithm SHA256).Hash | Should -Be $PayloadHash
        $r = Invoke-HostShell $HomeA "$SshLine 'cat $received'" -StdoutPath $back
        $r.ExitCode | Should -Be 0 -Because $r.Stderr
        (Get-FileHash -LiteralPath $back -Algorithm SHA256).Hash | Should -Be $PayloadHash
    }

    It 'the ~/.ssh/config entry serves ssh and scp by its name' {
        # The walk-through's Host block, then what the test adds for every host.
        $block = [System.Collections.Generic.List[string]]::new()
        $inBlock = $false
        foreach ($line in $DocLines) {
            if ($line -match '^Host glass-b$') { $inBlock = $true }
            elseif ($inBlock -and $line -match '^```') { break }
            if ($inBlock) { $block.Add(($line.Replace('<channel id>', $BindingB.ChannelId) -replace '^(\s+User) user$', '$1 root')) }
        }
        $block.Count | Should -BeGreaterThan 1 -Because 'the walk-through shows a Host glass-b block'
        $config = Join-Path $Work 'ssh_config'
        $block + @('', 'Host *', "    IdentityFile $Key", '    IdentitiesOnly yes', '    BatchMode yes', '    StrictHostKeyChecking no',
            '    UserKnownHostsFile /dev/null', '    LogLevel ERROR') | Set-Content -LiteralPath $config
        $received = Join-Path $Work 'received-config.bin'
        $r = Invoke-HostShell $HomeA "scp -F '$config' '$Payload' glass-b:'$received'"
        $r.ExitCode | Should -Be 0 -Because $r.Stderr
        (Get-FileHash -LiteralPath $received -Algorithm SHA256).Hash | Should -Be $PayloadHash
        $r = Invoke-HostShell $HomeA "ssh -F '$config' glass-b 'whoami; hostname -I'"
        $r.ExitCode | Should -Be 0 -Because $r.Stderr
        $r.Stdout | Should -Match "(?m)^root\s+$([regex]::Escape($Net.HostBAddress))"
    }

    It 'runs from the checkout with the dotnet local tool: ProxyCommand="dotnet pwsh ... Import-Module ./out/Glass; ..."' {
        # No pwsh on PATH and no module installed: dotnet finds the tool from the working
        # directory, and the command imports the module by its path.
        $line = ConvertTo-TestLine (Get-DocLine '^ssh -o ProxyCommand="dotnet pwsh ')
        $line | Should -BeLike "*'Import-Module ./out/Glass; Connect-GlassChannel -Id $($BindingB.ChannelId) -Stdio'*"
        $moduleDir = Split-Path (Get-GlassE2EModule)
        if ((Join-Path $Repo 'out/Glass') -ne $moduleDir) { $line = $line.Replace('./out/Glass', $moduleDir) }
        $checkoutHome = New-HostHome a-checkout -NoModule
        $checkoutHome.PATH = $env:PATH
        $checkoutHome.XDG_CONFIG_HOME = $HomeA.XDG_CONFIG_HOME
        $r = Invoke-HostShell $checkoutHome "$line 'echo ok'" -WorkingDirectory $Repo
        $r.ExitCode | Should -Be 0 -Because $r.Stderr
        $r.Stdout.Trim() | Should -Be 'ok'
    }

    It 'forwards a local port: Connect-GlassChannel -Id ID -LocalPort 2222, ssh -p 2222 user@127.0.0.1; Disconnect-GlassChannel stops it' {
        $connect = (Get-DocLine '^Connect-GlassChannel -Id <channel id> -LocalPort 2222$').Replace('<channel id>', $BindingB.ChannelId)
        $disconnect = Get-DocLine '`(Get-GlassChannel \| Disconnect-GlassChannel)`'
        $ready = Join-Path $Work 'forward.ready'
        $stop = Join-Path $Work 'forward.stop'
        $forward = Start-GlassNetProcess -Net $Net -Namespace hostA -FilePath pwsh -Environment $HomeA -ArgumentList @(
            '-NoProfile', '-NonInteractive', '-Command', @"
`$ErrorActionPreference = 'Stop'
`$channel = $connect
Set-Content -LiteralPath '$ready' -Value `$channel.LocalPort
while (-not (Test-Path -LiteralPath '$stop')) { if (`$channel | Wait-Job -Timeout 1) { `$channel | Receive-Job; throw 'The forwarding ended.' } }
$disconnect
'disconnected'
"@)
        Wait-GlassCondition -TimeoutSeconds 60 -Because 'Connect-GlassChannel -LocalPort 2222 to listen behind NAT A' {
            if ($forward.HasExited) { throw "host A's pwsh exited ($($forward.ExitCode)): $($forward.ReadStderr())" }
            Test-Path -LiteralPath $ready
        } | Out-Null
        $line = ConvertTo-TestLine (Get-DocLine '^ssh -p 2222 user@127\.0\.0\.1$')
        $r = Invoke-HostShell $HomeA "$line 'echo ""client=`$SSH_CLIENT""; echo ""addresses=`$(hostname -I)""'"
        $r.ExitCode | Should -Be 0 -Because $r.Stderr
        $r.Stdout | Should -Match "(?m)^addresses=$([regex]::Escape($Net.HostBAddress))\s*$"
        $r.Stdout | Should -Match '(?m)^client=127\.0\.0\.1 \d+ 22$'

        $received = Join-Path $Work 'received-2222.bin'
        $r = Invoke-HostShell $HomeA "$line 'cat > $received && sha256sum $received'" -StdinPath $Payload
        $r.ExitCode | Should -Be 0 -Because $r.Stderr
        $r.Stdout | Should -Match "^$($PayloadHash.ToLowerInvariant()) "
        (Get-FileHash -LiteralPath $received -Algorithm SHA256).Hash | Should -Be $PayloadHash

        Set-Content -LiteralPath $stop -Value ''
        Wait-GlassNetProcess -Process $forward -TimeoutSeconds 30 | Should -Be 0 -Because $forward.ReadStderr()
        $forward.ReadStdout() | Should -Match 'disconnected'
        $r = Invoke-HostShell $HomeA "$line true"
        $r.ExitCode | Should -Be 255
        $r.Stderr | Should -Match 'Connection refused'
    }

    It 'refuses a connector without the connect secret, and ssh shows why' {
        $r = Invoke-HostShell $HomeANoSecret "$SshLine true"
        $r.ExitCode | Should -Be 255
        $r.Stderr | Should -Match '\(unauthorized\)'
    }

    It 'Remove-GlassBinding ends the channel and its sessions; New-GlassBinding -ChannelId binds the same id again' {
        # A session that stays open until the binding goes.
        $open = Start-GlassNetProcess -Net $Net -Namespace hostA -FilePath sh -Environment $HomeA -ArgumentList @(
            '-c', "$SshLine 'echo started; exec sleep 300'")
        Wait-GlassCondition -TimeoutSeconds 60 -Because 'a long ssh session to start' {
            if ($open.HasExited) { throw "ssh exited ($($open.ExitCode)): $($open.ReadStderr())" }
            $open.ReadStdout() -match 'started'
        } | Out-Null

        Set-Content -LiteralPath $BindingB.StopFile -Value ''
        Wait-GlassNetProcess -Process $BindingB.Process -TimeoutSeconds 30 | Should -Be 0 -Because $BindingB.Process.ReadStderr()
        $BindingB.Process.ReadStdout() | Should -Match 'removed'
        # The open session ends with it, and the router has forgotten the channel.
        Wait-GlassNetProcess -Process $open -TimeoutSeconds 30 | Should -Be 255
        $r = Invoke-HostShell $HomeA "$SshLine true"
        $r.ExitCode | Should -Be 255
        $r.Stderr | Should -Match '\(unknown-channel\)'

        $again = Start-HostB -Name binding-2 -SecretLine "`$secret = '$($BindingB.Secret)'" -BindLine (
            '$binding = ' + ($RebindLine -replace '\b[0-9a-f]{32}\b', $BindingB.ChannelId))
        $again.ChannelId | Should -Be $BindingB.ChannelId
        $r = Invoke-HostShell $HomeA "$SshLine 'echo again'"
        $r.ExitCode | Should -Be 0 -Because $r.Stderr
        $r.Stdout.Trim() | Should -Be 'again'
    }

    It 'serves every series the Grafana dashboard queries, with the labels it groups by' {
        # Scraped from inside the router's namespace, where it listens (loopback). The refusals
        # above (unauthorized, unknown-channel) made glass_controller_refused_total{error} appear.
        $scrape = 'exec 3<>/dev/tcp/127.0.0.1/9464 && printf ''GET /metrics HTTP/1.0\r\nHost: 127.0.0.1:9464\r\n\r\n'' >&3 && cat <&3'
        $text = Invoke-GlassNetCommand -Net $Net -Namespace router -FilePath bash -TimeoutSeconds 30 -ArgumentList @('-c', $scrape)
        $text | Should -Match 'HTTP/1\.\d 200'
        foreach ($query in Get-DashboardQuery) {
            foreach ($name in Get-DashboardMetricName $query) {
                $text | Should -Match "(?m)^$name(\{[^}]*\})? \S+" -Because "the dashboard queries $name"
            }
            foreach ($label in [regex]::Matches($query, 'by \(([a-z_]+)\) \(\S*?(glass_[a-z0-9_]+)')) {
                $text | Should -Match "(?m)^$($label.Groups[2].Value)\{$($label.Groups[1].Value)=`"" -Because "the dashboard groups $($label.Groups[2].Value) by $($label.Groups[1].Value)"
            }
        }
    }
}

Describe 'The Grafana dashboard and the systemd units, offline' {
    BeforeAll {
        $script:Dashboard = Get-Content -LiteralPath (Join-Path $Repo 'examples/grafana-dashboard.json') -Raw | ConvertFrom-Json -Depth 64
        # RouterMetrics.cs: f.CreateGauge("name", "help", "label", ...) -> name and label names.
        $source = Get-Content -LiteralPath (Join-Path $Repo 'src/Glass/Metrics/RouterMetrics.cs') -Raw
        $script:Defined = @{}
        foreach ($m in [regex]::Matches($source, 'Create(?:Gauge|Counter|Histogram|Summary)\(\s*"(glass_[a-z0-9_]+)"\s*,\s*"(?:[^"\\]|\\.)*"((?:\s*,\s*"[a-z_]+")*)\s*\)')) {
            $Defined[$m.Groups[1].Value] = @([regex]::Matches($m.Groups[2].Value, '"([a-z_]+)"') | ForEach-Object { $_.Groups[1].Value })
        }

        function Get-UnitCommand([string] $Unit) {
            # The PowerShell of a unit's ExecStart=pwsh ... -Command "...", as systemd passes it
            # (continuation lines joined, $$ -> $, the instance %i a port).
            $text = (Get-Content -LiteralPath (Join-Path $Repo "examples/$Unit") -Raw) -replace '\\\r?\n', ' '
            $line = ($text -split '\r?\n') | Where-Object { $_ -like 'ExecStart=*' }
            if ($line -notmatch '^ExecStart=/usr/bin/pwsh -NoProfile -NonInteractive -Command "(.*)"$') { throw "$Unit`: no ExecStart=/usr/bin/pwsh ... -Command `"...`" in '$line'" }
            $Matches[1].Replace('$$', '$').Replace('%i', '2222').Replace('%%', '%')
        }
    }

    It 'reads RouterMetrics.cs (the extraction found its metrics)' {
        $Defined.Count | Should -BeGreaterOrEqual 10
        $Defined['glass_translator_drops_total'] | Should -Be 'reason'
    }

    It 'is a Grafana dashboard: schema 39, a Prometheus data source variable used by every panel, unique ids' {
        $Dashboard.schemaVersion | Should -Be 39
        $ds = $Dashboard.templating.list | Where-Object name -EQ 'datasource'
        $ds.type | Should -Be 'datasource'
        $ds.query | Should -Be 'prometheus'
        $panels = @($Dashboard.panels | Where-Object type -NE 'row')
        $panels.Count | Should -BeGreaterThan 10
        foreach ($p in $panels) {
            $p.datasource.uid | Should -Be '${datasource}' -Because "panel '$($p.title)' should follow the variable"
            foreach ($t in $p.targets) { $t.datasource.uid | Should -Be '${datasource}' }
        }
        @($Dashboard.panels.id | Sort-Object -Unique).Count | Should -Be @($Dashboard.panels).Count
    }

    It 'queries only metrics RouterMetrics.cs defines, grouped only by their labels' {
        $queries = Get-DashboardQuery
        $queries.Count | Should -BeGreaterThan 10
        foreach ($query in $queries) {
            # Balanced, so Grafana does not show a parse error instead of a graph.
            foreach ($pair in '()', '{}', '[]') {
                ($query.Split($pair[0]).Count - 1) | Should -Be ($query.Split($pair[1]).Count - 1) -Because "$pair should balance in $query"
            }
            $names = Get-DashboardMetricName $query
            foreach ($name in $names) { $Defined.Keys | Should -Contain $name -Because "the dashboard queries $name ($query)" }
            $allowed = @('instance', 'job') + @($names | ForEach-Object { $Defined[$_] })
            foreach ($m in [regex]::Matches($query, '\bby \(([^)]*)\)')) {
                foreach ($label in $m.Groups[1].Value -split '\s*,\s*') { $allowed | Should -Contain $label -Because $query }
            }
            foreach ($m in [regex]::Matches($query, '([a-z_]+)\s*=~?"')) {
                if ($m.Groups[1].Value -ne '__name__') { $allowed | Should -Contain $m.Groups[1].Value -Because $query }
            }
        }
    }

    It '<Unit>: ExecStart is PowerShell that passes <Cmdlet> only parameters it has' -ForEach @(
        @{ Unit = 'glass-binding@.service'; Cmdlet = 'New-GlassBinding' }
        @{ Unit = 'glass-forward@.service'; Cmdlet = 'Connect-GlassChannel' }
        @{ Unit = 'glass-router.service'; Cmdlet = 'Start-GlassRouter' }
    ) {
        Import-Module (Join-Path $PSScriptRoot 'GlassE2E.psm1') -Force
        Import-Module (Get-GlassE2EModule) -Global
        $script = Get-UnitCommand $Unit
        $tokens = $errors = $null
        $ast = [System.Management.Automation.Language.Parser]::ParseInput($script, [ref]$tokens, [ref]$errors)
        $errors | Should -BeNullOrEmpty
        $call = @($ast.FindAll({ param($a) $a -is [System.Management.Automation.Language.CommandAst] -and $a.GetCommandName() -eq $Cmdlet }, $true))
        $call.Count | Should -Be 1
        # Parameters named in the call, and the keys of a hashtable splatted into it.
        $given = @($call[0].CommandElements | Where-Object { $_ -is [System.Management.Automation.Language.CommandParameterAst] } | ForEach-Object ParameterName)
        foreach ($splat in $call[0].CommandElements | Where-Object { $_ -is [System.Management.Automation.Language.VariableExpressionAst] -and $_.Splatted }) {
            $var = $splat.VariablePath.UserPath
            $given += @($ast.FindAll({ param($a) $a -is [System.Management.Automation.Language.HashtableAst] -and $a.Parent.Parent.Left.VariablePath.UserPath -eq $var }, $true) |
                ForEach-Object { $_.KeyValuePairs.Item1.Value })
            $given += @($ast.FindAll({ param($a) $a -is [System.Management.Automation.Language.MemberExpressionAst] -and $a.Expression.VariablePath.UserPath -eq $var -and $a.Parent -is [System.Management.Automation.Language.AssignmentStatementAst] }, $true) |
                ForEach-Object { $_.Member.Value })
        }
        $given | Should -Contain 'Wait'
        $parameters = (Get-Command $Cmdlet).Parameters.Keys
        # -Wait of New-GlassBinding and Connect-GlassChannel is checked below, once the module has it.
        foreach ($p in $given | Where-Object { $_ -ne 'Wait' }) { $parameters | Should -Contain $p -Because "$Unit passes -$p" }
    }

    It '<Unit>: reads exactly the GLASS_ variables its header documents' -ForEach @(
        @{ Unit = 'glass-binding@.service' }
        @{ Unit = 'glass-forward@.service' }
    ) {
        $text = Get-Content -LiteralPath (Join-Path $Repo "examples/$Unit") -Raw
        $documented = @([regex]::Matches($text, '(?m)^#\s+(GLASS_[A-Z_]+)=') | ForEach-Object { $_.Groups[1].Value } | Sort-Object -Unique)
        # GLASS_ROUTER is read by the cmdlets themselves.
        $read = @(@('GLASS_ROUTER') + @([regex]::Matches((Get-UnitCommand $Unit), '\$env:(GLASS_[A-Z_]+)') | ForEach-Object { $_.Groups[1].Value }) | Sort-Object -Unique)
        $documented | Should -Be $read
    }

    It 'New-GlassBinding and Connect-GlassChannel have the -Wait the units use' {
        Import-Module (Join-Path $PSScriptRoot 'GlassE2E.psm1') -Force
        Import-Module (Get-GlassE2EModule) -Global
        $missing = @('New-GlassBinding', 'Connect-GlassChannel' | Where-Object { -not (Get-Command $_).Parameters.ContainsKey('Wait') })
        if ($missing) { Set-ItResult -Skipped -Because "the module has no -Wait on $($missing -join ' and ') yet" }
        $missing | Should -BeNullOrEmpty
    }
}
