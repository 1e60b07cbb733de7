# The module's help as a user reads it with Get-Help: every exported cmdlet fully described, with
# examples that parse and call only real Glass commands and parameters, the about topics, every
# configuration key documented, and the build's check that refuses incomplete help.

BeforeDiscovery {
    $modulePath = if ($env:GLASS_MODULE) { $env:GLASS_MODULE } else { Join-Path $PSScriptRoot '../../out/Glass/Glass.psd1' }
    $Cmdlets = @((Import-PowerShellDataFile $modulePath).CmdletsToExport)
}

BeforeAll {
    $modulePath = if ($env:GLASS_MODULE) { $env:GLASS_MODULE } else { Join-Path $PSScriptRoot '../../out/Glass/Glass.psd1' }
    Import-Module $modulePath -Force
    $script:ModuleBase = (Get-Module Glass).ModuleBase
    $script:Common = [System.Management.Automation.Cmdlet]::CommonParameters + [System.Management.Automation.Cmdlet]::OptionalCommonParameters

    # The text of a help field (description, remarks: arrays of objects with a Text property).
    function Get-HelpText($Field) { (@($Field) | ForEach-Object { if ($_ -is [string]) { $_ } else { $_.Text } }) -join "`n" }

    # What is wrong with an example's code: parse errors, Glass commands that do not exist,
    # parameters they do not have, or parameters no parameter set takes together. A string that
    # runs PowerShell (pwsh -Command ..., as in ssh's ProxyCommand) is checked the same way.
    function Test-ExampleCode([string] $Code) {
        $tokens = $null; $errors = $null
        $ast = [System.Management.Automation.Language.Parser]::ParseInput($Code, [ref] $tokens, [ref] $errors)
        foreach ($e in $errors) { "does not parse: $($e.Message)" }
        foreach ($call in $ast.FindAll({ param($n) $n -is [System.Management.Automation.Language.CommandAst] }, $true)) {
            $name = $call.GetCommandName()
            if ($name -notlike '*-Glass*') { continue }
            $command = Get-Command -Name $name -Module Glass -ErrorAction Ignore
            if (-not $command) { "calls $name, which the Glass module does not have"; continue }
            $named = @($call.CommandElements | Where-Object { $_ -is [System.Management.Automation.Language.CommandParameterAst] } |
                    ForEach-Object ParameterName)
            $resolved = foreach ($p in $named) {
                $meta = $command.Parameters.Values | Where-Object { $_.Name -eq $p -or $_.Aliases -contains $p } | Select-Object -First 1
                if (-not $meta) { "calls $name -$p, which is neither a parameter nor an alias of $name" } else { $meta.Name }
            }
            $bad = @($resolved | Where-Object { $_ -like 'calls *' })
            if ($bad) { $bad; continue }
            $own = @($resolved | Where-Object { $_ -notin $Common })
            if ($own -and -not ($command.ParameterSets | Where-Object { $set = @($_.Parameters.Name); -not ($own | Where-Object { $_ -notin $set }) })) {
                "calls $name with -$($own -join ', -'), which no parameter set of $name takes together"
            }
        }
        # pwsh -Command "...": the rest of the command line is PowerShell.
        foreach ($call in $ast.FindAll({ param($n) $n -is [System.Management.Automation.Language.CommandAst] }, $true)) {
            if ($call.GetCommandName() -notin 'pwsh', 'powershell') { continue }
            $elements = @($call.CommandElements)
            $at = @(for ($i = 1; $i -lt $elements.Count; $i++) { if ($elements[$i] -is [System.Management.Automation.Language.CommandParameterAst] -and $elements[$i].ParameterName -in 'Command', 'c') { $i } })
            if ($at) {
                Test-ExampleCode ((@($elements | Select-Object -Skip ($at[0] + 1)) | ForEach-Object { if ($_ -is [System.Management.Automation.Language.StringConstantExpressionAst]) { $_.Value } else { $_.Extent.Text } }) -join ' ')
            }
        }
        foreach ($s in $ast.FindAll({ param($n) $n -is [System.Management.Automation.Language.StringConstantExpressionAst] -or $n -is [System.Management.Automation.Language.ExpandableStringExpressionAst] }, $true)) {
            if ($s.Value -match '(?s)\bpwsh\b.*?-Command\s+(?<inner>.*-Glass.*)$') {
                Test-ExampleCode ($Matches.inner.Trim("'", ' '))
            }
        }
    }
}

Describe 'Help of <_>' -ForEach $Cmdlets {
    BeforeAll {
        $Name = $_
        $Command = Get-Command -Name $_ -Module Glass
        $Help = Get-Help -Name $_ -Full
        # WhatIf and Confirm included: Get-Help shows them like the cmdlet's own.
        $Own = @($Command.Parameters.Keys | Where-Object { $_ -notin [System.Management.Automation.Cmdlet]::CommonParameters })
    }

    It 'has a synopsis of its own, on one line' {
        $Help.PSObject.TypeNames | Should -Contain 'MamlCommandHelpInfo' -Because 'help without a MAML file is made up from the syntax'
        $Help.Synopsis.Trim() | Should -Not -BeNullOrEmpty
        $Help.Synopsis | Should -Not -BeLike "$Name *" -Because 'a synopsis made up from the syntax starts with the name'
        $Help.Synopsis.Trim() | Should -Not -Match "`n"
    }

    It 'has a description' {
        (Get-HelpText $Help.description).Trim() | Should -Not -BeNullOrEmpty
    }

    It 'describes every parameter it has, and no other' {
        # A cmdlet without parameters has no parameter entries at all (strict mode must not trip on it).
        $entries = @(if ($Help.parameters -and $Help.parameters.PSObject.Properties['parameter']) { $Help.parameters.parameter })
        $documented = @($entries | Where-Object { $_ } | ForEach-Object name)
        foreach ($p in $Own) {
            $entry = $entries | Where-Object name -eq $p
            $entry | Should -Not -BeNullOrEmpty -Because "-$p is a parameter of $Name"
            (Get-HelpText $entry.description).Trim() | Should -Not -BeNullOrEmpty -Because "-$p of $Name needs a description"
        }
        foreach ($p in $documented) { $p | Should -BeIn $Own -Because "$Name documents -$p" }
    }

    It 'has at least two examples, each of which parses and calls real Glass commands and parameters' {
        $examples = @($Help.examples.example)
        $examples.Count | Should -BeGreaterOrEqual 2
        foreach ($e in $examples) {
            $e.code | Should -Not -BeNullOrEmpty
            $problems = @(Test-ExampleCode $e.code)
            $problems | Should -BeNullOrEmpty -Because "example '$($e.title)' of $Name reads: $($e.code)"
        }
    }
}

Describe 'The example checker' {
    It 'catches an unknown parameter, an unknown command, a wrong pair and a bad nested command' {
        Test-ExampleCode 'New-GlassBinding -LocalPrt 1' | Should -BeLike '*-LocalPrt*'
        Test-ExampleCode 'Get-GlassThing' | Should -BeLike '*Get-GlassThing*'
        Test-ExampleCode 'Connect-GlassChannel -Id 184d21cf0e6a4b2f9c3d5e7f8a9b0c1d -LocalPort 1 -Stdio' | Should -BeLike '*no parameter set*'
        Test-ExampleCode 'ssh -o ProxyCommand="pwsh -Command Connect-GlassChannel -Idd x -Stdio" host' | Should -BeLike '*-Idd*'
        Test-ExampleCode 'pwsh -NoProfile -Command "Import-Module Glass; Start-GlassRouter -Config x -Wait"' | Should -BeLike '*-Config*'
        Test-ExampleCode 'Connect-GlassChannel -Id 184d21cf0e6a4b2f9c3d5e7f8a9b0c1d -LocalPort 1 -ErrorAction Stop | Select ChannelId' | Should -BeNullOrEmpty
    }
}

Describe 'The about topics' {
    It 'are found by Get-Help with the module imported by path: <_>' -ForEach 'about_Glass', 'about_Glass_Configuration' {
        $topic = Get-Help -Name $_
        @($topic).Count | Should -Be 1
        "$topic" | Should -Match "^TOPIC\s+$_\s"
        "$topic" | Should -Match 'SHORT DESCRIPTION'
        "$topic" | Should -Match 'LONG DESCRIPTION'
    }

    It 'document every key of the router and the client configuration' {
        # The keys the config classes check files against, from the module's own Glass.dll.
        $glass = [System.Reflection.Assembly]::LoadFrom((Join-Path $ModuleBase 'Glass.dll'))
        $router = @($glass.GetType('Glass.Config.RouterConfig', $true).GetProperty('KeyNames').GetValue($null))
        $client = @($glass.GetType('Glass.Config.ClientConfig', $true).GetProperty('KeyNames').GetValue($null))
        $router | Should -Contain 'controller.port'
        $client | Should -Contain 'router'
        $text = "$(Get-Help -Name about_Glass_Configuration)"
        foreach ($key in $router + $client) {
            # Each key is the heading of its own entry.
            $text | Should -Match "(?m)^\s+$([regex]::Escape($key))\s*$" -Because "about_Glass_Configuration should document '$key'"
        }
    }
}

Describe 'The help generator' {
    It 'fails the build naming each cmdlet with missing help or a parameter that is undocumented or made up' {
        $sources = Join-Path $TestDrive 'help'
        Copy-Item (Join-Path $PSScriptRoot '../../module/help') $sources -Recurse
        $controller = Join-Path $sources 'Start-GlassController.psd1'
        (Get-Content $controller) -notmatch '^\s+LeaseTime\s+=' | Set-Content $controller
        $session = Join-Path $sources 'Get-GlassSession.psd1'
        (Get-Content -Raw $session) -replace '(?m)^(\s+)ControlSocket(\s+)=', '$1Bogus = ''no such parameter''; $0' | Set-Content $session
        Remove-Item (Join-Path $sources 'New-GlassBinding.psd1')
        $out = Join-Path $TestDrive 'out'

        $failure = $null
        try { & (Join-Path $PSScriptRoot '../../build/New-GlassHelp.ps1') -ModulePath $ModuleBase -SourcePath $sources -OutputPath $out }
        catch { $failure = $_.Exception.Message }

        $failure | Should -BeLike '*Start-GlassController: parameter -LeaseTime is not documented*'
        $failure | Should -BeLike '*Get-GlassSession: * documents parameter -Bogus, which Get-GlassSession does not have*'
        $failure | Should -BeLike '*New-GlassBinding: no help source*'
        Test-Path (Join-Path $out '*.xml') | Should -BeFalse
    }
}
