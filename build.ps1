#!/usr/bin/env pwsh
<#
.SYNOPSIS
    Builds, tests, demonstrates and benchmarks Glass.
.DESCRIPTION
    build    compiles the solution and lays out the importable module in out/Glass
    test     build, then xunit and Pester; ends with one line "N passed, N failed, N skipped"
    demo     build, then a real splice between two peers behind NATs, in network namespaces it makes
    bench    build, then the engine benchmarks (rates as ratios to an anchor measured in the same
             run, allocations, memory per session), a one-million-input fuzz run, and the
             end-to-end benchmark in network namespaces (tests/bench/E2E.Bench.ps1: Glass beside
             kernel NAT and a socat relay; docs/performance.md). -Quick shortens all three;
             -BenchPart picks some of them; -BenchPaths, -BenchWorkloads and -BenchRuns pick
             a subset of the end-to-end run.
    soak     build, then minutes of churn through a router in network namespaces (bindings made
             and removed, short connections, hashed transfers, resets, refused connects) while
             the router's and the clients' memory and descriptors are sampled; fails when they
             grow (tests/bench/Soak.ps1, docs/soak.md). Not part of test. -SoakMinutes sets the
             length (5), -SoakOffload kernel, none or both (side by side; the default).
    prereqs  installs the Debian packages the demo and the network tests need (as root)
    package  build, check the manifest (Test-ModuleManifest) and write out/packages/Glass.<version>.nupkg
             with PSResourceGet, for Install-PSResource from a local repository (README, "Install");
             -NoBuild packages the module already in out/Glass
.EXAMPLE
    dotnet tool restore && dotnet pwsh ./build.ps1 test
.EXAMPLE
    dotnet pwsh ./build.ps1 bench -Quick -BenchPart e2e -BenchPaths kernel,glass -BenchWorkloads bulk1,echo64
.EXAMPLE
    dotnet pwsh ./build.ps1 soak -SoakMinutes 3
#>
[CmdletBinding()]
param(
    [Parameter(Position = 0)]
    [ValidateSet('build', 'test', 'demo', 'bench', 'soak', 'prereqs', 'package')]
    [string] $Task = 'build',

    [ValidateSet('Debug', 'Release')]
    [string] $Configuration = 'Release',

    # package: packages the module already in out/Glass instead of building it first.
    [switch] $NoBuild,

    # Runs only these Pester files or folders (comma-separated works too), e.g. -PesterPath tests/pester/Splice.Tests.ps1
    [string[]] $PesterPath = @(Join-Path $PSScriptRoot 'tests/pester'),

    # bench: smaller sizes and one end-to-end run, to check the mechanics.
    [switch] $Quick,
    # bench: engine, fuzz, e2e (comma-separated works too); all three by default.
    [string[]] $BenchPart = @('engine', 'fuzz', 'e2e'),
    # bench: passed to tests/bench/E2E.Bench.ps1 as -Paths, -Workloads, -Runs.
    [string[]] $BenchPaths,
    [string[]] $BenchWorkloads,
    [int] $BenchRuns,

    # soak: minutes of churn (after the build and the namespaces are up).
    [ValidateRange(1, 1440)]
    [double] $SoakMinutes = 5,
    # soak: which router offload modes to churn; both run side by side, each in its own namespaces.
    [ValidateSet('kernel', 'none', 'both')]
    [string] $SoakOffload = 'both'
)

$ErrorActionPreference = 'Stop'
Set-StrictMode -Version Latest

$Root = $PSScriptRoot
$Out = Join-Path $Root 'out'
$ModuleOut = Join-Path $Out 'Glass'
$PesterVersion = '5.7.1'

function Invoke-Native {
    param([Parameter(Mandatory)] [string] $FilePath, [string[]] $ArgumentList = @())
    & $FilePath @ArgumentList
    if ($LASTEXITCODE -ne 0) {
        throw "'$FilePath $($ArgumentList -join ' ')' failed with exit code $LASTEXITCODE."
    }
}

function Install-Prerequisite {
    # command -> Debian package
    $packages = [ordered]@{ ip = 'iproute2'; iptables = 'iptables'; tcpdump = 'tcpdump'; socat = 'socat'; conntrack = 'conntrack'
        sshd = 'openssh-server'; ssh = 'openssh-client'; scp = 'openssh-client'; 'ssh-keygen' = 'openssh-client' }
    $missing = @($packages.Keys | Where-Object { -not (Get-Command $_ -CommandType Application -ErrorAction Ignore) } |
        ForEach-Object { $packages[$_] })
    if ($missing.Count -eq 0) { return }
    $isRoot = (& id -u) -eq '0'
    if (-not $isRoot -or -not (Get-Command apt-get -ErrorAction Ignore)) {
        throw "Missing tools: $($missing -join ', '). Install them (as root: apt-get install -y $($missing -join ' ')) and run again."
    }
    Write-Host "Installing $($missing -join ', ') from Debian's packages..."
    $env:DEBIAN_FRONTEND = 'noninteractive'
    Invoke-Native apt-get @('update', '-qq')
    Invoke-Native apt-get (@('install', '-y', '-qq', '--no-install-recommends') + $missing)
}

function Invoke-Build {
    Invoke-Native dotnet @('restore', (Join-Path $Root 'build/tools.proj'), '--nologo', '-v', 'q')
    Invoke-Native dotnet @('build', (Join-Path $Root 'Glass.sln'), '-c', $Configuration, '--nologo', '-v', 'q', '-clp:ErrorsOnly')
    if (Test-Path $ModuleOut) { Remove-Item $ModuleOut -Recurse -Force }
    Invoke-Native dotnet @('publish', (Join-Path $Root 'src/Glass.PowerShell/Glass.PowerShell.csproj'),
        '-c', $Configuration, '--no-build', '--nologo', '-v', 'q', '-o', $ModuleOut)
    Copy-Item (Join-Path $Root 'module/*') $ModuleOut -Exclude 'help'
    Get-ChildItem $ModuleOut -Filter '*.pdb' | Remove-Item
    # SQLite's native library comes for ~30 platforms; Glass runs on Linux only (NFQUEUE).
    Get-ChildItem (Join-Path $ModuleOut 'runtimes') -Directory -ErrorAction Ignore |
        Where-Object Name -NotIn 'linux-x64', 'linux-arm64', 'linux-musl-x64', 'linux-musl-arm64' | Remove-Item -Recurse -Force
    Set-GlassModuleVersion
    & (Join-Path $Root 'build/New-GlassHelp.ps1') -ModulePath $ModuleOut
    $env:GLASS_MODULE = Join-Path $ModuleOut 'Glass.psd1'
    $env:GLASS_TESTPEER = Join-Path $Root "tests/Glass.TestPeer/bin/$Configuration/net10.0/glass-testpeer.dll"
    $env:GLASS_BENCH = Join-Path $Root "tests/Glass.Bench/bin/$Configuration/net10.0/glass-bench.dll"
    $env:GLASS_IMPAIR = Join-Path $Root "tests/Glass.Impair/bin/$Configuration/net10.0/glass-impair.dll"
    $env:GLASS_FORGE = Join-Path $Root "tests/Glass.Forge/bin/$Configuration/net10.0/glass-forge.dll"
    Write-Host "Module ready: Import-Module $ModuleOut"
}

function Get-XunitCount {
    param([string] $TrxPath)
    [xml] $trx = Get-Content $TrxPath -Raw
    $c = $trx.TestRun.ResultSummary.Counters
    [pscustomobject]@{
        Passed  = [int]$c.passed
        Failed  = [int]$c.failed + [int]$c.error + [int]$c.timeout + [int]$c.aborted
        Skipped = [int]$c.notExecuted
    }
}

function Write-FailureList {
    param([string] $Results, $Pester)
    $lines = [Collections.Generic.List[string]]::new()
    foreach ($trx in Get-ChildItem $Results -Filter '*.trx' -ErrorAction Ignore) {
        [xml] $x = Get-Content $trx.FullName -Raw
        $ns = @{ t = $x.DocumentElement.NamespaceURI }
        foreach ($r in @(Select-Xml -Xml $x -XPath '//t:UnitTestResult[@outcome!="Passed" and @outcome!="NotExecuted"]' -Namespace $ns)) {
            $message = "$($r.Node.SelectSingleNode('.//*[local-name()="Message"]')?.InnerText)".Trim() -split "`n" | Select-Object -First 3
            $lines.Add("xunit  $($r.Node.GetAttribute('testName')): $($message -join ' / ')")
        }
    }
    foreach ($t in @($Pester.Failed) + @($Pester.FailedBlocks) + @($Pester.FailedContainers)) {
        if (-not $t) { continue }
        $name = if ($t.PSObject.Properties['ExpandedPath'] -and $t.ExpandedPath) { $t.ExpandedPath }
            elseif ($t.PSObject.Properties['Item']) { "$($t.Item)" } else { "$t" }
        $errors = if ($t.PSObject.Properties['ErrorRecord']) { @($t.ErrorRecord) } else { @() }
        $message = @($errors | ForEach-Object { "$_".Trim() -split "`n" | Select-Object -First 3 }) -join ' / '
        $lines.Add("Pester $($name): $message")
    }
    if ($lines.Count -eq 0) { return }
    Write-Host "`nFailed ($($lines.Count)):" -ForegroundColor Red
    foreach ($l in $lines) { Write-Host "  $($l.Substring(0, [Math]::Min($l.Length, 600)))" }
}

function Invoke-Test {
    Install-Prerequisite
    Invoke-Build
    $results = Join-Path $Out 'test-results'
    if (Test-Path $results) { Remove-Item $results -Recurse -Force }

    # The core's tests, then the module hosted in a runspace: one run and one trx each, counts added up.
    $xunit = [pscustomobject]@{ Passed = 0; Failed = 0; Skipped = 0 }
    foreach ($project in 'Glass.Tests', 'Glass.PowerShell.Tests') {
        Write-Host "`n== xunit: $project ==" -ForegroundColor Cyan
        & dotnet test (Join-Path $Root "tests/$project/$project.csproj") -c $Configuration --no-build --nologo `
            --logger "trx;LogFileName=$project.trx" --logger 'console;verbosity=normal' --results-directory $results
        $trx = Join-Path $results "$project.trx"
        # No trx: the run itself failed (crashed, or found nothing to run); count it as a failure.
        $counts = if (Test-Path $trx) { Get-XunitCount $trx } else { [pscustomobject]@{ Passed = 0; Failed = 1; Skipped = 0 } }
        $xunit.Passed += $counts.Passed
        $xunit.Failed += $counts.Failed
        $xunit.Skipped += $counts.Skipped
    }

    Write-Host "`n== Pester ==" -ForegroundColor Cyan
    $pesterManifest = Join-Path ([Environment]::GetFolderPath('UserProfile')) ".nuget/packages/pester/$PesterVersion/tools/Pester.psd1"
    if ($env:NUGET_PACKAGES) { $pesterManifest = Join-Path $env:NUGET_PACKAGES "pester/$PesterVersion/tools/Pester.psd1" }
    Import-Module $pesterManifest -RequiredVersion $PesterVersion -Force
    $config = New-PesterConfiguration
    # From bash, "-PesterPath a,b" arrives as one string.
    $paths = @($PesterPath -split ',' | ForEach-Object { $_.Trim() } | Where-Object { $_ })
    foreach ($p in $paths) { if (-not (Test-Path -LiteralPath $p)) { throw "-PesterPath: '$p' does not exist." } }
    $config.Run.Path = $paths
    $config.Run.PassThru = $true
    $config.Output.Verbosity = 'Detailed'
    $config.TestResult.Enabled = $true
    $config.TestResult.OutputPath = Join-Path $results 'pester.xml'
    # Only the run object: anything a test wrote to the pipeline is not a result.
    $pester = Invoke-Pester -Configuration $config | Where-Object { $_ -is [Pester.Run] } | Select-Object -Last 1
    if (-not $pester) { throw 'Invoke-Pester returned no run result.' }

    $passed = $xunit.Passed + $pester.PassedCount
    # A failed BeforeAll/AfterAll fails its tests' container even when no test counted as failed.
    $failed = $xunit.Failed + $pester.FailedCount + $pester.FailedBlocksCount + $pester.FailedContainersCount
    $skipped = $xunit.Skipped + $pester.SkippedCount + $pester.NotRunCount
    # CI keeps only the tail of the output: name each failure again just above the summary.
    try { Write-FailureList -Results $results -Pester $pester } catch { Write-Warning "Could not list the failures: $_" }
    Write-Host ''
    Write-Host "xunit: $($xunit.Passed) passed, $($xunit.Failed) failed, $($xunit.Skipped) skipped; Pester: $($pester.PassedCount) passed, $($pester.FailedCount + $pester.FailedBlocksCount + $pester.FailedContainersCount) failed, $($pester.SkippedCount + $pester.NotRunCount) skipped"
    Write-Host "$passed passed, $failed failed, $skipped skipped"
    if ($failed -gt 0 -or $passed -eq 0) { exit 1 }
}

function Invoke-Bench {
    $parts = @($BenchPart -split ',' | ForEach-Object { $_.Trim() } | Where-Object { $_ })
    foreach ($p in $parts) { if ($p -notin 'engine', 'fuzz', 'e2e') { throw "Unknown -BenchPart '$p'; use engine, fuzz, e2e." } }
    if ($parts -contains 'e2e') { Install-Prerequisite }
    Invoke-Build
    # Every part runs even when an earlier one failed; the task fails at the end.
    $failed = [System.Collections.Generic.List[string]]::new()
    if ($parts -contains 'engine') {
        Write-Host "`n== engine benchmark (glass-bench bench) ==" -ForegroundColor Cyan
        try { Invoke-Native dotnet (@($env:GLASS_BENCH, 'bench') + $(if ($Quick) { @('--seconds', '0.5') } else { @() })) }
        catch { $failed.Add("engine: $($_.Exception.Message)") }
    }
    if ($parts -contains 'fuzz') {
        Write-Host "`n== fuzz (glass-bench fuzz) ==" -ForegroundColor Cyan
        try { Invoke-Native dotnet @($env:GLASS_BENCH, 'fuzz', '--inputs', $(if ($Quick) { '100000' } else { '1000000' })) }
        catch { $failed.Add("fuzz: $($_.Exception.Message)") }
    }
    if ($parts -contains 'e2e') {
        Write-Host "`n== end-to-end benchmark (tests/bench/E2E.Bench.ps1) ==" -ForegroundColor Cyan
        Import-Module (Join-Path $Root 'tests/pester/GlassTestNet.psm1')
        $reason = Test-GlassNetPrerequisite
        if ($reason) { Write-Warning "end-to-end benchmark skipped: $reason" }
        else { try { Invoke-E2EBench } catch { $failed.Add("e2e: $($_.Exception.Message)") } }
    }
    if ($failed.Count) {
        $failed | ForEach-Object { Write-Host "bench failed: $_" -ForegroundColor Red }
        exit 1
    }
}

function Invoke-E2EBench {
    $e2e = [ordered]@{ OutDirectory = (Join-Path $Out 'bench') }
    if ($Quick) { $e2e.Quick = $true }
    if ($BenchPaths) { $e2e.Paths = $BenchPaths }
    if ($BenchWorkloads) { $e2e.Workloads = $BenchWorkloads }
    if ($BenchRuns) { $e2e.Runs = $BenchRuns }
    # Its own process: it raises its open-files limit for the processes it starts.
    $pwsh = [Environment]::ProcessPath
    $leading = if ([IO.Path]::GetFileNameWithoutExtension($pwsh) -eq 'dotnet') { @([System.Reflection.Assembly]::GetEntryAssembly().Location) } else { @() }
    $argList = @($leading) + @('-NoProfile', '-NonInteractive', '-File', (Join-Path $Root 'tests/bench/E2E.Bench.ps1'))
    foreach ($k in $e2e.Keys) {
        $v = $e2e[$k]
        if ($v -is [bool]) { $argList += "-$k" } else { $argList += @("-$k", (@($v) -join ',')) }
    }
    Invoke-Native $pwsh $argList
}

function Invoke-Soak {
    Install-Prerequisite
    Invoke-Build
    Import-Module (Join-Path $Root 'tests/pester/GlassTestNet.psm1')
    $reason = Test-GlassNetPrerequisite
    if ($reason) { throw "The soak run cannot run here: $reason" }
    # Its own process, as the end-to-end benchmark: Ctrl+C reaches it, and its finally tears down.
    $pwsh = [Environment]::ProcessPath
    $leading = if ([IO.Path]::GetFileNameWithoutExtension($pwsh) -eq 'dotnet') { @([System.Reflection.Assembly]::GetEntryAssembly().Location) } else { @() }
    Invoke-Native $pwsh (@($leading) + @('-NoProfile', '-NonInteractive', '-File', (Join-Path $Root 'tests/bench/Soak.ps1'),
            '-Minutes', [string]$SoakMinutes, '-Offload', $SoakOffload, '-OutDirectory', (Join-Path $Out 'soak')))
}

function Get-GlassVersion {
    # The version the built assemblies carry: <Version> in Directory.Build.props, the one place it is set.
    $dll = Join-Path $ModuleOut 'Glass.PowerShell.dll'
    $version = ([Diagnostics.FileVersionInfo]::GetVersionInfo($dll).ProductVersion -split '\+')[0]
    if ($version -notmatch '^\d+\.\d+\.\d+$') {
        throw "$dll carries version '$version'; set <Version> in Directory.Build.props to Major.Minor.Patch (a module version has no prerelease suffix)."
    }
    $version
}

function Set-GlassModuleVersion {
    # module/Glass.psd1 holds a placeholder; the laid-out manifest gets the assemblies' version.
    $manifest = Join-Path $ModuleOut 'Glass.psd1'
    $version = Get-GlassVersion
    $pattern = "(?m)^(\s*ModuleVersion\s*=\s*)'0\.0\.0'"
    $text = Get-Content $manifest -Raw
    if ([regex]::Matches($text, $pattern).Count -ne 1) {
        throw "module/Glass.psd1 should hold ModuleVersion = '0.0.0' once, as the placeholder the build replaces with $version."
    }
    Set-Content $manifest ($text -replace $pattern, "`${1}'$version'") -NoNewline
    $written = (Import-PowerShellDataFile $manifest).ModuleVersion
    if ($written -ne $version) { throw "$manifest has ModuleVersion '$written' after the build wrote '$version' there." }
}

function Invoke-IsolatedPwsh {
    # A child pwsh (this same one: under 'dotnet pwsh', dotnet with pwsh.dll) whose home and XDG
    # folders, and so its user module path, lie under $Sandbox: what it registers or caches never
    # reaches the user's profile. The folders must exist: .NET reports a missing one as '', and PSResourceGet then
    # writes its settings into the working directory.
    param([Parameter(Mandatory)] [string] $Sandbox, [Parameter(Mandatory)] [string] $Command, [hashtable] $Environment = @{})
    $psi = [Diagnostics.ProcessStartInfo]::new([Environment]::ProcessPath)
    if ([IO.Path]::GetFileNameWithoutExtension($psi.FileName) -eq 'dotnet') {
        $psi.ArgumentList.Add([Reflection.Assembly]::GetEntryAssembly().Location)
    }
    foreach ($a in '-NoProfile', '-NonInteractive', '-Command', $Command) { $psi.ArgumentList.Add($a) }
    $psi.UseShellExecute = $false
    $psi.WorkingDirectory = $Sandbox
    $dirs = [ordered]@{ HOME = 'home'; XDG_CONFIG_HOME = 'home/.config'; XDG_DATA_HOME = 'home/.local/share'; XDG_CACHE_HOME = 'home/.cache' }
    foreach ($k in $dirs.Keys) {
        $psi.Environment[$k] = (New-Item -ItemType Directory -Force (Join-Path $Sandbox $dirs[$k])).FullName
    }
    $null = $psi.Environment.Remove('PSModulePath')
    foreach ($k in $Environment.Keys) { $psi.Environment[$k] = $Environment[$k] }
    $p = [Diagnostics.Process]::Start($psi)
    $p.WaitForExit()
    if ($p.ExitCode -ne 0) { throw "The child pwsh failed with exit code $($p.ExitCode)." }
}

function Invoke-Package {
    if (-not $NoBuild) { Invoke-Build }
    elseif (-not (Test-Path (Join-Path $ModuleOut 'Glass.PowerShell.dll'))) {
        throw "-NoBuild: $ModuleOut holds no built module; run './build.ps1 build' first."
    }
    $version = Get-GlassVersion
    $manifest = Test-ModuleManifest (Join-Path $ModuleOut 'Glass.psd1') -ErrorAction Stop
    if ("$($manifest.Version)" -ne $version) {
        throw "$ModuleOut/Glass.psd1 has ModuleVersion $($manifest.Version), the assemblies $version; run the package task without -NoBuild."
    }
    $packages = Join-Path $Out 'packages'
    $null = New-Item -ItemType Directory -Force $packages
    Get-ChildItem $packages -Filter 'Glass.*.nupkg' | Where-Object Name -Match '^Glass\.\d+\.\d+\.\d+\.nupkg$' | Remove-Item
    # Publish-PSResource packs into a registered repository: a local one over out/packages,
    # registered only in a throw-away profile.
    $sandbox = Join-Path ([IO.Path]::GetTempPath()) "glass-package-$([guid]::NewGuid().ToString('n'))"
    try {
        Invoke-IsolatedPwsh -Sandbox $sandbox -Environment @{ GLASS_PACKAGE_MODULE = $ModuleOut; GLASS_PACKAGE_REPOSITORY = $packages } -Command @'
$ErrorActionPreference = 'Stop'
Register-PSResourceRepository -Name GlassBuild -Uri $env:GLASS_PACKAGE_REPOSITORY -Trusted
Publish-PSResource -Path $env:GLASS_PACKAGE_MODULE -Repository GlassBuild
'@
    }
    finally { Remove-Item $sandbox -Recurse -Force -ErrorAction Ignore }
    $nupkg = Join-Path $packages "Glass.$version.nupkg"
    if (-not (Test-Path $nupkg)) { throw "Publish-PSResource left no $nupkg." }
    Write-Host "Package ready: $nupkg"
}

switch ($Task) {
    'build' { Invoke-Build }
    'prereqs' { Install-Prerequisite }
    'test' { Invoke-Test }
    'bench' { Invoke-Bench }
    'soak' { Invoke-Soak }
    'package' { Invoke-Package }
    'demo' {
        Install-Prerequisite
        Invoke-Build
        & (Join-Path $Root 'examples/demo.ps1')
        if (-not $?) { exit 1 }
    }
}
