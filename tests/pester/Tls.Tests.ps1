# The controller protocol inside TLS, end to end: clients behind NATs trust the router's key on
# first use and pin it, a capture of the controller port shows no token, secret or channel id, a
# key other than the pinned one is refused before anything is sent, and plain GLASS/1 is refused
# by a router that does not allow it.

BeforeDiscovery {
    Import-Module (Join-Path $PSScriptRoot 'GlassTestNet.psm1') -Force
    $script:SkipReason = Test-GlassNetPrerequisite
}

Describe "The controller's TLS$(if ($SkipReason) { " (skipped: $SkipReason)" })" -Skip:([bool]$SkipReason) {
    BeforeAll {
        Import-Module (Join-Path $PSScriptRoot 'GlassTestNet.psm1') -Force
        Import-Module (Join-Path $PSScriptRoot 'GlassE2E.psm1') -Force
        $script:Net = New-GlassTestNet
        # Random words, so that finding one in a capture can only mean it crossed in clear.
        $word = { 'w' + [Convert]::ToHexString([System.Security.Cryptography.RandomNumberGenerator]::GetBytes(12)).ToLowerInvariant() }
        $script:BindToken = & $word
        $script:ConnectToken = & $word
        $script:Secret = & $word
        $script:Router = Start-GlassE2ERouter -Net $Net -PortRange 60000-60099 -ConfigLines @(
            'access:', "  bindToken: $BindToken", "  connectToken: $ConnectToken")
        $script:Module = Get-GlassE2EModule
        $pwsh = Get-GlassPwshCommand
        $script:PwshFile = $pwsh.FilePath
        $script:PwshArgs = @($pwsh.ArgumentList) + @('-NoProfile', '-NonInteractive', '-Command')

        # Runs PowerShell lines in a namespace (after Import-Module Glass); returns what they print.
        function Invoke-Client([string] $Namespace, [string] $Command) {
            Invoke-GlassNetCommand -Net $Net -Namespace $Namespace -FilePath $PwshFile -TimeoutSeconds 90 -ArgumentList (
                $PwshArgs + @("`$ErrorActionPreference = 'Stop'; Import-Module '$Module'; $Command"))
        }

        # The error id and message of a client command that must fail, as JSON.
        function Get-ClientError([string] $Namespace, [string] $Command) {
            $out = Invoke-Client $Namespace "try { $Command; 'no error' } catch { @{ Id = `$_.FullyQualifiedErrorId; Message = `$_.Exception.Message } | ConvertTo-Json -Compress }"
            $line = @($out -split "`n" | Where-Object { $_.Trim().StartsWith('{') })
            if (-not $line) { throw "Expected an error from '$Command', got: $out" }
            $line[-1] | ConvertFrom-Json
        }

        $script:Fingerprint = (Get-GlassE2EControllerStatus -Net $Net).Fingerprint
    }

    AfterAll {
        Remove-GlassTestNet -Net $script:Net
    }

    It 'generates the router''s key owner-only and shows its fingerprint on loopback STATUS' {
        $Fingerprint | Should -Match '^sha256:[0-9a-f]{64}$'
        $key = Join-Path $Net.TempDirectory 'controller-7000.pem'
        (Get-Item -LiteralPath $key).UnixFileMode | Should -Be ([System.IO.UnixFileMode]'UserRead, UserWrite')
        # The file's key is the one the controller presents.
        $certificate = [System.Security.Cryptography.X509Certificates.X509Certificate2]::CreateFromPemFile($key)
        $spki = $certificate.PublicKey.ExportSubjectPublicKeyInfo()
        'sha256:' + [Convert]::ToHexString([System.Security.Cryptography.SHA256]::HashData($spki)).ToLowerInvariant() | Should -Be $Fingerprint
    }

    It 'carries a bind and a connect with token and secret, trusting the key on first use, with none of them in a capture of the controller port' {
        $capture = Start-GlassCapture -Net $Net -Namespace router -Filter 'tcp port 7000'
        $server = Start-GlassE2EServer -Net $Net -Bytes 64KB -Seed 5
        $idFile = Join-Path $Net.TempDirectory 'tls-channel.id'
        $warnFile = Join-Path $Net.TempDirectory 'tls-bind.warning'
        $binder = Start-GlassNetProcess -Net $Net -Namespace hostB -FilePath $PwshFile -ArgumentList ($PwshArgs + @(
                "`$ErrorActionPreference = 'Stop'; Import-Module '$Module'; " +
                "`$b = New-GlassBinding -LocalPort 9000 -Router $($Router.Address) -Token $BindToken -ConnectSecret $Secret -WarningVariable w -WarningAction SilentlyContinue; " +
                "`"`$w`" | Set-Content -LiteralPath '$warnFile'; Set-Content -LiteralPath '$idFile.tmp' -Value `$b.ChannelId -NoNewline; Move-Item '$idFile.tmp' '$idFile'; `$b | Wait-Job"))
        Wait-GlassCondition -TimeoutSeconds 60 -Because 'New-GlassBinding to bind inside TLS' {
            if ($binder.HasExited) { throw "New-GlassBinding exited: $($binder.ReadStderr()) $($binder.ReadStdout())" }
            Test-Path -LiteralPath $idFile
        } | Out-Null
        $id = (Get-Content -LiteralPath $idFile -Raw).Trim()

        $endpoint = (Invoke-Client hostA "`$e = Connect-GlassChannel -Id $id -Router $($Router.Address) -Token $ConnectToken -Secret $Secret -WarningAction SilentlyContinue; '{0}:{1}' -f `$e.Address, `$e.Port").Trim()
        $sent = ConvertFrom-GlassE2EPeerOutput (Invoke-GlassNetCommand -Net $Net -Namespace hostA -FilePath (Get-GlassE2EDotnet) -TimeoutSeconds 60 -ArgumentList @(
                (Get-GlassE2ETestPeer), 'send', '--connect', $endpoint, '--bytes', '64K', '--seed', '6', '--timeout', '45'))
        Wait-GlassNetProcess -Process $server -TimeoutSeconds 30 | Should -Be 0
        $served = ConvertFrom-GlassE2EPeerOutput $server.ReadStdout()
        $result = $capture | Stop-GlassCapture

        # The bytes crossed, so both sides spoke to the controller.
        $sent[0].receivedSha256 | Should -Be $served[0].sentSha256
        $served[0].receivedSha256 | Should -Be $sent[0].sentSha256
        # The capture saw the controller's conversations (TLS names its server in clear: the check
        # below would find a word in clear too), and none of the words that matter.
        $result.PacketCount | Should -BeGreaterThan 10
        $wire = [System.Text.Encoding]::Latin1.GetString([IO.File]::ReadAllBytes($result.PcapPath))
        $wire.Contains('glass-router') | Should -BeTrue
        foreach ($word in $BindToken, $ConnectToken, $Secret, $id, $id.ToUpperInvariant(), 'GLASS/1') {
            $wire.Contains($word) | Should -BeFalse -Because "'$word' must not cross the wire in clear"
        }

        # Both clients trusted the key on first use and pinned it in their own client config.
        (Get-Content -LiteralPath $warnFile -Raw) | Should -BeLike "*trusted its key $Fingerprint and pinned it in*"
        foreach ($ns in 'hostB', 'hostA') {
            $pins = (Invoke-Client $ns 'Get-GlassClientConfig | Select-Object -ExpandProperty Routers | ConvertTo-Json -Compress') | ConvertFrom-Json
            $pins."$($Router.Address)" | Should -Be $Fingerprint -Because "$ns pinned the router on first use"
        }
    }

    It 'refuses a router whose key is not the pinned one with a terminating router-fingerprint-mismatch, before sending anything' {
        $before = Get-GlassE2EControllerStatus -Net $Net
        $wrong = 'sha256:' + ('0' * 64)
        $e = Get-ClientError hostA "Connect-GlassChannel -Id $('1' * 32) -Router $($Router.Address) -RouterFingerprint $wrong -Token $ConnectToken"
        $e.Id | Should -BeLike 'router-fingerprint-mismatch,*'
        $e.Message | Should -BeLike "*presented the key $Fingerprint, but $wrong is pinned for it*"
        $e.Message | Should -BeLike "*Set-GlassClientConfig -Router $($Router.Address) -RouterFingerprint $Fingerprint*"
        # A wrong pin in the client config counts as much, for a binding too; -ErrorAction SilentlyContinue cannot skip it.
        $e = Get-ClientError hostB "Set-GlassClientConfig -RouterFingerprint $wrong -Router $($Router.Address); New-GlassBinding -LocalPort 9001 -Token $BindToken -ErrorAction SilentlyContinue"
        $e.Id | Should -BeLike 'router-fingerprint-mismatch,*'
        $e.Message | Should -BeLike '*client.yaml*'
        # The controller heard no request from either.
        $after = Get-GlassE2EControllerStatus -Net $Net
        ($after.Bindings, $after.Connects, $after.Refused, $after.BadRequests) | Should -Be @($before.Bindings, $before.Connects, $before.Refused, $before.BadRequests)
    }

    It 'refuses plain GLASS/1 with plaintext-refused, naming the setting that would allow it' {
        $e = Get-ClientError hostA "Connect-GlassChannel -Id $('1' * 32) -Router $($Router.Address) -Plaintext -Token $ConnectToken"
        $e.Id | Should -BeLike 'plaintext-refused,*'
        $e.Message | Should -BeLike '*tls.allowPlaintext*'
        $raw = Invoke-GlassNetCommand -Net $Net -Namespace hostA -FilePath sh -ArgumentList @(
            '-c', "echo 'GLASS/1 CONNECT $('1' * 32)' | socat -t 5 - TCP:$($Router.Address)")
        $raw.Trim() | Should -BeLike 'ERR plaintext-refused *'
    }
}
