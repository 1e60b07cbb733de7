# Adversarial, at the controller: a stranger in a third namespace on the public segment
# (New-GlassTestNet -Attacker: 203.0.113.66, with 198.51.100.0/24 routed through it) floods the
# controller's port with connections of every kind it refuses, and tries to take a channel whose
# binder's lease lapsed, while legitimate users bind, connect and transfer (SHA-256 of both
# directions checked at both ends). The controller's STATUS counters account for every flood
# connection, the per-address cap holds as the router's kernel sees it (ss), the flood leaves
# nothing behind, and a channel id stays its owner's.

BeforeDiscovery {
    Import-Module (Join-Path $PSScriptRoot 'GlassTestNet.psm1') -Force
    $script:SkipReason = Test-GlassNetPrerequisite
    if (-not $SkipReason -and -not (Get-Command ss -ErrorAction Ignore)) { $script:SkipReason = 'ss (Debian package iproute2) is not installed' }
}

BeforeAll {
    Import-Module (Join-Path $PSScriptRoot 'GlassTestNet.psm1') -Force
    Import-Module (Join-Path $PSScriptRoot 'GlassE2E.psm1') -Force
    $script:Dotnet = Get-GlassE2EDotnet
    $script:Peer = Get-GlassE2ETestPeer
    $script:Module = Get-GlassE2EModule
    $pwsh = Get-GlassPwshCommand
    $script:PwshFile = $pwsh.FilePath
    $script:PwshArgs = @($pwsh.ArgumentList) + @('-NoProfile', '-NonInteractive')

    # One counter of a STATUS answer's RefusedByCode, 0 when absent.
    function Get-Refused($Status, [string] $Code) {
        $v = $Status.RefusedByCode.PSObject.Properties[$Code]
        if ($v) { [long]$v.Value } else { 0 }
    }

    # Runs PowerShell lines in a namespace (after Import-Module Glass); returns what they print.
    function Invoke-Client($Net, [string] $Namespace, [string] $Command) {
        Invoke-GlassNetCommand -Net $Net -Namespace $Namespace -FilePath $PwshFile -TimeoutSeconds 90 -ArgumentList (
            $PwshArgs + @('-Command', "`$ErrorActionPreference = 'Stop'; Import-Module '$Module'; $Command"))
    }

    # The error id of a client command that must fail.
    function Get-ClientError($Net, [string] $Namespace, [string] $Command) {
        $out = Invoke-Client $Net $Namespace "try { $Command; 'no error' } catch { @{ Id = `$_.FullyQualifiedErrorId; Message = `$_.Exception.Message } | ConvertTo-Json -Compress }"
        $line = @($out -split "`n" | Where-Object { $_.Trim().StartsWith('{') })
        if (-not $line) { throw "Expected an error from '$Command', got: $out" }
        $line[-1] | ConvertFrom-Json
    }

    # The router's sockets of the controller port but its listener, from ss: State (ESTAB,
    # CLOSE-WAIT, TIME-WAIT, ...) and Peer (address:port).
    function Get-ControllerSocket($Net) {
        $out = Invoke-GlassNetCommand -Net $Net -Namespace router -FilePath ss -ArgumentList @('-Htna', '( sport = :7000 )')
        @($out -split "`n" | Where-Object { $_.Trim() } | ForEach-Object {
                $f = $_.Trim() -split '\s+'
                if ($f[0] -ne 'LISTEN') { [pscustomobject]@{ State = $f[0]; Peer = $f[4] } }
            })
    }

    # How many sessions the users behind NAT A hold: their established connections to the controller.
    function Get-UserSessionCount($Net) {
        @(Get-ControllerSocket $Net | Where-Object { $_.State -eq 'ESTAB' -and $_.Peer -like "$($Net.NatAPublicAddress):*" }).Count
    }

    # The flood, run with pwsh in the attacker's namespace. From each source address it keeps up to
    # PerAddress connections open at once (more than the controller's cap), opening at most Rate a
    # second in all, of every kind a stranger may send, and replaces each one the controller closes,
    # until StopFile appears. Then it waits for the controller to close the rest and writes one JSON
    # line per connection (source, port, kind, outcome) to OutFile. Sessions GLASS/1 SESSION
    # connections, inside TLS, are held open from the first source until the end.
    $script:FloodScript = @'
param([string] $Router, [int] $Port, [string] $Sources, [int] $PerAddress, [int] $Rate, [int] $Sessions,
    [string] $ReadyFile, [string] $StopFile, [string] $OutFile, [int] $MaxSeconds = 300)
$ErrorActionPreference = 'Stop'
Set-StrictMode -Version Latest
$clock = [Diagnostics.Stopwatch]::StartNew()
$from = @($Sources -split ',')
$ascii = [Text.Encoding]::ASCII

# A real ClientHello, from a TLS client of this runtime against a listener that never answers it.
$listener = [Net.Sockets.TcpListener]::new([Net.IPAddress]::Loopback, 0)
$listener.Start()
$client = [Net.Sockets.TcpClient]::new()
$client.Connect([Net.IPAddress]::Loopback, $listener.LocalEndpoint.Port)
$ssl = [Net.Security.SslStream]::new($client.GetStream())
$handshake = $ssl.AuthenticateAsClientAsync('glass-router')
$server = $listener.AcceptTcpClient()
$stream = $server.GetStream()
$head = [byte[]]::new(5)
$n = 0; while ($n -lt 5) { $n += $stream.Read($head, $n, 5 - $n) }
$hello = [byte[]]::new(5 + $head[3] * 256 + $head[4])
[Array]::Copy($head, $hello, 5)
while ($n -lt $hello.Length) { $n += $stream.Read($hello, $n, $hello.Length - $n) }
$server.Dispose(); $client.Dispose(); $listener.Stop()
try { $null = $handshake.Wait(5000) } catch { }

$id = [byte[]]::new(16); [Security.Cryptography.RandomNumberGenerator]::Fill($id)
# 257 bytes without a newline: one more than a request line may hold.
$garbage = [byte[]]::new(257); [Random]::new(7).NextBytes($garbage)
for ($i = 0; $i -lt $garbage.Length; $i++) { if ($garbage[$i] -eq 10) { $garbage[$i] = 11 } }
$garbage[0] = [byte][char]'X'
$payloads = [ordered]@{
    'silent'       = [byte[]]@()
    'half-line'    = $ascii.GetBytes('GLASS/1 CONNECT ')
    'garbage'      = $garbage
    'garbage-line' = $ascii.GetBytes("HELO glass`n")
    'tls-hello'    = $hello
    # A ClientHello record whose message is too short to parse: a decode error at once.
    'tls-garbage'  = [byte[]]@(0x16, 3, 1, 0, 8, 1, 0, 0, 4, 3, 3, 0, 0)
    'plain-glass'  = $ascii.GetBytes("GLASS/1 CONNECT $([Convert]::ToHexStringLower($id))`n")
    'legacy-bind'  = $ascii.GetBytes('BIND') + $id
    'legacy-conn'  = $ascii.GetBytes('CONN') + $id
}
$kinds = @($payloads.Keys)
$endpoint = [Net.IPEndPoint]::new([Net.IPAddress]::Parse($Router), $Port)

$open = [Collections.Generic.List[object]]::new()
$done = [Collections.Generic.List[object]]::new()
# Each source its own range of local ports, never reused: ss's samples name each connection once.
$nextPort = @{}; $nextKind = @{}; $count = @{}
for ($i = 0; $i -lt $from.Count; $i++) { $nextPort[$from[$i]] = 20000 + 2000 * $i; $nextKind[$from[$i]] = $i; $count[$from[$i]] = 0 }

function Open-Socket([string] $Source) {
    $s = [Net.Sockets.Socket]::new([Net.Sockets.AddressFamily]::InterNetwork, [Net.Sockets.SocketType]::Stream, [Net.Sockets.ProtocolType]::Tcp)
    $local = $nextPort[$Source]; $nextPort[$Source]++
    $s.Bind([Net.IPEndPoint]::new([Net.IPAddress]::Parse($Source), $local))
    $t = $s.ConnectAsync($endpoint)
    if (-not $t.Wait(10000)) { $s.Dispose(); return $null }
    [pscustomobject]@{ Socket = $s; Source = $Source; Port = $local; Kind = ''; Data = [IO.MemoryStream]::new(); Ssl = $null; Outcome = '' }
}

$held = for ($k = 0; $k -lt $Sessions; $k++) {
    $c = Open-Socket $from[0]
    $c.Ssl = [Net.Security.SslStream]::new([Net.Sockets.NetworkStream]::new($c.Socket, $false), $false, { $true })
    $c.Ssl.AuthenticateAsClient('glass-router')
    $c.Ssl.Write($ascii.GetBytes("GLASS/1 SESSION`n")); $c.Ssl.Flush()
    $buf = [byte[]]::new(64)
    $c.Kind = 'session'; $c.Outcome = $ascii.GetString($buf, 0, $c.Ssl.Read($buf, 0, 64)).Trim()
    $count[$from[0]]++
    $c
}

function Close-Connection($c, [string] $How) {
    $bytes = $c.Data.ToArray()
    $text = $ascii.GetString($bytes)
    $c.Outcome = if ($How -ne 'closed') { $How }
        elseif ($text.StartsWith('ERR ')) { ($text.Substring(4) -split ' ')[0] }
        elseif ($bytes.Length -eq 8 -and -not ($bytes | Where-Object { $_ })) { 'zero-record' }
        elseif ($bytes.Length -gt 0 -and $bytes[0] -eq 0x16) { 'tls-server-hello' }
        elseif ($bytes.Length -gt 0 -and $bytes[0] -eq 0x15) { 'tls-alert' }
        elseif ($bytes.Length -eq 0) { 'closed' }
        else { 'other' }
    $c.Socket.Dispose()
    $null = $open.Remove($c)
    $count[$c.Source]--
    $done.Add([pscustomobject]@{ source = $c.Source; port = $c.Port; kind = $c.Kind; outcome = $c.Outcome })
}

$buffer = [byte[]]::new(65536)
$opened = 0
$stopAt = $null
while ($true) {
    if ($null -eq $stopAt -and ((Test-Path -LiteralPath $StopFile) -or $clock.Elapsed.TotalSeconds -ge $MaxSeconds)) { $stopAt = $clock.Elapsed.TotalSeconds }
    # Every connection the controller should close by itself within its request timeout.
    if ($null -ne $stopAt -and ($open.Count -eq 0 -or $clock.Elapsed.TotalSeconds - $stopAt -ge 60)) { break }
    if ($null -eq $stopAt) {
        $budget = [int]($Rate * $clock.Elapsed.TotalSeconds) - $opened
        foreach ($s in $from) {
            while ($budget -gt 0 -and $count[$s] -lt $PerAddress) {
                $opened++; $budget--
                $c = Open-Socket $s
                if (-not $c) { $done.Add([pscustomobject]@{ source = $s; port = 0; kind = ''; outcome = 'connect-failed' }); continue }
                $c.Kind = $kinds[$nextKind[$s] % $kinds.Count]; $nextKind[$s]++
                $count[$s]++
                $open.Add($c)
                $p = $payloads[$c.Kind]
                if ($p.Length) { try { $null = $c.Socket.Send($p) } catch { Close-Connection $c 'send-failed' } }
            }
        }
        if ($opened -ge $from.Count * $PerAddress -and -not (Test-Path -LiteralPath $ReadyFile)) { Set-Content -LiteralPath $ReadyFile -Value $opened }
    }
    if ($open.Count -eq 0) { Start-Sleep -Milliseconds 20; continue }
    $readable = [Collections.Generic.List[Net.Sockets.Socket]]::new()
    foreach ($c in $open) { $readable.Add($c.Socket) }
    [Net.Sockets.Socket]::Select($readable, $null, $null, 20000)
    if ($readable.Count -eq 0) { continue }
    $set = [Collections.Generic.HashSet[Net.Sockets.Socket]]::new($readable)
    foreach ($c in @($open | Where-Object { $set.Contains($_.Socket) })) {
        try {
            $got = $c.Socket.Receive($buffer)
            if ($got -eq 0) { Close-Connection $c 'closed' } else { $c.Data.Write($buffer, 0, $got) }
        }
        catch [Net.Sockets.SocketException] {
            # A reset after the answer (bytes the controller never read): what came before it counts.
            Close-Connection $c $(if ($c.Data.Length) { 'closed' } else { 'reset' })
        }
    }
}
foreach ($c in @($open)) { Close-Connection $c 'open' }
foreach ($c in $held) {
    $c.Ssl.Dispose(); $c.Socket.Dispose()
    $done.Add([pscustomobject]@{ source = $c.Source; port = $c.Port; kind = 'session'; outcome = $c.Outcome })
}
$done | ForEach-Object { $_ | ConvertTo-Json -Compress } | Set-Content -LiteralPath $OutFile
[pscustomobject]@{ opened = $opened; flooded = [Math]::Round($stopAt, 1); seconds = [Math]::Round($clock.Elapsed.TotalSeconds, 1) } | ConvertTo-Json -Compress
'@

    # A stranger's claims on a channel id, each on its own connection to the controller; prints one
    # JSON line per claim with the controller's answer ("closed": closed without one; "held": still
    # open after 15 s, i.e. bound).
    $script:ClaimScript = @'
param([string] $Router, [int] $Port, [string] $Id)
$ErrorActionPreference = 'Stop'
$ascii = [Text.Encoding]::ASCII
$secret = [Convert]::ToHexStringLower([Security.Cryptography.RandomNumberGenerator]::GetBytes(16))
function Send-Claim([string] $Name, [byte[]] $Bytes, [switch] $Tls) {
    $tcp = [Net.Sockets.TcpClient]::new()
    $tcp.Connect($Router, $Port)
    $tcp.Client.ReceiveTimeout = 15000
    try {
        $stream = $tcp.GetStream()
        if ($Tls) {
            $stream = [Net.Security.SslStream]::new($stream, $false, { $true })
            $stream.AuthenticateAsClient('glass-router')
        }
        $stream.Write($Bytes, 0, $Bytes.Length); $stream.Flush()
        $buffer = [byte[]]::new(512)
        $n = $stream.Read($buffer, 0, $buffer.Length)
        $answer = if ($n -eq 0) { 'closed' } else { $ascii.GetString($buffer, 0, $n).Trim() }
    }
    catch [IO.IOException] {
        $code = if ($_.Exception.InnerException -is [Net.Sockets.SocketException]) { $_.Exception.InnerException.SocketErrorCode }
        $answer = if ("$code" -eq 'TimedOut') { 'held' } else { "failed: $($_.Exception.Message)" }
    }
    finally { $tcp.Dispose() }
    [pscustomobject]@{ name = $Name; answer = $answer } | ConvertTo-Json -Compress
}
Send-Claim 'own secret' $ascii.GetBytes("GLASS/1 BIND id=$Id secret=$secret`n") -Tls
Send-Claim 'guessed secret' $ascii.GetBytes("GLASS/1 BIND id=$Id secret=$Id`n") -Tls
Send-Claim 'empty secret' $ascii.GetBytes("GLASS/1 BIND id=$Id secret=`n") -Tls
Send-Claim 'no secret' $ascii.GetBytes("GLASS/1 BIND id=$Id`n") -Tls
Send-Claim 'plain GLASS/1' $ascii.GetBytes("GLASS/1 BIND id=$Id secret=$secret`n")
Send-Claim 'prototype BIND' ($ascii.GetBytes('BIND') + [Convert]::FromHexString($Id))
'@
}

Describe "The controller against a stranger on the public segment$(if ($SkipReason) { " (skipped: $SkipReason)" })" -Skip:([bool]$SkipReason) {
    Context 'a connection flood from five addresses' {
        BeforeAll {
            $script:Net = New-GlassTestNet -Attacker
            # Few enough that the flood meets the cap from every address; far more than a user needs.
            $script:Cap = 16
            $script:Router = Start-GlassE2ERouter -Net $Net -ConnectionsPerAddress $Cap
            # The attacker's own address and four of the subnet it routes.
            $script:Sources = @($Net.AttackerAddress) + @(10..13 | ForEach-Object { "198.51.100.$_" })
            foreach ($a in $Sources[1..4]) {
                Invoke-GlassNetCommand -Net $Net -Namespace attacker -FilePath ip -ArgumentList @('addr', 'add', "$a/32", 'dev', 'pub') | Out-Null
            }
            # Each connection: 1 MiB from the server; an existing binding and its forwarded channel.
            $script:Serve = Start-GlassE2EServer -Net $Net -Bytes 1MB -Seed 2 -Count 0
            $script:Binding = Start-GlassE2EBinding -Net $Net -Router $Router
            Start-GlassE2EChannel -Net $Net -Router $Router -ChannelId $Binding.ChannelId -LocalPort 5555 | Out-Null
            Assert-GlassE2EIntact (Start-GlassE2ETransfer -Net $Net -Bytes 1M -Seed 3 -LocalPort 5555) $Serve
            Set-Content -LiteralPath (Join-Path $Net.TempDirectory 'flood.ps1') -Value $FloodScript
        }

        AfterAll {
            Remove-GlassTestNet -Net $script:Net
        }

        It 'serves a new binding, a connect and transfers on it and on an existing binding while the flood runs' {
            $script:Before = Get-GlassE2EControllerStatus -Net $Net
            $stop = Join-Path $Net.TempDirectory 'flood.stop'
            $ready = Join-Path $Net.TempDirectory 'flood.ready'
            $script:FloodOut = Join-Path $Net.TempDirectory 'flood.jsonl'
            # What the router's kernel holds open to the controller, five times a second, until the flood stops.
            $script:Sampler = Start-GlassNetProcess -Net $Net -Namespace router -FilePath sh -ArgumentList @('-c',
                'while [ ! -e "$1" ]; do echo ---; ss -Htnp state established "( sport = :7000 )"; sleep 0.2; done', 'sampler', $stop)
            $script:Flood = Start-GlassNetProcess -Net $Net -Namespace attacker -FilePath $PwshFile -ArgumentList ($PwshArgs + @(
                    '-File', (Join-Path $Net.TempDirectory 'flood.ps1'), '-Router', $Net.RouterAddress, '-Port', '7000', '-Sources', ($Sources -join ','),
                    '-PerAddress', "$($Cap + 6)", '-Rate', '100', '-Sessions', '2', '-ReadyFile', $ready, '-StopFile', $stop, '-OutFile', $FloodOut))
            Wait-GlassCondition -TimeoutSeconds 90 -Because 'the flood to open its first connections from every address' {
                if ($Flood.HasExited) { throw "the flood ended early: $($Flood.ReadStderr())" }
                Test-Path -LiteralPath $ready
            } | Out-Null
            # The stranger's two sessions are open (the users' own are those from NAT A).
            Wait-GlassCondition -TimeoutSeconds 30 -Because 'the controller to count the stranger''s two sessions' {
                (Get-GlassE2EControllerStatus -Net $Net).Sessions -eq 2 + (Get-UserSessionCount $Net)
            } | Out-Null

            # Meanwhile: a new binding (its own control connection and channel), a connect to it,
            # a transfer each way on it and on the binding from before the flood.
            $serve2 = Start-GlassE2EServer -Net $Net -Bytes 4MB -Seed 4 -Count 1 -Port 9002
            $binding2 = Start-GlassE2EBinding -Net $Net -Router $Router -LocalPort 9002
            Start-GlassE2EChannel -Net $Net -Router $Router -ChannelId $binding2.ChannelId -LocalPort 5557 | Out-Null
            Assert-GlassE2EIntact (Start-GlassE2ETransfer -Net $Net -Bytes 4M -Seed 9 -LocalPort 5557) $serve2
            Assert-GlassE2EIntact (Start-GlassE2ETransfer -Net $Net -Bytes 2M -Seed 10 -LocalPort 5555) $Serve
            $during = Get-GlassE2EControllerStatus -Net $Net
            $Flood.HasExited | Should -BeFalse -Because 'the flood ran all along'

            Set-Content -LiteralPath $stop -Value 'stop'
            Wait-GlassNetProcess -Process $Flood -TimeoutSeconds 120 | Should -Be 0 -Because $Flood.ReadStderr()
            Wait-GlassNetProcess -Process $Sampler -TimeoutSeconds 30 | Out-Null
            $script:Results = @(Get-Content -LiteralPath $FloodOut | ForEach-Object { $_ | ConvertFrom-Json })
            Write-Host "Controller flood: $($Flood.ReadStdout().Trim()); $(@($Results | Group-Object outcome | ForEach-Object { "$($_.Name) $($_.Count)" }) -join ', ')"
            $during.Bindings | Should -Be 2
            ($during.Connects - $Before.Connects) | Should -BeGreaterOrEqual 2
        }

        It 'has every flood connection answered as its kind asks, or refused limit-exceeded, and closed by the controller' {
            $Results | Should -Not -BeNullOrEmpty -Because 'the flood ran (the test before)'
            $expected = @{
                'silent' = 'closed'; 'half-line' = 'bad-request'; 'garbage' = 'bad-request'; 'garbage-line' = 'bad-request'
                'tls-hello' = 'tls-server-hello'; 'tls-garbage' = 'tls-alert'; 'plain-glass' = 'plaintext-refused'
                'legacy-bind' = 'closed'; 'legacy-conn' = 'zero-record'; 'session' = 'OK'
            }
            # Nothing is left open (the controller closes all within its 5 s), nothing failed to connect.
            $wrong = @($Results | Where-Object { $_.outcome -ne 'limit-exceeded' -and $_.outcome -ne $expected[$_.kind] })
            $wrong | Should -BeNullOrEmpty -Because "each kind has its answer ($(@($wrong | Select-Object -First 5 | ForEach-Object { "$($_.kind): $($_.outcome)" }) -join '; '))"
            # The flood went over the cap (how far each address got depends on how fast the
            # attacker's own process ran, so the cap itself is checked by the next tests).
            @($Results | Where-Object outcome -eq 'limit-exceeded') | Should -Not -BeNullOrEmpty -Because 'the flood went over the cap'
        }

        It 'counts every flood connection in STATUS by what it was' {
            $Results | Should -Not -BeNullOrEmpty -Because 'the flood ran (the test before)'
            $after = Get-GlassE2EControllerStatus -Net $Net
            $admitted = @($Results | Where-Object outcome -ne 'limit-exceeded')
            function Count-Kind([string[]] $Kinds) { @($admitted | Where-Object { $_.kind -in $Kinds }).Count }
            $limit = @($Results | Where-Object outcome -eq 'limit-exceeded').Count
            $plain = Count-Kind 'plain-glass', 'legacy-bind', 'legacy-conn'
            $bad = Count-Kind 'half-line', 'garbage', 'garbage-line'
            ((Get-Refused $after 'limit-exceeded') - (Get-Refused $Before 'limit-exceeded')) | Should -Be $limit
            ((Get-Refused $after 'plaintext-refused') - (Get-Refused $Before 'plaintext-refused')) | Should -Be $plain
            ((Get-Refused $after 'bad-request') - (Get-Refused $Before 'bad-request')) | Should -Be $bad
            ($after.BadRequests - $Before.BadRequests) | Should -Be $bad
            ($after.TlsFailures - $Before.TlsFailures) | Should -Be (Count-Kind 'tls-garbage')
            # Silent, half a line, a handshake never finished: cut off by the request timeout.
            ($after.RequestTimeouts - $Before.RequestTimeouts) | Should -Be (Count-Kind 'silent', 'half-line', 'tls-hello')
            # The users were refused nothing.
            ($after.Refused - $Before.Refused) | Should -Be ($limit + $plain)
        }

        It 'never let one address hold more open connections than the cap' {
            $Results | Should -Not -BeNullOrEmpty -Because 'the flood ran (the test before)'
            # Each flood connection by its address and port; those refused at the cap do not count
            # (the controller holds them only to write the refusal), nor those the kernel has not
            # handed to the controller yet (no process owns them).
            $admitted = @{}
            foreach ($r in $Results) { if ($r.outcome -ne 'limit-exceeded') { $admitted["$($r.source):$($r.port)"] = $true } }
            $samples = @($Sampler.ReadStdout() -split '---' | Where-Object { $_.Trim() })
            $samples.Count | Should -BeGreaterThan 5
            $most = @{}
            foreach ($sample in $samples) {
                $held = @($sample -split "`n" | Where-Object { $_ -match 'users:' } | ForEach-Object { ($_.Trim() -split '\s+')[3] } | Where-Object { $admitted[$_] })
                foreach ($g in $held | Group-Object { ($_ -split ':')[0] }) { $most[$g.Name] = [Math]::Max([int]$most[$g.Name], $g.Count) }
            }
            Write-Host "Most connections the controller held at once, by address: $(@($most.Keys | Sort-Object | ForEach-Object { "$_ $($most[$_])" }) -join ', ')"
            $most.Count | Should -BeGreaterThan 0 -Because 'the samples saw the flood''s connections'
            foreach ($s in $most.Keys) {
                $s | Should -BeIn $Sources
                $most[$s] | Should -BeLessOrEqual $Cap -Because "$s may hold $Cap connections"
            }
        }

        It 'leaves nothing behind: no connection or session of the stranger, both bindings bound and serving' {
            $Results | Should -Not -BeNullOrEmpty -Because 'the flood ran (the test before)'
            # Time-wait sockets do not count: the controller closed first, and they hold nothing.
            Wait-GlassCondition -TimeoutSeconds 30 -Because 'the router to hold no connection of the stranger' {
                -not @(Get-ControllerSocket $Net | Where-Object { $_.State -ne 'TIME-WAIT' -and ($_.Peer -split ':')[0] -in $Sources })
            } | Out-Null
            # Ports too: the users' forwarders give back the spare endpoint each keeps within 6 s.
            $status = Wait-GlassCondition -TimeoutSeconds 30 -Because 'the controller''s sessions to be the users'' only, and no port in use' {
                $s = Get-GlassE2EControllerStatus -Net $Net
                if ($s.Sessions -eq (Get-UserSessionCount $Net) -and $s.PortsInUse -eq 0) { $s }
            }
            $status.Bindings | Should -Be 2
            $Binding.Process.HasExited | Should -BeFalse
            Assert-GlassE2EIntact (Start-GlassE2ETransfer -Net $Net -Bytes 1M -Seed 11 -LocalPort 5555) $Serve
        }
    }

    Context 'a lapsed lease, and a stranger who wants the channel' {
        BeforeAll {
            $script:Net = New-GlassTestNet -Attacker
            # Long enough for what happens while it runs, short enough to wait out; the prototype's BIND allowed.
            $script:LeaseSeconds = 90
            $script:Router = Start-GlassE2ERouter -Net $Net -LeaseSeconds $LeaseSeconds -AllowPlaintext
            # The channel whose binder goes away, and another one whose transfers go on meanwhile.
            $script:Serve = Start-GlassE2EServer -Net $Net -Bytes 1MB -Seed 2 -Count 0
            $script:Victim = Start-GlassE2EBinding -Net $Net -Router $Router
            Start-GlassE2EChannel -Net $Net -Router $Router -ChannelId $Victim.ChannelId -LocalPort 5555 | Out-Null
            $script:ServeOther = Start-GlassE2EServer -Net $Net -Bytes 1MB -Seed 5 -Count 0 -Port 9002
            $script:Other = Start-GlassE2EBinding -Net $Net -Router $Router -LocalPort 9002
            Start-GlassE2EChannel -Net $Net -Router $Router -ChannelId $Other.ChannelId -LocalPort 5557 | Out-Null
            # And one session that lasts through it all: an echo connection, checked at the end.
            Start-GlassE2EEchoServer -Net $Net -Port 9001 | Out-Null
            $echo = Start-GlassE2EBinding -Net $Net -Router $Router -LocalPort 9001
            Start-GlassE2EChannel -Net $Net -Router $Router -ChannelId $echo.ChannelId -LocalPort 5556 | Out-Null
            $holdReady = Join-Path $Net.TempDirectory 'hold.ready'
            $script:Hold = Start-GlassNetProcess -Net $Net -Namespace hostA -FilePath $Dotnet -ArgumentList @(
                $Peer, 'hold', '--connect', '127.0.0.1:5556', '--connections', '1', '--ready-file', $holdReady, '--timeout', '600')
            Wait-GlassCondition -TimeoutSeconds 60 -Because 'an echo connection through the third channel' {
                if ($Hold.HasExited) { throw "glass-testpeer hold exited: $($Hold.ReadStderr())" }
                Test-Path -LiteralPath $holdReady
            } | Out-Null
            $script:ClaimFile = Join-Path $Net.TempDirectory 'claim.ps1'
            Set-Content -LiteralPath $ClaimFile -Value $ClaimScript

            # The stranger's claims on the victim's id; answers by name.
            function Invoke-Claim {
                $out = Invoke-GlassNetCommand -Net $Net -Namespace attacker -FilePath $PwshFile -TimeoutSeconds 120 -ArgumentList ($PwshArgs + @(
                        '-File', $ClaimFile, '-Router', $Net.RouterAddress, '-Port', '7000', '-Id', $Victim.ChannelId))
                $answers = @{}
                foreach ($line in @($out -split "`n" | Where-Object { $_.Trim().StartsWith('{') })) { $a = $line | ConvertFrom-Json; $answers[$a.name] = $a.answer }
                $answers
            }

            # Every claim refused with the code the protocol gives it; the prototype's BIND, which has
            # no answer, closed at once (a bound one stays open).
            function Assert-ClaimsRefused($Answers) {
                $Answers['own secret'] | Should -BeLike 'ERR unauthorized *this secret does not own channel*'
                $Answers['guessed secret'] | Should -BeLike 'ERR unauthorized *'
                $Answers['empty secret'] | Should -BeLike "ERR bad-request option 'secret' needs a value*"
                $Answers['no secret'] | Should -BeLike 'ERR bad-request BIND names an id and its secret together*'
                $Answers['plain GLASS/1'] | Should -BeLike 'ERR unauthorized *'
                $Answers['prototype BIND'] | Should -Be 'closed'
            }
        }

        AfterAll {
            Remove-GlassTestNet -Net $script:Net
        }

        It 'refuses connectors with binder-unavailable and every claim of the stranger while the lease runs' {
            Assert-GlassE2EIntact (Start-GlassE2ETransfer -Net $Net -Bytes 1M -Seed 3 -LocalPort 5555) $Serve
            # The binder dies without a BYE: its control connection closes, its lease begins.
            Stop-GlassNetProcess -Process $Victim.Process -Signal KILL
            Wait-GlassCondition -TimeoutSeconds 30 -Because 'the controller to see the binder gone, its channel leased' {
                $s = Get-GlassE2EControllerStatus -Net $Net
                $s.Bindings -eq 2 -and $s.Channels -eq 3
            } | Out-Null
            $script:Before = Get-GlassE2EControllerStatus -Net $Net

            $e = Get-ClientError $Net hostA "Connect-GlassChannel -Id $($Victim.ChannelId) -Router $($Router.Address)"
            $e.Id | Should -BeLike 'binder-unavailable,*'
            Assert-ClaimsRefused (Invoke-Claim)
            # The stranger with the cmdlet: it claims an id it never bound with a new secret.
            $e = Get-ClientError $Net attacker "New-GlassBinding -LocalPort 9000 -ChannelId $($Victim.ChannelId) -Router $($Router.Address) -WarningAction SilentlyContinue"
            $e.Id | Should -BeLike 'unauthorized,*'
            Assert-GlassE2EIntact (Start-GlassE2ETransfer -Net $Net -Bytes 1M -Seed 6 -LocalPort 5557) $ServeOther

            # All of it happened within the lease: the channel is still the owner's, away.
            $s = Get-GlassE2EControllerStatus -Net $Net
            ($s.Bindings, $s.Channels) | Should -Be @(2, 3) -Because "the lease of $LeaseSeconds s still runs"
            ((Get-Refused $s 'unauthorized') - (Get-Refused $Before 'unauthorized')) | Should -Be 5
            ((Get-Refused $s 'bad-request') - (Get-Refused $Before 'bad-request')) | Should -Be 2
            ((Get-Refused $s 'binder-unavailable') - (Get-Refused $Before 'binder-unavailable')) | Should -Be 1
            (Get-Refused $s 'channel-in-use') | Should -Be 0
        }

        It 'after the lease lapsed, answers connectors unknown-channel and still refuses every claim of the stranger' {
            $Before | Should -Not -BeNullOrEmpty -Because 'the binder went away (the test before)'
            Wait-GlassCondition -TimeoutSeconds ($LeaseSeconds + 60) -Because 'the lease to run out' {
                (Get-GlassE2EControllerStatus -Net $Net).Channels -eq 2
            } | Out-Null
            $mid = Get-GlassE2EControllerStatus -Net $Net
            $e = Get-ClientError $Net hostA "Connect-GlassChannel -Id $($Victim.ChannelId) -Router $($Router.Address)"
            $e.Id | Should -BeLike 'unknown-channel,*'
            # Forgotten by the registry in memory, not by its file: the prototype's BIND is refused still.
            Assert-ClaimsRefused (Invoke-Claim)
            Assert-GlassE2EIntact (Start-GlassE2ETransfer -Net $Net -Bytes 1M -Seed 7 -LocalPort 5557) $ServeOther

            $s = Get-GlassE2EControllerStatus -Net $Net
            ($s.Bindings, $s.Channels) | Should -Be @(2, 2) -Because 'the stranger holds nothing'
            ((Get-Refused $s 'unauthorized') - (Get-Refused $mid 'unauthorized')) | Should -Be 4
            ((Get-Refused $s 'bad-request') - (Get-Refused $mid 'bad-request')) | Should -Be 2
            ((Get-Refused $s 'unknown-channel') - (Get-Refused $mid 'unknown-channel')) | Should -Be 1
        }

        It 'gives the id back to its owner, whom connectors reach again, and the other channel''s session lasted throughout' {
            $Before | Should -Not -BeNullOrEmpty -Because 'the binder went away (the test before)'
            # The owner binds the same id again with the secret New-GlassBinding kept behind NAT B.
            $idFile = Join-Path $Net.TempDirectory 'rebound.id'
            $rebound = Start-GlassNetProcess -Net $Net -Namespace hostB -FilePath $PwshFile -ArgumentList ($PwshArgs + @('-Command',
                    "`$ErrorActionPreference = 'Stop'; Import-Module '$Module'; " +
                    "`$b = New-GlassBinding -LocalPort 9000 -ChannelId $($Victim.ChannelId) -Router $($Router.Address); " +
                    "Set-Content -LiteralPath '$idFile.tmp' -Value `$b.ChannelId -NoNewline; Move-Item '$idFile.tmp' '$idFile'; `$b | Wait-Job"))
            Wait-GlassCondition -TimeoutSeconds 60 -Because 'the owner to bind its id again' {
                if ($rebound.HasExited) { throw "New-GlassBinding exited: $($rebound.ReadStderr()) $($rebound.ReadStdout())" }
                Test-Path -LiteralPath $idFile
            } | Out-Null
            (Get-Content -LiteralPath $idFile -Raw).Trim() | Should -Be $Victim.ChannelId
            # The forwarder from before reaches it, with the owner's server's bytes.
            Assert-GlassE2EIntact (Start-GlassE2ETransfer -Net $Net -Bytes 1M -Seed 8 -LocalPort 5555) $Serve
            $s = Get-GlassE2EControllerStatus -Net $Net
            ($s.Bindings, $s.Channels) | Should -Be @(3, 3)

            # The echo connection opened before the binder went away still echoes.
            Stop-GlassNetProcess -Process $Hold -Signal TERM -TimeoutSeconds 30
            $Hold.ExitCode | Should -Be 0 -Because $Hold.ReadStderr()
            $held = ConvertFrom-GlassE2EPeerOutput $Hold.ReadStdout() | Select-Object -First 1
            $held.ok | Should -Be 1
        }
    }
}
