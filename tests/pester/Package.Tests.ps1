# The package a user installs: `build.ps1 package` writes a .nupkg, Install-PSResource takes it from a
# local repository, and Import-Module Glass finds it by name in a fresh session. Every pwsh started
# here keeps its home, XDG folders and module path in the test drive: nothing reaches the user's profile.

BeforeAll {
    Add-Type -AssemblyName System.IO.Compression.ZipFile
    $script:Root = (Resolve-Path (Join-Path $PSScriptRoot '../..')).Path
    $script:ModuleOut = Join-Path $Root 'out/Glass'
    # The one place the version is set.
    $script:Version = (Select-Xml -Path (Join-Path $Root 'Directory.Build.props') -XPath '//Version').Node.InnerText.Trim()
    $script:Cmdlets = @((Import-PowerShellDataFile (Join-Path $Root 'module/Glass.psd1')).CmdletsToExport)

    # Runs this same pwsh (under 'dotnet pwsh', dotnet with pwsh.dll) with its home, XDG folders and
    # module path under $Sandbox, until it exits or the deadline passes; returns its exit code and output.
    function Invoke-SandboxPwsh([string] $Sandbox, [string[]] $ArgumentList, [int] $TimeoutSeconds = 180) {
        $psi = [System.Diagnostics.ProcessStartInfo]::new([Environment]::ProcessPath)
        if ([IO.Path]::GetFileNameWithoutExtension($psi.FileName) -eq 'dotnet') {
            $psi.ArgumentList.Add([System.Reflection.Assembly]::GetEntryAssembly().Location)
        }
        foreach ($a in @('-NoProfile', '-NonInteractive') + $ArgumentList) { $psi.ArgumentList.Add($a) }
        $psi.UseShellExecute = $false
        $psi.RedirectStandardOutput = $true
        $psi.RedirectStandardError = $true
        # The usual layout under the home: Install-PSResource -Scope CurrentUser writes to
        # ~/.local/share/powershell/Modules whatever XDG_DATA_HOME says. The folders must exist: .NET
        # reports a missing one as '', and PSResourceGet then writes into the working directory.
        $dirs = [ordered]@{ HOME = 'home'; XDG_CONFIG_HOME = 'home/.config'; XDG_DATA_HOME = 'home/.local/share'; XDG_CACHE_HOME = 'home/.cache'; PSModulePath = 'home/.local/share/powershell/Modules' }
        foreach ($k in $dirs.Keys) { $psi.Environment[$k] = (New-Item -ItemType Directory -Force (Join-Path $Sandbox $dirs[$k])).FullName }
        $psi.WorkingDirectory = $Sandbox
        $p = [System.Diagnostics.Process]::Start($psi)
        try {
            $stdout = $p.StandardOutput.ReadToEndAsync()
            $stderr = $p.StandardError.ReadToEndAsync()
            if (-not $p.WaitForExit($TimeoutSeconds * 1000)) {
                $p.Kill($true)
                throw "pwsh $($ArgumentList -join ' ') did not finish within $TimeoutSeconds s."
            }
            $p.WaitForExit()
            [pscustomobject]@{ ExitCode = $p.ExitCode; Output = $stdout.Result + $stderr.Result }
        }
        finally { $p.Dispose() }
    }

    # The JSON object a child printed on its line starting with RESULT=.
    function Get-ChildResult([string] $Output) {
        $line = ($Output -split "`n" | Where-Object { $_ -like 'RESULT=*' } | Select-Object -Last 1)
        if (-not $line) { throw "The child printed no result:`n$Output" }
        $line.Substring('RESULT='.Length) | ConvertFrom-Json
    }
}

Describe 'The Glass package' {
    BeforeAll {
        if (-not (Test-Path (Join-Path $ModuleOut 'Glass.PowerShell.dll'))) { throw "No module in $ModuleOut; run './build.ps1 build' first." }
        $script:Nupkg = Join-Path $Root "out/packages/Glass.$Version.nupkg"
        $script:HadNupkg = Test-Path $Nupkg
        Remove-Item $Nupkg -ErrorAction Ignore

        # The package task, on the module the build laid out, under a profile of its own.
        $script:Packager = Join-Path $TestDrive 'packager'
        $watch = [Diagnostics.Stopwatch]::StartNew()
        $script:Packed = Invoke-SandboxPwsh $Packager @('-File', (Join-Path $Root 'build.ps1'), 'package', '-NoBuild')
        Write-Host "build.ps1 package -NoBuild: $([int]$watch.Elapsed.TotalSeconds) s"

        # A user: a local repository holding the package, Install-PSResource from it...
        $script:User = Join-Path $TestDrive 'user'
        $script:Repository = New-Item -ItemType Directory -Force (Join-Path $TestDrive 'repository')
        if (Test-Path $Nupkg) { Copy-Item $Nupkg $Repository }
        $script:Installed = Invoke-SandboxPwsh $User @('-Command', @"
`$ErrorActionPreference = 'Stop'
Register-PSResourceRepository -Name GlassLocal -Uri '$($Repository.FullName)' -Trusted
Install-PSResource Glass -Repository GlassLocal -Scope CurrentUser -TrustRepository -Quiet
"@)
        # ...then Import-Module by name in a fresh session.
        $script:Imported = Invoke-SandboxPwsh $User @('-Command', @'
$ErrorActionPreference = 'Stop'
Import-Module Glass
$m = Get-Module Glass
$tested = Test-ModuleManifest (Join-Path $m.ModuleBase 'Glass.psd1')
'RESULT=' + (@{
    Version        = "$($m.Version)"
    ModuleBase     = $m.ModuleBase
    Commands       = @((Get-Command -Module Glass).Name)
    TestedVersion  = "$($tested.Version)"
    ProductVersion = [Diagnostics.FileVersionInfo]::GetVersionInfo((Join-Path $m.ModuleBase 'Glass.PowerShell.dll')).ProductVersion
    UserModules    = ($env:PSModulePath -split ':')[0]
} | ConvertTo-Json -Compress)
'@)
    }

    AfterAll {
        # The build's output as it was: the package stays only if it was there before.
        if (-not $HadNupkg) { Remove-Item $Nupkg -ErrorAction Ignore }
    }

    It 'is written by build.ps1 package as out/packages/Glass.<version>.nupkg, the version from Directory.Build.props' {
        $Version | Should -Match '^\d+\.\d+\.\d+$'
        $Packed.ExitCode | Should -Be 0 -Because $Packed.Output
        $Packed.Output | Should -Match ([regex]::Escape("Package ready: $Nupkg"))
        Test-Path $Nupkg | Should -BeTrue
        $zip = [System.IO.Compression.ZipFile]::OpenRead($Nupkg)
        try {
            $entry = $zip.Entries | Where-Object FullName -eq 'Glass.nuspec'
            $reader = [IO.StreamReader]::new($entry.Open())
            try { [xml] $nuspec = $reader.ReadToEnd() } finally { $reader.Dispose() }
        }
        finally { $zip.Dispose() }
        $nuspec.package.metadata.id | Should -Be 'Glass'
        $nuspec.package.metadata.version | Should -Be $Version
        $nuspec.package.metadata.authors | Should -Not -BeNullOrEmpty
        $nuspec.package.metadata.description | Should -Not -BeNullOrEmpty
        $nuspec.package.metadata.licenseUrl | Should -Not -BeNullOrEmpty
    }

    It 'holds every file of out/Glass: the module, its dependencies, the format views and any help' {
        $zip = [System.IO.Compression.ZipFile]::OpenRead($Nupkg)
        try { $entries = @($zip.Entries.FullName) } finally { $zip.Dispose() }
        $files = @(Get-ChildItem $ModuleOut -Recurse -File | ForEach-Object { [IO.Path]::GetRelativePath($ModuleOut, $_.FullName).Replace('\', '/') })
        $files | Should -Contain 'Glass.psd1'
        $files | Should -Contain 'Glass.format.ps1xml'
        $files | Should -Contain 'YamlDotNet.dll'
        foreach ($f in $files) { $entries | Should -Contain $f -Because "the package should hold out/Glass/$f" }
    }

    It 'leaves no repository registered in the profile it ran under' {
        @(Get-ChildItem $Packager -Recurse -Filter 'PSResourceRepository.xml') | Should -BeNullOrEmpty
    }

    It 'passes Test-ModuleManifest with the version from Directory.Build.props' {
        (Test-ModuleManifest (Join-Path $ModuleOut 'Glass.psd1') -ErrorAction Stop).Version | Should -Be ([version]$Version)
    }

    It 'installs with Install-PSResource from a local repository' {
        $Installed.ExitCode | Should -Be 0 -Because $Installed.Output
        Test-Path (Join-Path $User "home/.local/share/powershell/Modules/Glass/$Version/Glass.psd1") | Should -BeTrue
    }

    It 'imports by name in a fresh session, from where it was installed, with every cmdlet and the one version' {
        $Imported.ExitCode | Should -Be 0 -Because $Imported.Output
        $r = Get-ChildResult $Imported.Output
        $r.UserModules | Should -Be (Join-Path $User 'home/.local/share/powershell/Modules')
        $r.ModuleBase | Should -Be (Join-Path $User "home/.local/share/powershell/Modules/Glass/$Version")
        $r.Version | Should -Be $Version
        $r.TestedVersion | Should -Be $Version
        # The assemblies carry the same version (after '+' the SDK may add the commit).
        ($r.ProductVersion -split '\+')[0] | Should -Be $Version
        $r.Commands.Count | Should -Be $Cmdlets.Count
        @($r.Commands | Sort-Object) | Should -Be @($Cmdlets | Sort-Object)
    }
}
