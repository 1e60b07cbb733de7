# The PowerShell surface on loopback: what a user sees of the cmdlets, their jobs and their errors.

BeforeAll {
    $modulePath = if ($env:GLASS_MODULE) { $env:GLASS_MODULE } else { Join-Path $PSScriptRoot '../../out/Glass/Glass.psd1' }
    Import-Module $modulePath -Force
    Import-Module (Join-Path $PSScriptRoot 'GlassTestNet.psm1') -Force

    # The first error a block raises, terminating or not.
    function Get-ErrorId([scriptblock] $Block) {
        $ErrorActionPreference = 'Stop'
        try { & $Block; return $null } catch { return $_ }
    }
}

Describe 'The Glass module' {
    It 'exports exactly its cmdlets, each declaring what it outputs' {
        $commands = Get-Command -Module Glass | Sort-Object Name
        $commands.Name | Should -Be @('Connect-GlassChannel', 'Disconnect-GlassChannel', 'Get-GlassBinding', 'Get-GlassChannel', 'Get-GlassClientConfig', 'Get-GlassRouterStatus', 'Get-GlassSession', 'Get-GlassTranslatorStatus', 'New-GlassBinding', 'Remove-GlassBinding', 'Set-GlassClientConfig', 'Start-GlassController', 'Start-GlassRouter', 'Start-GlassTranslator', 'Stop-GlassController', 'Stop-GlassTranslator')
        foreach ($c in $commands) { $c.OutputType | Should -Not -BeNullOrEmpty -Because "$($c.Name) should declare its output" }
    }

    It 'changes nothing under -WhatIf' {
        $socket = Join-Path $TestDrive 'whatif.sock'
        $out = Start-GlassTranslator -Queue 4321 -ControlSocket $socket -WhatIf
        $out | Should -BeNullOrEmpty
        Test-Path $socket | Should -BeFalse
        Get-Job | Where-Object PSJobTypeName -eq 'GlassTranslator' | Should -BeNullOrEmpty
    }

    It 'starts on a stock Linux without a warning, and warns, under -WhatIf too, of a range the kernel also hands out' -Skip:((Get-Content /proc/sys/net/ipv4/ip_local_port_range) -notmatch '^32768\s+60999$') {
        $socket = Join-Path $TestDrive 'ranges.sock'
        $null = Start-GlassTranslator -Queue 4321 -ControlSocket $socket -WhatIf -WarningVariable quiet -WarningAction SilentlyContinue
        $quiet | Should -BeNullOrEmpty
        $null = Start-GlassTranslator -Queue 4321 -ControlSocket $socket -PortRange 60000-60999 -WhatIf -WarningVariable loud -WarningAction SilentlyContinue
        "$loud" | Should -BeLike '*32768-60999 overlaps the router''s 60000-60999*ip_local_port_range*'
    }

    It 'starts no router from a bad file, and nothing under -WhatIf' {
        $bad = Join-Path $TestDrive 'router-bad.yaml'
        "queue: 6`ncontroler:`n  port: 7000`n" | Set-Content $bad
        $e = Get-ErrorId { Start-GlassRouter -ConfigPath $bad -Wait }
        $e.FullyQualifiedErrorId | Should -BeLike 'InvalidGlassConfig,*'
        $e.Exception.Message | Should -BeLike "$($bad):2:1: unknown key 'controler'*"
        $good = Join-Path $TestDrive 'router-good.yaml'
        "queue: 4322`ncontrolSocket: $(Join-Path $TestDrive 'router-good.sock')`n" | Set-Content $good
        Start-GlassRouter -ConfigPath $good -WhatIf | Should -BeNullOrEmpty
        Test-Path (Join-Path $TestDrive 'router-good.sock') | Should -BeFalse
        Get-Job | Where-Object PSJobTypeName -like 'Glass*' | Should -BeNullOrEmpty
    }

    It 'names the file, line and key of a bad configuration' {
        $bad = Join-Path $TestDrive 'bad.yaml'
        "queue: 6`nportRange: 60000-60999`ncontroller:`n  prot: 7000`n" | Set-Content $bad
        $e = Get-ErrorId { Start-GlassController -ConfigPath $bad }
        $e.FullyQualifiedErrorId | Should -BeLike 'InvalidGlassConfig,*'
        $e.Exception.Message | Should -BeLike "$($bad):4:3: unknown key 'controller.prot'*"
    }

    It 'says translator-unavailable when asked for sessions or counters with no translator' {
        $socket = Join-Path $TestDrive 'none.sock'
        foreach ($query in { Get-GlassSession -ControlSocket $socket }, { Get-GlassTranslatorStatus -ControlSocket $socket }) {
            $e = Get-ErrorId $query
            $e.FullyQualifiedErrorId | Should -BeLike 'translator-unavailable,*'
            $e.Exception.Message | Should -BeLike "*$socket*"
        }
    }

    It 'says which port range is wrong' {
        $e = Get-ErrorId { Start-GlassController -PortRange '70000-1' -Port 0 }
        $e.FullyQualifiedErrorId | Should -BeLike 'InvalidPortRange,*'
        $e.Exception.Message | Should -BeLike "*'70000-1'*"
    }
}

Describe 'A controller on loopback' {
    BeforeAll {
        $script:Socket = Join-Path $TestDrive 'no-translator.sock'
        $script:Controller = Start-GlassController -Port 0 -Address 127.0.0.1 -ControlSocket $Socket -PortRange 61000-61009
        $script:Router = "127.0.0.1:$($Controller.EndPoint.Port)"
        $script:Binding = New-GlassBinding -LocalPort 9 -Router $Router
    }

    AfterAll {
        Get-Job | Where-Object PSJobTypeName -like 'Glass*' | Remove-Job -Force
    }

    It 'runs as a job that Get-Job lists' {
        $Controller.PSJobTypeName | Should -Be 'GlassController'
        (Get-Job -Id $Controller.Id).JobStateInfo.State | Should -Be 'Running'
        $Controller.EndPoint.Port | Should -BeGreaterThan 0
    }

    It 'gives a binding a channel id at once and keeps it running as a job' {
        $Binding.ChannelId | Should -Match '^[0-9a-f]{32}$'
        $Binding.PSJobTypeName | Should -Be 'GlassBinding'
        $Binding.JobStateInfo.State | Should -Be 'Running'
        $Controller.Bindings | Should -Be 1
    }

    It 'refuses an unknown channel id with unknown-channel' {
        $e = Get-ErrorId { Connect-GlassChannel -Id ('0' * 32) -LocalPort 0 -Router $Router }
        $e.FullyQualifiedErrorId | Should -BeLike 'unknown-channel,*'
        $e.CategoryInfo.Category | Should -Be 'ObjectNotFound'
    }

    It 'refuses a malformed channel id as a parameter error, before asking the router' {
        $e = Get-ErrorId { Connect-GlassChannel -Id 'not-a-channel' -Router $Router }
        $e.FullyQualifiedErrorId | Should -BeLike 'ParameterArgumentValidationError,*'
        $e.Exception.Message | Should -BeLike '*not-a-channel*32 hex characters*'
    }

    It 'reports a failed binding or query as a non-terminating error, so -ErrorAction decides' {
        $out = New-GlassBinding -LocalPort 9 -Router '127.0.0.1:1' -ErrorAction SilentlyContinue -ErrorVariable failed
        $out | Should -BeNullOrEmpty
        $failed[0].FullyQualifiedErrorId | Should -BeLike 'router-unreachable,*'
        $sessions = Get-GlassSession -ControlSocket (Join-Path $TestDrive 'none.sock') -ErrorAction SilentlyContinue -ErrorVariable missing
        $sessions | Should -BeNullOrEmpty
        $missing[0].FullyQualifiedErrorId | Should -BeLike 'translator-unavailable,*'
    }

    It 'takes a host name for -LocalAddress' {
        $forward = Connect-GlassChannel -Id $Binding.ChannelId -LocalPort 0 -LocalAddress localhost -Router $Router
        $forward.LocalEndPoint.Address | Should -Be ([System.Net.IPAddress]::Loopback)
        $forward | Remove-Job -Force
    }

    It 'stops waiting for a silent router on Ctrl+C, and leaves nothing running' {
        # A router that accepts and never answers: the binding would wait 10 s for its answer.
        $silent = [System.Net.Sockets.TcpListener]::new([System.Net.IPAddress]::Loopback, 0)
        $silent.Start()
        try {
            $ps = [powershell]::Create([System.Management.Automation.RunspaceMode]::NewRunspace)
            $null = $ps.AddCommand('Import-Module').AddArgument((Get-Module Glass).Path).AddStatement()
            $null = $ps.AddCommand('New-GlassBinding').AddParameter('LocalPort', 9).AddParameter('Router', "127.0.0.1:$($silent.LocalEndpoint.Port)")
            $run = $ps.BeginInvoke()
            $peer = $silent.AcceptTcpClient() # the binding is now waiting for its answer
            $ps.Stop()                         # what Ctrl+C does
            $ps.InvocationStateInfo.State | Should -Be 'Stopped'
            # Had the wait gone on to its end, the binding would have failed with a timeout error.
            @($ps.Streams.Error | Where-Object { $_.Exception -is [Glass.GlassException] }) | Should -BeNullOrEmpty
            # And the connection it was waiting on is closed, not left behind.
            $peer.Client.ReceiveTimeout = 10000
            # The TLS ClientHello (nothing was sent in plain), then the close.
            $buffer = [byte[]]::new(4096); $total = 0
            do { $n = $peer.GetStream().Read($buffer, 0, $buffer.Length); $total += $n } while ($n -gt 0 -and $total -lt 65536)
            $n | Should -Be 0
            $peer.Dispose()
            $ps.Dispose()
        }
        finally { $silent.Stop() }
    }

    It 'gives up on a silent router after -TimeoutSec, naming it, with a progress bar meanwhile' {
        $silent = [System.Net.Sockets.TcpListener]::new([System.Net.IPAddress]::Loopback, 0)
        $silent.Start()
        try {
            $ps = [powershell]::Create([System.Management.Automation.RunspaceMode]::NewRunspace)
            $null = $ps.AddCommand('Import-Module').AddArgument((Get-Module Glass).Path).AddStatement()
            $null = $ps.AddCommand('New-GlassBinding').AddParameter('LocalPort', 9).AddParameter('Router', "127.0.0.1:$($silent.LocalEndpoint.Port)").AddParameter('TimeoutSec', 2)
            $out = $ps.Invoke()
            $out | Should -BeNullOrEmpty
            $e = @($ps.Streams.Error)[0]
            $e.FullyQualifiedErrorId | Should -BeLike 'router-unreachable,*'
            $e.Exception.Message | Should -BeLike "*127.0.0.1:$($silent.LocalEndpoint.Port) did not answer within 2 s*-TimeoutSec*"
            $progress = @($ps.Streams.Progress | Where-Object Activity -eq 'New-GlassBinding')
            $progress | Should -Not -BeNullOrEmpty
            $progress[-1].RecordType | Should -Be 'Completed'
            $ps.Dispose()
        }
        finally { $silent.Stop() }
    }

    It 'completes channel ids of live bindings and the ports of running controllers' {
        $ids = (TabExpansion2 'Connect-GlassChannel -Id ' 25).CompletionMatches
        $mine = @($ids | Where-Object CompletionText -eq $Binding.ChannelId)
        $mine | Should -HaveCount 1
        $mine[0].ToolTip | Should -BeLike "$($Binding.Name): bound to 127.0.0.1:9"
        $prefix = $Binding.ChannelId.Substring(0, 6)
        $line = "Get-GlassBinding -ChannelId $prefix"
        (TabExpansion2 $line $line.Length).CompletionMatches.CompletionText | Should -Contain $Binding.ChannelId
        (TabExpansion2 'Stop-GlassController -Port ' 27).CompletionMatches.CompletionText | Should -Contain "$($Controller.EndPoint.Port)"
    }

    It 'shows the controller''s figures in Get-GlassRouterStatus, and the missing translator as an error' {
        $status = Get-GlassRouterStatus -ControlSocket $Socket -ErrorAction SilentlyContinue -ErrorVariable missing
        $missing[0].FullyQualifiedErrorId | Should -BeLike 'translator-unavailable,*'
        $status.TranslatorState | Should -Be 'Unavailable'
        $status.ControllerState | Should -Be 'Running'
        $status.Controller.Port | Should -Be $Controller.EndPoint.Port
        $status.Bindings | Should -Be $Controller.Status.Bindings
        $status.Bindings | Should -BeGreaterOrEqual 1
        ($status | Format-Table | Out-String) | Should -Match 'Unavailable\s+Running'
        # The key clients pin, as the controller's job shows it.
        $Controller.Fingerprint | Should -Match '^sha256:[0-9a-f]{64}$'
        $status.Fingerprint | Should -Be $Controller.Fingerprint
        ($status | Format-List | Out-String) | Should -Match "Fingerprint\s+: $($Controller.Fingerprint)"
    }

    It 'stops a controller by port with Stop-GlassController, not under -WhatIf, and keeps its job, Stopped' {
        $c = Start-GlassController -Port 0 -Address 127.0.0.1 -ControlSocket $Socket
        $port = $c.EndPoint.Port
        Stop-GlassController -Port $port -WhatIf
        $c.State | Should -Be 'Running'
        $stopped = Stop-GlassController -Port $port -PassThru
        $stopped.Id | Should -Be $c.Id
        $stopped.State | Should -Be 'Stopped'
        $e = Get-ErrorId { New-GlassBinding -LocalPort 9 -Router "127.0.0.1:$port" }
        $e.FullyQualifiedErrorId | Should -BeLike 'router-unreachable,*'
        (Get-Job -Id $c.Id).State | Should -Be 'Stopped'
        Remove-Job -Id $c.Id
        $e = Get-ErrorId { Stop-GlassController -Port $port }
        $e.FullyQualifiedErrorId | Should -BeLike 'GlassJobNotFound,*'
        $e.Exception.Message | Should -BeLike "*port $port*"
    }

    It 'logs what a job does as timestamped information records tagged with its kind' {
        $c = Start-GlassController -Port 0 -Address 127.0.0.1 -ControlSocket $Socket
        $b = New-GlassBinding -LocalPort 9 -Router "127.0.0.1:$($c.EndPoint.Port)"
        try {
            $since = [datetime]::Now.AddSeconds(-1)
            $c | Stop-Job
            # The binding now tries again and again, saying so.
            Wait-GlassCondition -TimeoutSeconds 30 -Because 'the binding to report its reconnection attempts' { $b.Information.Count -gt 0 } | Out-Null
            $null = Receive-Job $b -InformationVariable info -WarningAction SilentlyContinue
            $info[0].MessageData | Should -BeLike "Reconnecting channel $($b.ChannelId)*"
            $info[0].Tags | Should -Contain 'Glass'
            $info[0].Tags | Should -Contain 'GlassBinding'
            $info[0].Source | Should -Be $b.Name
            $info[0].TimeGenerated | Should -BeGreaterThan $since
        }
        finally { $b, $c | Remove-Job -Force }
    }

    It 'says translator-unavailable, naming the socket, when no translator runs' {
        $e = Get-ErrorId { Connect-GlassChannel -Id $Binding.ChannelId -Router $Router }
        $e.FullyQualifiedErrorId | Should -BeLike 'translator-unavailable,*'
        $e.Exception.Message | Should -BeLike "*$Socket*"
        # The failed link gave its ports back.
        $Controller.Status.PortsInUse | Should -Be 0
    }

    It 'keeps the newest 1,000 records of a job that has failed many connections, counting what it dropped' {
        $forward = Connect-GlassChannel -Id $Binding.ChannelId -LocalPort 0 -Router $Router
        # No translator runs here: every local connection fails, and each failure is a record.
        $count = 1100
        for ($i = 0; $i -lt $count; $i++) {
            $c = [System.Net.Sockets.TcpClient]::new('127.0.0.1', $forward.LocalEndPoint.Port)
            try { $null = $c.GetStream().Read([byte[]]::new(1), 0, 1) } catch { } finally { $c.Dispose() }
        }
        Wait-GlassCondition -TimeoutSeconds 60 -Because 'the forwarder to count every failed connection' { $forward.Failures -ge $count } | Out-Null
        $forward.Failures | Should -Be $count
        $forward.Error.Count | Should -Be 1000
        $forward.DroppedRecords | Should -Be ($count - 1000)
        $forward.Error[999].Exception.Message | Should -BeLike "*$($Binding.ChannelId)*"
        # Receive-Job takes what is kept and the stream starts empty again.
        @($forward | Receive-Job -ErrorAction SilentlyContinue -ErrorVariable taken).Count | Should -Be 0
        $taken.Count | Should -Be 1000
        $forward.Error.Count | Should -Be 0
        $forward | Remove-Job -Force
    }

    It 'names its jobs after what they serve, and leaves Get-Job its own uniform view' {
        $Binding.Name | Should -Be "GlassBinding-$($Binding.ChannelId.Substring(0, 8))"
        $Controller.Name | Should -Be "GlassController-$($Controller.EndPoint.Port)"
        $forward = Connect-GlassChannel -Id $Binding.ChannelId -LocalPort 0 -Router $Router
        try {
            $forward.Name | Should -Be "GlassChannel-$($Binding.ChannelId.Substring(0, 8))"
            # Controller, binding and forwarder in one table with PowerShell's Job columns, not lists of job internals.
            $text = Get-Job | Out-String -Width 250
            $text | Should -Match 'Id\s+Name\s+PSJobTypeName\s+State\s+HasMoreData'
            $text | Should -Not -Match 'ChildJobs|JobStateInfo'
            (Get-Job).Name | Should -Contain $forward.Name
        }
        finally { $forward | Remove-Job -Force }
    }

    It 'lists bindings and forwarded ports with their own columns, and removes them through the pipeline' {
        $b = New-GlassBinding -LocalPort 9 -Router $Router
        $bound = $Controller.Bindings
        # The design's pipeline: the binding's channel id binds to Connect-GlassChannel by property name.
        $f = $b | Connect-GlassChannel -LocalPort 0 -Router $Router
        $f.ChannelId | Should -Be $b.ChannelId

        $info = Get-GlassBinding -ChannelId $b.ChannelId
        $info.ChannelId | Should -Be $b.ChannelId
        $info.State | Should -Be 'Running'
        $info.JobId | Should -Be $b.Id
        (Get-GlassBinding | Out-String -Width 250) | Should -Match 'State\s+ChannelId\s+LocalTarget\s+Router\s+Connections'
        (Get-GlassChannel -ChannelId $b.ChannelId).LocalPort | Should -Be $f.LocalEndPoint.Port
        (Get-GlassChannel | Out-String -Width 250) | Should -Match 'State\s+ChannelId\s+LocalPort\s+Router\s+Connections'

        Get-GlassChannel -ChannelId $b.ChannelId | Disconnect-GlassChannel
        Get-GlassChannel -ChannelId $b.ChannelId -ErrorAction SilentlyContinue -ErrorVariable gone | Should -BeNullOrEmpty
        $gone[0].FullyQualifiedErrorId | Should -BeLike 'GlassJobNotFound,*'
        { [System.Net.Sockets.TcpClient]::new('127.0.0.1', $f.LocalEndPoint.Port) } | Should -Throw

        Get-GlassBinding -ChannelId $b.ChannelId | Remove-GlassBinding
        Get-Job -Id $b.Id -ErrorAction SilentlyContinue | Should -BeNullOrEmpty
        Wait-GlassCondition -TimeoutSeconds 10 -Because 'the controller to forget the removed binding' { $Controller.Bindings -eq $bound - 1 } | Out-Null
        $e = Get-ErrorId { Remove-GlassBinding -ChannelId $b.ChannelId }
        $e.FullyQualifiedErrorId | Should -BeLike 'GlassJobNotFound,*'
        $e.CategoryInfo.Category | Should -Be 'ObjectNotFound'
    }

    It 'serves Prometheus metrics where asked, and says metrics-unavailable, starting nothing, where the port is taken' {
        $probe = [System.Net.Sockets.TcpListener]::new([System.Net.IPAddress]::Loopback, 0)
        $probe.Start(); $free = $probe.LocalEndpoint.Port; $probe.Stop()
        $c = Start-GlassController -Port 0 -Address 127.0.0.1 -ControlSocket $Socket -MetricsPort $free
        try {
            $c.MetricsEndPoint.Port | Should -Be $free
            $text = (Invoke-WebRequest "http://127.0.0.1:$free/metrics").Content
            $text | Should -Match '(?m)^glass_controller_bindings 0'
            $text | Should -Match '(?m)^glass_controller_connects_total 0'
        }
        finally { $c | Remove-Job -Force }

        $busy = [System.Net.Sockets.TcpListener]::new([System.Net.IPAddress]::Loopback, 0)
        $busy.Start()
        try {
            $before = @(Get-Job).Count
            $e = Get-ErrorId { Start-GlassController -Port 0 -Address 127.0.0.1 -ControlSocket $Socket -MetricsPort $busy.LocalEndpoint.Port }
            $e.FullyQualifiedErrorId | Should -BeLike 'metrics-unavailable,*'
            $e.Exception.Message | Should -BeLike "*$($busy.LocalEndpoint.Port)*"
            @(Get-Job).Count | Should -Be $before
        }
        finally { $busy.Stop() }
    }

    It 'says router-unreachable when nothing listens at -Router' {
        $listener = [System.Net.Sockets.TcpListener]::new([System.Net.IPAddress]::Loopback, 0)
        $listener.Start(); $closedPort = $listener.LocalEndpoint.Port; $listener.Stop()
        $e = Get-ErrorId { New-GlassBinding -LocalPort 9 -Router "127.0.0.1:$closedPort" }
        $e.FullyQualifiedErrorId | Should -BeLike 'router-unreachable,*'
        $e.Exception.Message | Should -BeLike "*127.0.0.1:$closedPort*"
    }

    It 'answers garbage with bad-request and keeps serving' {
        foreach ($garbage in @("HELLO`n", ('x' * 1000), "GLASS/2 BIND`n")) {
            $c = [System.Net.Sockets.TcpClient]::new('127.0.0.1', $Controller.EndPoint.Port)
            try {
                $s = $c.GetStream(); $s.ReadTimeout = 10000
                $b = [Text.Encoding]::ASCII.GetBytes($garbage); $s.Write($b, 0, $b.Length)
                $answer = [IO.StreamReader]::new($s).ReadLine()
                $answer | Should -Match '^ERR (bad-request|version) '
            }
            finally { $c.Dispose() }
        }
        $Controller.Status.BadRequests | Should -BeGreaterOrEqual 3
        # A real client is still served.
        $e = Get-ErrorId { Connect-GlassChannel -Id $Binding.ChannelId -Router $Router }
        $e.FullyQualifiedErrorId | Should -BeLike 'translator-unavailable,*'
    }

    It 'says router-full when the port range is exhausted' {
        # One port, and binder and connector share 127.0.0.1: the second side finds none free.
        $tiny = Start-GlassController -Port 0 -Address 127.0.0.1 -ControlSocket $Socket -PortRange 61100-61100
        try {
            $b = New-GlassBinding -LocalPort 9 -Router "127.0.0.1:$($tiny.EndPoint.Port)"
            $e = Get-ErrorId { Connect-GlassChannel -Id $b.ChannelId -Router "127.0.0.1:$($tiny.EndPoint.Port)" }
            $e.FullyQualifiedErrorId | Should -BeLike 'router-full,*'
            $e.CategoryInfo.Category | Should -Be 'LimitsExceeded'
            $e.Exception.Message | Should -BeLike '*61100-61100*'
            $tiny.Status.PortsInUse | Should -Be 0
        }
        finally {
            $tiny | Remove-Job -Force
        }
    }

    It 'reports its counters to STATUS on loopback' {
        $c = [System.Net.Sockets.TcpClient]::new('127.0.0.1', $Controller.EndPoint.Port)
        try {
            $s = $c.GetStream(); $s.ReadTimeout = 10000
            $b = [Text.Encoding]::ASCII.GetBytes("GLASS/1 STATUS`n"); $s.Write($b, 0, $b.Length)
            $line = [IO.StreamReader]::new($s).ReadLine()
        }
        finally { $c.Dispose() }
        $line | Should -BeLike 'OK {*'
        ($line.Substring(3) | ConvertFrom-Json).Bindings | Should -Be $Controller.Bindings
    }

    It 'forgets the channel once its binding is stopped' {
        $Binding | Stop-Job
        $Binding.JobStateInfo.State | Should -Be 'Stopped'
        Wait-GlassCondition -TimeoutSeconds 10 -Because 'the controller to notice the binder left' { $Controller.Bindings -eq 0 } | Out-Null
        $e = Get-ErrorId { Connect-GlassChannel -Id $Binding.ChannelId -Router $Router }
        $e.FullyQualifiedErrorId | Should -BeLike 'unknown-channel,*'
    }

    It 'stops with Stop-Job and frees its port' {
        $port = $Controller.EndPoint.Port
        $Controller | Stop-Job
        $Controller.JobStateInfo.State | Should -Be 'Stopped'
        $e = Get-ErrorId { New-GlassBinding -LocalPort 9 -Router "127.0.0.1:$port" }
        $e.FullyQualifiedErrorId | Should -BeLike 'router-unreachable,*'
    }
}

Describe 'The client settings: the design''s commands as typed, on loopback' {
    BeforeAll {
        # This user's settings and channel secrets live in the test drive, and no router is set.
        $script:Saved = @{ Config = $env:XDG_CONFIG_HOME; Data = $env:XDG_DATA_HOME; Router = $env:GLASS_ROUTER }
        $env:XDG_CONFIG_HOME = Join-Path $TestDrive 'config'
        $env:XDG_DATA_HOME = Join-Path $TestDrive 'data'
        Remove-Item Env:GLASS_ROUTER -ErrorAction Ignore
        $config = Join-Path $TestDrive 'router.yaml'
        "access:`n  bindToken: t0k3n`n  connectToken: t0k3n`n" | Set-Content $config
        $script:Socket = Join-Path $TestDrive 'no-translator.sock'
        $script:Controller = Start-GlassController -Port 0 -Address 127.0.0.1 -ControlSocket $Socket -ConfigPath $config
        $script:Router = "127.0.0.1:$($Controller.EndPoint.Port)"
        $script:ConfigFile = Join-Path $env:XDG_CONFIG_HOME 'glass/client.yaml'
    }

    AfterAll {
        Get-Job | Where-Object PSJobTypeName -like 'Glass*' | Remove-Job -Force
        $env:XDG_CONFIG_HOME = $Saved.Config
        $env:XDG_DATA_HOME = $Saved.Data
        if ($Saved.Router) { $env:GLASS_ROUTER = $Saved.Router } else { Remove-Item Env:GLASS_ROUTER -ErrorAction Ignore }
    }

    AfterEach {
        Remove-Item Env:GLASS_ROUTER -ErrorAction Ignore
        Remove-Item $ConfigFile -ErrorAction Ignore
    }

    It 'says router-missing, naming the three ways to give one, when no router is given' {
        foreach ($command in { New-GlassBinding -LocalPort 1234 }, { Connect-GlassChannel -Id ('0' * 32) -LocalPort 5555 }) {
            $e = Get-ErrorId $command
            $e.FullyQualifiedErrorId | Should -BeLike 'router-missing,*'
            $e.CategoryInfo.Category | Should -Be 'InvalidArgument'
            $e.Exception.Message | Should -BeLike '*-Router*GLASS_ROUTER*Set-GlassClientConfig*'
            $e.Exception.Message | Should -BeLike "*$ConfigFile*"
        }
    }

    It 'runs New-GlassBinding -LocalPort 1234 | Select ChannelId as typed once $env:GLASS_ROUTER names the router' {
        $env:GLASS_ROUTER = $Router
        # The router wants a token: without one from anywhere, the binding is refused.
        (Get-ErrorId { New-GlassBinding -LocalPort 1234 }).FullyQualifiedErrorId | Should -BeLike 'unauthorized,*'
        Set-GlassClientConfig -Token t0k3n
        $id = New-GlassBinding -LocalPort 1234 | Select-Object -ExpandProperty ChannelId
        $id | Should -Match '^[0-9a-f]{32}$'
        $forward = Connect-GlassChannel -Id $id -LocalPort 0
        $forward.JobStateInfo.State | Should -Be 'Running'
        $forward.LocalEndPoint.Port | Should -BeGreaterThan 0
    }

    It 'uses the router, token and secret saved by Set-GlassClientConfig, and keeps the file private' {
        Set-GlassClientConfig -Router $Router -Token t0k3n -Secret 'hunter2:#"x'
        (Get-Item $ConfigFile).UnixFileMode | Should -Be ([System.IO.UnixFileMode]'UserRead, UserWrite')
        $shown = Get-GlassClientConfig
        $shown.Router | Should -Be $Router
        $shown.TokenSet | Should -BeTrue
        $shown.SecretSet | Should -BeTrue
        $shown.Path | Should -Be $ConfigFile
        (Get-Content $ConfigFile -Raw) | Should -Not -BeNullOrEmpty

        $binding = New-GlassBinding -LocalPort 1235
        # The binding took the saved secret as its connect secret, and the connector sends it: the
        # controller lets the request through to the (absent) translator; a wrong one stops there.
        (Get-ErrorId { Connect-GlassChannel -Id $binding.ChannelId }).FullyQualifiedErrorId | Should -BeLike 'translator-unavailable,*'
        (Get-ErrorId { Connect-GlassChannel -Id $binding.ChannelId -Secret wrong }).FullyQualifiedErrorId | Should -BeLike 'unauthorized,*'
        # An empty value removes one setting and keeps the others.
        Set-GlassClientConfig -Secret ''
        (Get-GlassClientConfig).SecretSet | Should -BeFalse
        (Get-GlassClientConfig).Router | Should -Be $Router
    }

    It 'pins a router''s key with Set-GlassClientConfig -RouterFingerprint, and refuses a router with another key, terminating' {
        $port = ($Router -split ':')[1]
        Set-GlassClientConfig -Router "LOCALHOST:$port" -RouterFingerprint ('SHA256:' + 'AB' * 32)
        (Get-GlassClientConfig).Routers["localhost:$port"] | Should -Be ('sha256:' + 'ab' * 32)
        (Get-Content $ConfigFile -Raw) | Should -Match "routers:"
        # Pinned to a key the controller does not have: refused before anything is sent, and
        # -ErrorAction cannot let a script go on past it.
        $e = Get-ErrorId { New-GlassBinding -LocalPort 1237 -ErrorAction SilentlyContinue }
        $e.FullyQualifiedErrorId | Should -BeLike 'router-fingerprint-mismatch,*'
        $e.CategoryInfo.Category | Should -Be 'SecurityError'
        $e.Exception.Message | Should -BeLike "*presented the key $($Controller.Fingerprint), but sha256:$('ab' * 32) is pinned for it (from $ConfigFile)*"
        # -RouterFingerprint wins over the pin.
        $b = New-GlassBinding -LocalPort 1237 -RouterFingerprint $Controller.Fingerprint -Token t0k3n
        $b.ChannelId | Should -Match '^[0-9a-f]{32}$'
        $b | Remove-Job -Force
        (Get-ErrorId { Set-GlassClientConfig -RouterFingerprint 'sha256:12' }).FullyQualifiedErrorId | Should -BeLike 'InvalidRouterFingerprint,*'
        Set-GlassClientConfig -RouterFingerprint ''
        (Get-GlassClientConfig).Routers.Count | Should -Be 0
        Set-GlassClientConfig -Router $Router
    }

    It 'names the file, line and key of a bad client config, and changes nothing under -WhatIf' {
        New-Item -ItemType Directory -Force (Split-Path $ConfigFile) | Out-Null
        "router: $Router`nrouter_port: 7000`n" | Set-Content $ConfigFile
        $e = Get-ErrorId { New-GlassBinding -LocalPort 1236 }
        $e.FullyQualifiedErrorId | Should -BeLike 'InvalidGlassConfig,*'
        $e.Exception.Message | Should -BeLike "$($ConfigFile):2:1: unknown key 'router_port'*"
        Remove-Item $ConfigFile
        Set-GlassClientConfig -Router $Router -WhatIf
        Test-Path $ConfigFile | Should -BeFalse
        (Get-ErrorId { Set-GlassClientConfig -Router 'host:99999' }).FullyQualifiedErrorId | Should -BeLike 'InvalidRouter,*'
    }
}

Describe 'Channels that survive, tokens, secrets and limits, on loopback' {
    BeforeAll {
        # Secrets of bound channels go here, not into the user's home.
        $script:OldXdg = $env:XDG_DATA_HOME
        $env:XDG_DATA_HOME = Join-Path $TestDrive 'xdg'
        $script:Socket = Join-Path $TestDrive 'no-translator.sock'
        $config = Join-Path $TestDrive 'router.yaml'
        @"
access:
  bindToken: b-token
  connectToken: c-token
limits:
  connectRatePerAddress: 2
"@ | Set-Content $config
        $script:Guarded = Start-GlassController -Port 0 -Address 127.0.0.1 -ControlSocket $Socket -ConfigPath $config
        $script:GuardedRouter = "127.0.0.1:$($Guarded.EndPoint.Port)"
        # Open also serves plain GLASS/1 and the binary BIND/CONN, which these tests speak raw; its
        # key is kept here, so that it comes back with the same one after a restart.
        $script:OpenConfig = Join-Path $TestDrive 'open.yaml'
        "tls:`n  certificate: $(Join-Path $TestDrive 'open.pem')`n  allowPlaintext: true`n" | Set-Content $OpenConfig
        $script:Open = Start-GlassController -Port 0 -Address 127.0.0.1 -ControlSocket $Socket -ConfigPath $OpenConfig -WarningAction SilentlyContinue
        $script:OpenRouter = "127.0.0.1:$($Open.EndPoint.Port)"

        function Send-Raw([int] $Port, [byte[]] $Bytes, [int] $AnswerBytes) {
            $c = [System.Net.Sockets.TcpClient]::new('127.0.0.1', $Port)
            try {
                $s = $c.GetStream(); $s.ReadTimeout = 10000
                $s.Write($Bytes, 0, $Bytes.Length)
                if ($AnswerBytes -eq 0) { return [IO.StreamReader]::new($s).ReadLine() }
                $buf = [byte[]]::new($AnswerBytes); $n = 0
                while ($n -lt $AnswerBytes) { $r = $s.Read($buf, $n, $AnswerBytes - $n); if ($r -eq 0) { break }; $n += $r }
                , $buf[0..($n - 1)]
            }
            finally { $c.Dispose() }
        }
    }

    AfterAll {
        Get-Job | Where-Object PSJobTypeName -like 'Glass*' | Remove-Job -Force
        $env:XDG_DATA_HOME = $OldXdg
    }

    It 'refuses binders and connectors without the router''s tokens with unauthorized' {
        $e = Get-ErrorId { New-GlassBinding -LocalPort 9 -Router $GuardedRouter }
        $e.FullyQualifiedErrorId | Should -BeLike 'unauthorized,*'
        $e.CategoryInfo.Category | Should -Be 'PermissionDenied'
        $b = New-GlassBinding -LocalPort 9 -Router $GuardedRouter -Token b-token
        (Get-ErrorId { Connect-GlassChannel -Id $b.ChannelId -Router $GuardedRouter }).FullyQualifiedErrorId | Should -BeLike 'unauthorized,*'
        (Get-ErrorId { Connect-GlassChannel -Id $b.ChannelId -Router $GuardedRouter -Token b-token }).FullyQualifiedErrorId | Should -BeLike 'unauthorized,*'
        # With the right token the request passes the check and reaches the (absent) translator.
        (Get-ErrorId { Connect-GlassChannel -Id $b.ChannelId -Router $GuardedRouter -Token c-token }).FullyQualifiedErrorId | Should -BeLike 'translator-unavailable,*'
    }

    It 'limits the connect rate per address with limit-exceeded' {
        $b = New-GlassBinding -LocalPort 9 -Router $GuardedRouter -Token b-token
        # A bucket of twice the rate (4) was partly spent above; a quick burst must hit the limit.
        $ids = 1..8 | ForEach-Object { (Get-ErrorId { Connect-GlassChannel -Id $b.ChannelId -Router $GuardedRouter -Token c-token }).FullyQualifiedErrorId }
        $ids | Where-Object { $_ -like 'limit-exceeded,*' } | Should -Not -BeNullOrEmpty
        $e = Get-ErrorId { Connect-GlassChannel -Id $b.ChannelId -Router $GuardedRouter -Token c-token }
        $e.Exception.Message | Should -BeLike '*connect requests per second*'
    }

    It 'asks for the channel''s connect secret when its binder set one' {
        $b = New-GlassBinding -LocalPort 9 -Router $OpenRouter -ConnectSecret door
        (Get-ErrorId { Connect-GlassChannel -Id $b.ChannelId -Router $OpenRouter }).FullyQualifiedErrorId | Should -BeLike 'unauthorized,*'
        (Get-ErrorId { Connect-GlassChannel -Id $b.ChannelId -Router $OpenRouter -Secret wrong }).FullyQualifiedErrorId | Should -BeLike 'unauthorized,*'
        (Get-ErrorId { Connect-GlassChannel -Id $b.ChannelId -Router $OpenRouter -Secret door }).FullyQualifiedErrorId | Should -BeLike 'translator-unavailable,*'
    }

    It 'takes secrets as SecureString or text alike, and shows none of them in a job''s Command' {
        $secure = ConvertTo-SecureString 'hunter2' -AsPlainText -Force
        $b = New-GlassBinding -LocalPort 9 -Router $OpenRouter -ConnectSecret $secure
        # The secret is the text inside the SecureString, not its type name.
        (Get-ErrorId { Connect-GlassChannel -Id $b.ChannelId -Router $OpenRouter -Secret 'System.Security.SecureString' }).FullyQualifiedErrorId | Should -BeLike 'unauthorized,*'
        (Get-ErrorId { Connect-GlassChannel -Id $b.ChannelId -Router $OpenRouter -Secret hunter2 }).FullyQualifiedErrorId | Should -BeLike 'translator-unavailable,*'
        (Get-ErrorId { Connect-GlassChannel -Id $b.ChannelId -Router $OpenRouter -Secret $secure }).FullyQualifiedErrorId | Should -BeLike 'translator-unavailable,*'
        $f = Connect-GlassChannel -Id $b.ChannelId -Router $OpenRouter -Secret hunter2 -LocalPort 0
        foreach ($job in $b, $f) {
            $job.Command | Should -Not -Match 'hunter2'
            ($job | Format-List * | Out-String) | Should -Not -Match 'hunter2'
        }
        $b.Command | Should -Match '^New-GlassBinding .*-ConnectSecret \*+'
        $f.Command | Should -Match '^Connect-GlassChannel .*-Secret \*+'
        (Get-ErrorId { New-GlassBinding -LocalPort 9 -Router $OpenRouter -ConnectSecret ('x' * 65) }).FullyQualifiedErrorId | Should -BeLike 'ParameterArgumentTransformationError,*'
        $f, $b | Remove-Job -Force
    }

    It 'owns every listening port: a second forwarder or controller on it fails with address-in-use, naming the job' {
        $b = New-GlassBinding -LocalPort 9 -Router $OpenRouter
        $first = Connect-GlassChannel -Id $b.ChannelId -Router $OpenRouter -LocalPort 0
        $e = Get-ErrorId { Connect-GlassChannel -Id $b.ChannelId -Router $OpenRouter -LocalPort $first.LocalPort }
        $e.FullyQualifiedErrorId | Should -BeLike 'address-in-use,*'
        $e.CategoryInfo.Category | Should -Be 'ResourceBusy'
        $e.Exception.Message | Should -BeLike "*$($first.Name) (Id $($first.Id)) holds it*"
        $port = $Open.EndPoint.Port
        $e = Get-ErrorId { Start-GlassController -Port $port -Address 127.0.0.1 -ControlSocket $Socket }
        $e.FullyQualifiedErrorId | Should -BeLike 'address-in-use,*'
        $e.Exception.Message | Should -BeLike "*$($Open.Name) (Id $($Open.Id)) holds it*"
        # One listener still has the port, and all its connections.
        @(Get-Job | Where-Object { $_.PSJobTypeName -eq 'GlassController' -and $_.EndPoint.Port -eq $port -and $_.State -eq 'Running' }) | Should -HaveCount 1
        $first, $b | Remove-Job -Force
    }

    It 'gives a stable id back after a restart, and to nobody else' {
        $first = New-GlassBinding -LocalPort 9 -Router $OpenRouter
        $id = $first.ChannelId
        Test-Path (Join-Path $env:XDG_DATA_HOME "glass/channels/$id") | Should -BeTrue
        (Get-ErrorId { New-GlassBinding -LocalPort 9 -Router $OpenRouter -ChannelId $id }).FullyQualifiedErrorId | Should -BeLike 'channel-in-use,*'
        $first | Stop-Job
        $again = New-GlassBinding -LocalPort 9 -Router $OpenRouter -ChannelId $id
        $again.ChannelId | Should -Be $id
        # Someone without the secret (another user's store) cannot take the id.
        $raw = Send-Raw $Open.EndPoint.Port ([Text.Encoding]::ASCII.GetBytes("GLASS/1 BIND id=$id secret=guess`n")) 0
        $raw | Should -Match '^ERR unauthorized '
        $again | Stop-Job
    }

    It 'keeps a dropped binder''s channel as temporarily unavailable until it comes back' {
        $answer = Send-Raw $Open.EndPoint.Port ([Text.Encoding]::ASCII.GetBytes("GLASS/1 BIND`n")) 0
        # OK ID SECRET ports=FIRST-LAST: the binder dials only ports of that range.
        $answer | Should -Match '^OK [0-9a-f]{32} \S+ ports=\d+-\d+$'
        $null, $id, $secret, $null = $answer -split ' '
        # That connection closed without BYE: the binder is away, its lease holds.
        Wait-GlassCondition -TimeoutSeconds 10 -Because 'the controller to notice the binder dropped' {
            (Get-ErrorId { Connect-GlassChannel -Id $id -Router $OpenRouter }).FullyQualifiedErrorId -like 'binder-unavailable,*'
        } | Out-Null
        $c = [System.Net.Sockets.TcpClient]::new('127.0.0.1', $Open.EndPoint.Port)
        try {
            $s = $c.GetStream(); $s.ReadTimeout = 10000
            $b = [Text.Encoding]::ASCII.GetBytes("GLASS/1 BIND id=$id secret=$secret`n"); $s.Write($b, 0, $b.Length)
            [IO.StreamReader]::new($s).ReadLine() | Should -BeLike "OK $id $secret ports=*"
            (Get-ErrorId { Connect-GlassChannel -Id $id -Router $OpenRouter }).FullyQualifiedErrorId | Should -BeLike 'translator-unavailable,*'
        }
        finally { $c.Dispose() }
    }

    It 'speaks the original design''s binary BIND and CONN' {
        $id = [byte[]](1..16)
        $hex = -join ($id | ForEach-Object { $_.ToString('x2') })
        $c = [System.Net.Sockets.TcpClient]::new('127.0.0.1', $Open.EndPoint.Port)
        try {
            $s = $c.GetStream()
            $m = [Text.Encoding]::ASCII.GetBytes('BIND') + $id; $s.Write($m, 0, $m.Length)
            Wait-GlassCondition -TimeoutSeconds 10 -Because 'the binary BIND to register' {
                (Get-ErrorId { Connect-GlassChannel -Id $hex -Router $OpenRouter }).FullyQualifiedErrorId -like 'translator-unavailable,*'
            } | Out-Null
            # Such a binder never speaks again: TCP keepalive is what finds one that vanished.
            $local = $c.Client.LocalEndPoint.Port
            $held = & ss -Htno state established "( sport = :$($Open.EndPoint.Port) and dport = :$local )"
            "$held" | Should -Match 'timer:\(keepalive'
        }
        finally { $c.Dispose() }
        # CONN for an unknown id is answered with eight zero bytes.
        $answer = Send-Raw $Open.EndPoint.Port ([Text.Encoding]::ASCII.GetBytes('CONN') + [byte[]](101..116)) 8
        $answer.Count | Should -Be 8
        ($answer | Measure-Object -Sum).Sum | Should -Be 0
    }

    It 'reconnects a binding to a restarted controller and keeps its channel id' {
        $port = $Open.EndPoint.Port
        $b = New-GlassBinding -LocalPort 9 -Router $OpenRouter
        $Open | Remove-Job -Force
        Wait-GlassCondition -TimeoutSeconds 20 -Because 'the binding to notice the controller left' { $b.ControlState -eq 'Reconnecting' } | Out-Null
        $script:Open = Start-GlassController -Port $port -Address 127.0.0.1 -ControlSocket $Socket -ConfigPath $OpenConfig -RegistryPath (Join-Path $TestDrive 'open.db') -WarningAction SilentlyContinue
        Wait-GlassCondition -TimeoutSeconds 30 -Because 'the binding to bind again' { $b.ControlState -eq 'Connected' -and $b.Reconnects -ge 1 } | Out-Null
        $b.JobStateInfo.State | Should -Be 'Running'
        # The same id is served by the new controller.
        (Get-ErrorId { Connect-GlassChannel -Id $b.ChannelId -Router $OpenRouter }).FullyQualifiedErrorId | Should -BeLike 'translator-unavailable,*'
    }

    It 'keeps a channel its owner''s across a controller restart and a lapsed lease: a stranger who knows the id is refused' {
        $registry = Join-Path $TestDrive 'registry/controller.db'
        $first = Start-GlassController -Port 0 -Address 127.0.0.1 -ControlSocket $Socket -ConfigPath $OpenConfig -RegistryPath $registry -LeaseTime 2 -WarningAction SilentlyContinue
        $port = $first.EndPoint.Port
        $router = "127.0.0.1:$port"
        $b = New-GlassBinding -LocalPort 9 -Router $router
        $id = $b.ChannelId
        $stranger = [Text.Encoding]::ASCII.GetBytes("GLASS/1 BIND id=$id secret=$([Convert]::ToHexString([Security.Cryptography.RandomNumberGenerator]::GetBytes(16)).ToLowerInvariant())`n")
        $legacy = [Text.Encoding]::ASCII.GetBytes('BIND') + [Convert]::FromHexString($id)
        # A refused binary BIND is closed at once; an accepted one is held open with nothing to say.
        function Test-LegacyBind([int] $Port, [byte[]] $Bytes) {
            $c = [System.Net.Sockets.TcpClient]::new('127.0.0.1', $Port)
            try {
                $s = $c.GetStream(); $s.ReadTimeout = 3000
                $s.Write($Bytes, 0, $Bytes.Length)
                try { if ($s.Read([byte[]]::new(8), 0, 8) -eq 0) { 'refused' } else { 'answered' } } catch [System.IO.IOException] { 'held' }
            }
            finally { $c.Dispose() }
        }
        $first | Remove-Job -Force
        (Get-Item $registry).UnixFileMode | Should -Be ([System.IO.UnixFileMode]'UserRead, UserWrite')

        $second = Start-GlassController -Port $port -Address 127.0.0.1 -ControlSocket $Socket -ConfigPath $OpenConfig -RegistryPath $registry -LeaseTime 2 -WarningAction SilentlyContinue
        try {
            # The new controller knows the channel from its registry before the binder is back.
            $second.Status.Channels | Should -BeGreaterOrEqual 1
            Send-Raw $port $stranger 0 | Should -Match "^ERR unauthorized .*does not own channel $id"
            # The original design's BIND has no secret: it may not take an owner's id either.
            Test-LegacyBind $port $legacy | Should -Be 'refused'
            Wait-GlassCondition -TimeoutSeconds 30 -Because 'the binding to bind again' { $b.ControlState -eq 'Connected' -and $b.Reconnects -ge 1 } | Out-Null
            (Get-ErrorId { Connect-GlassChannel -Id $id -Router $router }).FullyQualifiedErrorId | Should -BeLike 'translator-unavailable,*'
            $second.Status.Bindings | Should -Be 1

            # Released (the binding said BYE): forgotten at once, and still nobody else's.
            $b | Stop-Job
            (Get-ErrorId { Connect-GlassChannel -Id $id -Router $router }).FullyQualifiedErrorId | Should -BeLike 'unknown-channel,*'
            Send-Raw $port $stranger 0 | Should -Match '^ERR unauthorized '
            Test-LegacyBind $port $legacy | Should -Be 'refused'
            # Its owner binds it again, with the secret this user's store kept.
            $again = New-GlassBinding -LocalPort 9 -Router $router -ChannelId $id
            $again.ChannelId | Should -Be $id
            (Get-ErrorId { Connect-GlassChannel -Id $id -Router $router }).FullyQualifiedErrorId | Should -BeLike 'translator-unavailable,*'
            $again | Remove-Job -Force

            # Lapsed: a binder that dropped without BYE is gone longer than the 2 s lease; its id stays its own.
            $null, $lapsedId, $lapsedSecret, $null = (Send-Raw $port ([Text.Encoding]::ASCII.GetBytes("GLASS/1 BIND`n")) 0) -split ' '
            Wait-GlassCondition -TimeoutSeconds 20 -Because 'the lease to lapse' {
                (Get-ErrorId { Connect-GlassChannel -Id $lapsedId -Router $router }).FullyQualifiedErrorId -like 'unknown-channel,*'
            } | Out-Null
            Send-Raw $port ([Text.Encoding]::ASCII.GetBytes("GLASS/1 BIND id=$lapsedId secret=$('0' * 32)`n")) 0 | Should -Match '^ERR unauthorized '
            Test-LegacyBind $port ([Text.Encoding]::ASCII.GetBytes('BIND') + [Convert]::FromHexString($lapsedId)) | Should -Be 'refused'
            Send-Raw $port ([Text.Encoding]::ASCII.GetBytes("GLASS/1 BIND id=$lapsedId secret=$lapsedSecret`n")) 0 | Should -BeLike "OK $lapsedId $lapsedSecret ports=*"
        }
        finally { $second, $b | Remove-Job -Force }
    }

    It 'keeps serving real clients while garbage floods its port' {
        $b = New-GlassBinding -LocalPort 9 -Router $OpenRouter
        $rng = [Random]::new(11)
        $flood = 1..150 | ForEach-Object {
            $bytes = [byte[]]::new($rng.Next(1, 600)); $rng.NextBytes($bytes)
            $c = [System.Net.Sockets.TcpClient]::new()
            $c.Connect('127.0.0.1', $Open.EndPoint.Port)
            try { $c.GetStream().Write($bytes, 0, $bytes.Length) } catch { }
            $c
        }
        try {
            (Get-ErrorId { Connect-GlassChannel -Id $b.ChannelId -Router $OpenRouter }).FullyQualifiedErrorId | Should -BeLike 'translator-unavailable,*'
        }
        finally { $flood | ForEach-Object { $_.Dispose() } }
        $Open.JobStateInfo.State | Should -Be 'Running'
        Wait-GlassCondition -TimeoutSeconds 10 -Because 'the garbage to be counted' { $Open.Status.BadRequests -gt 0 } | Out-Null
    }
}
