#!/usr/bin/env pwsh
<#
.SYNOPSIS
    Writes the module's help (MAML for every exported cmdlet, and the about topics) from the
    sources in module/help, and fails when a cmdlet's help is missing or incomplete.
.DESCRIPTION
    The cmdlets are those the manifest's CmdletsToExport names. Their syntax, parameter types,
    positions, pipeline input, aliases, defaults and output types come from the cmdlets
    themselves: a child pwsh imports the built module and reports them (so this process never
    loads the module's assemblies). The words come from module/help/<cmdlet>.psd1, one file per
    cmdlet (the format is in module/help/README.md).

    The build fails, naming the cmdlet and the parameter, when an exported cmdlet has no help
    source, a source documents a parameter the cmdlet does not have, a cmdlet's own parameter is
    undocumented, a cmdlet has fewer than two examples, an example does not parse, or a source
    names no exported cmdlet.
.EXAMPLE
    ./build/New-GlassHelp.ps1 -ModulePath ./out/Glass
#>
[CmdletBinding()]
param(
    # The laid-out module folder (holding Glass.psd1); the help goes to its en-US folder.
    [string] $ModulePath = (Join-Path $PSScriptRoot '../out/Glass'),
    # The help sources: <cmdlet>.psd1 files and about_*.help.txt topics.
    [string] $SourcePath = (Join-Path $PSScriptRoot '../module/help'),
    # Where the MAML file and the about topics are written; by default <ModulePath>/en-US.
    [string] $OutputPath
)

$ErrorActionPreference = 'Stop'
Set-StrictMode -Version Latest

$ModulePath = (Resolve-Path -LiteralPath $ModulePath).ProviderPath
$SourcePath = (Resolve-Path -LiteralPath $SourcePath).ProviderPath
if (-not $OutputPath) { $OutputPath = Join-Path $ModulePath 'en-US' }
$manifestPath = Join-Path $ModulePath 'Glass.psd1'
$manifest = Import-PowerShellDataFile -LiteralPath $manifestPath
$cmdletNames = @($manifest.CmdletsToExport)
$helpFileName = "$($manifest.RootModule)-Help.xml"

# Keys a source may hold: Synopsis, Description and Examples always, Parameters for a cmdlet that has any.
$SourceKeys = 'Synopsis', 'Description', 'Parameters', 'Examples', 'Inputs', 'Outputs', 'Defaults', 'Notes', 'RelatedLinks'
$ExampleKeys = 'Title', 'Code', 'Remarks'
$ShouldProcessText = @{
    WhatIf  = 'Shows what the cmdlet would do without doing it.'
    Confirm = 'Asks for confirmation before the cmdlet changes anything.'
}

# What the cmdlets say about themselves, from a child pwsh that imports the built module.
function Get-CmdletMetadata {
    param([string] $Manifest, [string[]] $Names)
    $child = {
        param($Manifest, $Names)
        $ErrorActionPreference = 'Stop'
        $null = Import-Module -Name $Manifest -Force
        $common = [System.Management.Automation.Cmdlet]::CommonParameters + [System.Management.Automation.Cmdlet]::OptionalCommonParameters
        $display = {
            param([type] $t)
            $inner = [Nullable]::GetUnderlyingType($t)
            if ($inner) { $t = $inner }
            $t
        }
        $out = foreach ($name in $Names) {
            $c = Get-Command -Name $name -CommandType Cmdlet -ErrorAction Ignore | Where-Object ModuleName -eq 'Glass'
            if (-not $c) { [pscustomobject]@{ Name = $name; Missing = $true }; continue }
            $instance = [Activator]::CreateInstance($c.ImplementingType)
            $parameters = foreach ($p in $c.Parameters.Values) {
                if ($p.Name -in $common -and $p.Name -notin 'WhatIf', 'Confirm') { continue }
                $type = & $display $p.ParameterType
                $element = if ($type.IsArray) { $type.GetElementType() } else { $type }
                $values = @(if ($element.IsEnum) { [Enum]::GetNames($element) }
                    foreach ($a in $p.Attributes) { if ($a -is [System.Management.Automation.ValidateSetAttribute]) { $a.ValidValues } })
                $default = if ($p.Name -in 'WhatIf', 'Confirm') { 'False' } else {
                    $v = $c.ImplementingType.GetProperty($p.Name).GetValue($instance)
                    $range = $p.Attributes | Where-Object { $_ -is [System.Management.Automation.ValidateRangeAttribute] } | Select-Object -First 1
                    if ($null -eq $v -or ($v -is [string] -and $v -eq '') -or ($v -is [array] -and $v.Count -eq 0)) { 'None' }
                    elseif ($v -is [System.Management.Automation.SwitchParameter]) { "$($v.IsPresent)" }
                    elseif ($range -and $v -is [int] -and $v -lt $range.MinRange) { 'None' }
                    else { "$v" }
                }
                [pscustomobject]@{
                    Name       = $p.Name
                    Type       = $type.FullName
                    TypeName   = $type.Name
                    IsSwitch   = $p.SwitchParameter
                    IsArray    = $type.IsArray
                    Values     = $values
                    Aliases    = @($p.Aliases)
                    Default    = $default
                    Sets       = @(foreach ($s in $p.ParameterSets.GetEnumerator()) {
                            [pscustomobject]@{
                                Set = $s.Key; Mandatory = $s.Value.IsMandatory; Position = $s.Value.Position
                                ByValue = $s.Value.ValueFromPipeline; ByPropertyName = $s.Value.ValueFromPipelineByPropertyName
                            }
                        })
                }
            }
            [pscustomobject]@{
                Name       = $c.Name
                Missing    = $false
                Verb       = $c.Verb
                Noun       = $c.Noun
                Sets       = @(foreach ($s in $c.ParameterSets) { [pscustomobject]@{ Name = $s.Name; IsDefault = $s.IsDefault; Parameters = @($s.Parameters.Name) } })
                Parameters = @($parameters)
                Outputs    = @($c.OutputType | ForEach-Object { $t = $_.Type; if ($t) { $t.FullName } else { $_.Name } } | Select-Object -Unique)
            }
        }
        ConvertTo-Json -InputObject @($out) -Depth 8 -Compress
    }
    $script = "& { $child } '$($Manifest -replace "'", "''")' @($(($Names | ForEach-Object { "'$($_ -replace "'", "''")'" }) -join ','))"
    $encoded = [Convert]::ToBase64String([System.Text.Encoding]::Unicode.GetBytes($script))
    # Started as this pwsh was: by dotnet with pwsh's assembly first when run as a dotnet tool.
    $pwsh = [Environment]::ProcessPath
    $leading = @(if ([IO.Path]::GetFileNameWithoutExtension($pwsh) -eq 'dotnet') { [System.Reflection.Assembly]::GetEntryAssembly().Location })
    $json = & $pwsh @leading -NoProfile -NonInteractive -EncodedCommand $encoded
    if ($LASTEXITCODE -ne 0) { throw "New-GlassHelp: the child pwsh could not read the cmdlets of $Manifest (exit code $LASTEXITCODE)." }
    ($json -join "`n") | ConvertFrom-Json
}

# Paragraphs of a text: blank lines separate them and the lines of one paragraph join with a
# space; a line starting "- " starts a list item of its own, and lines indented by four spaces or
# more (code) stay as they are, one paragraph per block, less their common indentation.
function Split-Paragraph {
    param([AllowNull()] [string] $Text)
    if (-not $Text) { return }
    $current = [System.Collections.Generic.List[string]]::new()
    $verbatim = $false
    $flush = {
        if (-not $current.Count) { return }
        if ($verbatim) {
            $indent = ($current | ForEach-Object { $_.Length - $_.TrimStart().Length } | Measure-Object -Minimum).Minimum
            ($current | ForEach-Object { $_.Substring($indent) }) -join "`n"
        }
        else { $current -join ' ' }
        $current.Clear()
    }
    foreach ($line in ($Text -replace "`r", '') -split "`n") {
        $isCode = $line -match '^\s{4,}\S'
        if ($line.Trim() -eq '' -or $line -match '^- ' -or $isCode -ne $verbatim) {
            . $flush
            $verbatim = $isCode
            if ($line.Trim() -eq '') { continue }
        }
        $current.Add($(if ($verbatim) { $line.TrimEnd() } else { $line.Trim() }))
    }
    . $flush
}

function Test-HelpSource {
    param([string] $Name, $Source, $Meta, [string] $File)
    $problems = [System.Collections.Generic.List[string]]::new()
    foreach ($k in $Source.Keys) {
        if ($k -notin $SourceKeys) { $problems.Add("${Name}: unknown key '$k' in $File (keys: $($SourceKeys -join ', '))") }
    }
    foreach ($k in 'Synopsis', 'Description') {
        if (-not $Source[$k] -or $Source[$k] -isnot [string] -or -not $Source[$k].Trim()) { $problems.Add("${Name}: no $k in $File") }
    }
    if ($Source['Synopsis'] -is [string] -and $Source['Synopsis'].Trim() -match "`n") { $problems.Add("${Name}: the Synopsis in $File must be one line") }

    $own = @($Meta.Parameters | Where-Object Name -notin 'WhatIf', 'Confirm')
    $all = @($Meta.Parameters | ForEach-Object Name)
    $documented = if ($Source['Parameters'] -is [hashtable]) { $Source['Parameters'] } else { @{} }
    if ($null -ne $Source['Parameters'] -and $Source['Parameters'] -isnot [hashtable]) { $problems.Add("${Name}: Parameters in $File must be a hashtable of parameter name = description") }
    foreach ($k in $documented.Keys) {
        if ($k -cnotin $all) { $problems.Add("${Name}: $File documents parameter -$k, which $Name does not have (its parameters: $($all -join ', '))") }
        elseif ($documented[$k] -isnot [string] -or -not $documented[$k].Trim()) { $problems.Add("${Name}: parameter -$k has an empty description in $File") }
    }
    foreach ($p in $own) {
        if (-not $documented.ContainsKey($p.Name)) { $problems.Add("${Name}: parameter -$($p.Name) is not documented in $File") }
    }
    $defaults = if ($Source['Defaults'] -is [hashtable]) { $Source['Defaults'] } else { @{} }
    foreach ($k in $defaults.Keys) {
        if ($k -cnotin $all) { $problems.Add("${Name}: $File gives a default for -$k, which $Name does not have") }
    }
    $outputs = if ($Source['Outputs'] -is [hashtable]) { $Source['Outputs'] } else { @{} }
    foreach ($k in $outputs.Keys) {
        if (-not ($Meta.Outputs | Where-Object { $_ -eq $k -or $_ -like "*.$k" })) {
            $problems.Add("${Name}: $File describes output type '$k', which $Name does not declare (it declares: $($Meta.Outputs -join ', '))")
        }
    }

    $examples = @($Source['Examples'] | Where-Object { $null -ne $_ })
    if ($examples.Count -lt 2) { $problems.Add("${Name}: $File has $($examples.Count) example(s); at least 2 are needed") }
    $i = 0
    foreach ($e in $examples) {
        $i++
        if ($e -isnot [hashtable]) { $problems.Add("${Name}: example $i in $File is not a hashtable of Title, Code, Remarks"); continue }
        foreach ($k in $e.Keys) { if ($k -notin $ExampleKeys) { $problems.Add("${Name}: example $i in $File has unknown key '$k' (keys: $($ExampleKeys -join ', '))") } }
        foreach ($k in 'Title', 'Code') { if (-not $e[$k]) { $problems.Add("${Name}: example $i in $File has no $k") } }
        if ($e['Code']) {
            $tokens = $null; $errors = $null
            $null = [System.Management.Automation.Language.Parser]::ParseInput($e['Code'], [ref] $tokens, [ref] $errors)
            foreach ($err in $errors) { $problems.Add("${Name}: example $i in $File does not parse: $($err.Message)") }
        }
    }
    , $problems
}

function Write-Para {
    param([System.Xml.XmlWriter] $W, [AllowNull()] [string] $Text)
    $paras = @(Split-Paragraph $Text)
    if (-not $paras) { $paras = @('') }
    foreach ($p in $paras) { $W.WriteElementString('maml', 'para', $NsMaml, $p) }
}

function Write-Description {
    param([System.Xml.XmlWriter] $W, [AllowNull()] [string] $Text)
    $W.WriteStartElement('maml', 'description', $NsMaml)
    Write-Para $W $Text
    $W.WriteEndElement()
}

function Write-Type {
    param([System.Xml.XmlWriter] $W, [string] $Name)
    $W.WriteStartElement('dev', 'type', $NsDev)
    $W.WriteElementString('maml', 'name', $NsMaml, $Name)
    $W.WriteElementString('maml', 'uri', $NsMaml, '')
    $W.WriteEndElement()
}

function Get-ParameterText {
    param($Source, $P)
    if ($Source['Parameters'] -is [hashtable] -and $Source['Parameters'][$P.Name]) { return $Source['Parameters'][$P.Name] }
    $ShouldProcessText[$P.Name]
}

function Write-Parameter {
    param([System.Xml.XmlWriter] $W, $Source, $P, $SetInfo, [bool] $Required, [string] $Position, [bool] $InSyntax)
    $pipeline = @(if ($SetInfo | Where-Object ByValue) { 'ByValue' }; if ($SetInfo | Where-Object ByPropertyName) { 'ByPropertyName' })
    $W.WriteStartElement('command', 'parameter', $NsCommand)
    $W.WriteAttributeString('required', $Required.ToString().ToLowerInvariant())
    $W.WriteAttributeString('variableLength', $P.IsArray.ToString().ToLowerInvariant())
    $W.WriteAttributeString('globbing', 'false')
    $W.WriteAttributeString('pipelineInput', $(if ($pipeline) { "True ($($pipeline -join ', '))" } else { 'False' }))
    $W.WriteAttributeString('position', $Position)
    $W.WriteAttributeString('aliases', $(if ($P.Aliases) { $P.Aliases -join ', ' } else { 'none' }))
    $W.WriteElementString('maml', 'name', $NsMaml, $P.Name)
    Write-Description $W (Get-ParameterText $Source $P)
    if ($P.Values -and -not $P.IsSwitch) {
        $W.WriteStartElement('command', 'parameterValueGroup', $NsCommand)
        foreach ($v in $P.Values) {
            $W.WriteStartElement('command', 'parameterValue', $NsCommand)
            $W.WriteAttributeString('required', 'false')
            $W.WriteAttributeString('command', 'variableLength', $NsCommand, 'false')
            $W.WriteString($v)
            $W.WriteEndElement()
        }
        $W.WriteEndElement()
    }
    if (-not $P.IsSwitch -or -not $InSyntax) {
        $W.WriteStartElement('command', 'parameterValue', $NsCommand)
        $W.WriteAttributeString('required', $(if ($P.IsSwitch) { 'false' } else { 'true' }))
        $W.WriteAttributeString('variableLength', $P.IsArray.ToString().ToLowerInvariant())
        $W.WriteString($P.TypeName)
        $W.WriteEndElement()
    }
    Write-Type $W $P.Type
    $default = if ($Source['Defaults'] -is [hashtable] -and $Source['Defaults'][$P.Name]) { $Source['Defaults'][$P.Name] } else { $P.Default }
    $W.WriteElementString('dev', 'defaultValue', $NsDev, $default)
    $W.WriteEndElement()
}

# Syntax order: positional parameters by position, then mandatory ones, then the rest, WhatIf and Confirm last.
function Get-SortKey {
    param($P, $SetInfo)
    $tail = if ($P.Name -in 'WhatIf', 'Confirm') { 1 } else { 0 }
    $pos = if ($SetInfo.Position -ge 0) { $SetInfo.Position } else { 1000 }
    '{0}{1:D4}{2}' -f $tail, $pos, $(if ($SetInfo.Mandatory) { 0 } else { 1 })
}

function Write-Command {
    param([System.Xml.XmlWriter] $W, $Meta, $Source)
    $W.WriteStartElement('command', 'command', $NsCommand)
    $W.WriteStartElement('command', 'details', $NsCommand)
    $W.WriteElementString('command', 'name', $NsCommand, $Meta.Name)
    $W.WriteElementString('command', 'verb', $NsCommand, $Meta.Verb)
    $W.WriteElementString('command', 'noun', $NsCommand, $Meta.Noun)
    Write-Description $W $Source.Synopsis.Trim()
    $W.WriteEndElement()
    Write-Description $W $Source.Description

    $W.WriteStartElement('command', 'syntax', $NsCommand)
    $sets = @($Meta.Sets | Sort-Object @{ Expression = { -not $_.IsDefault } }, Name)
    foreach ($set in $sets) {
        $W.WriteStartElement('command', 'syntaxItem', $NsCommand)
        $W.WriteElementString('maml', 'name', $NsMaml, $Meta.Name)
        $inSet = foreach ($p in $Meta.Parameters) {
            $info = $p.Sets | Where-Object { $_.Set -eq $set.Name -or $_.Set -eq '__AllParameterSets' } | Select-Object -First 1
            if ($info) { [pscustomobject]@{ P = $p; Info = $info; Key = (Get-SortKey $p $info) } }
        }
        foreach ($x in @($inSet | Sort-Object Key)) {
            $pos = if ($x.Info.Position -ge 0) { "$($x.Info.Position)" } else { 'named' }
            Write-Parameter $W $Source $x.P @($x.Info) ([bool]$x.Info.Mandatory) $pos $true
        }
        $W.WriteEndElement()
    }
    $W.WriteEndElement()

    $W.WriteStartElement('command', 'parameters', $NsCommand)
    $ordered = @($Meta.Parameters | Sort-Object @{ Expression = { $_.Name -in 'WhatIf', 'Confirm' } }, Name)
    foreach ($p in $ordered) {
        # Required when mandatory in every set it belongs to; the position it has where it has one.
        $required = -not ($p.Sets | Where-Object { -not $_.Mandatory })
        $positioned = $p.Sets | Where-Object { $_.Position -ge 0 } | Select-Object -First 1
        $pos = if ($positioned) { "$($positioned.Position)" } else { 'named' }
        Write-Parameter $W $Source $p @($p.Sets) $required $pos $false
    }
    $W.WriteEndElement()

    $W.WriteStartElement('command', 'inputTypes', $NsCommand)
    $piped = @($Meta.Parameters | Where-Object { $_.Sets | Where-Object { $_.ByValue -or $_.ByPropertyName } })
    if (-not $piped) {
        $W.WriteStartElement('command', 'inputType', $NsCommand)
        Write-Type $W 'None'
        Write-Description $W $(if ($Source['Inputs']) { $Source['Inputs'] } else { 'This cmdlet takes no pipeline input.' })
        $W.WriteEndElement()
    }
    foreach ($group in $piped | Group-Object Type) {
        $how = foreach ($p in $group.Group) {
            $ways = @(if ($p.Sets | Where-Object ByValue) { 'by value' }; if ($p.Sets | Where-Object ByPropertyName) { 'by property name' })
            "-$($p.Name) ($($ways -join ', '))"
        }
        $W.WriteStartElement('command', 'inputType', $NsCommand)
        Write-Type $W $group.Name
        Write-Description $W ("Binds $($how -join ' and ') from the pipeline.`n`n$($Source['Inputs'])")
        $W.WriteEndElement()
    }
    $W.WriteEndElement()

    $W.WriteStartElement('command', 'returnValues', $NsCommand)
    $outputs = if ($Source['Outputs'] -is [hashtable]) { $Source['Outputs'] } else { @{} }
    foreach ($type in $Meta.Outputs) {
        $text = $outputs.Keys | Where-Object { $type -eq $_ -or $type -like "*.$_" } | ForEach-Object { $outputs[$_] } | Select-Object -First 1
        $W.WriteStartElement('command', 'returnValue', $NsCommand)
        Write-Type $W $(if ($type -eq 'System.Void') { 'None' } else { $type })
        Write-Description $W $text
        $W.WriteEndElement()
    }
    $W.WriteEndElement()

    if ($Source['Notes']) {
        $W.WriteStartElement('maml', 'alertSet', $NsMaml)
        $W.WriteStartElement('maml', 'alert', $NsMaml)
        Write-Para $W $Source['Notes']
        $W.WriteEndElement()
        $W.WriteEndElement()
    }

    $W.WriteStartElement('command', 'examples', $NsCommand)
    $i = 0
    foreach ($e in $Source.Examples) {
        $i++
        $W.WriteStartElement('command', 'example', $NsCommand)
        $W.WriteElementString('maml', 'title', $NsMaml, "--------- Example $($i): $($e.Title) ---------")
        $W.WriteElementString('dev', 'code', $NsDev, ($e.Code -replace "`r", '').Trim())
        $W.WriteStartElement('dev', 'remarks', $NsDev)
        Write-Para $W $e['Remarks']
        # An empty paragraph: a blank line before the next example.
        $W.WriteElementString('maml', 'para', $NsMaml, '')
        $W.WriteEndElement()
        $W.WriteEndElement()
    }
    $W.WriteEndElement()

    $W.WriteStartElement('command', 'relatedLinks', $NsCommand)
    foreach ($link in @($Source['RelatedLinks'])) {
        if (-not $link) { continue }
        $W.WriteStartElement('maml', 'navigationLink', $NsMaml)
        if ($link -match '^https?://') {
            $W.WriteElementString('maml', 'linkText', $NsMaml, 'Online Version:')
            $W.WriteElementString('maml', 'uri', $NsMaml, $link)
        }
        else {
            $W.WriteElementString('maml', 'linkText', $NsMaml, $link)
            $W.WriteElementString('maml', 'uri', $NsMaml, '')
        }
        $W.WriteEndElement()
    }
    $W.WriteEndElement()
    $W.WriteEndElement()
}

$NsMaml = 'http://schemas.microsoft.com/maml/2004/10'
$NsCommand = 'http://schemas.microsoft.com/maml/dev/command/2004/10'
$NsDev = 'http://schemas.microsoft.com/maml/dev/2004/10'

$problems = [System.Collections.Generic.List[string]]::new()
$metadata = @(Get-CmdletMetadata -Manifest $manifestPath -Names $cmdletNames)
$sources = @{}
foreach ($meta in $metadata) {
    if ($meta.Missing) { $problems.Add("$($meta.Name): the manifest exports it, but the module has no such cmdlet"); continue }
    $file = Join-Path $SourcePath "$($meta.Name).psd1"
    if (-not (Test-Path -LiteralPath $file)) { $problems.Add("$($meta.Name): no help source; write $file (see module/help/README.md)"); continue }
    try { $source = Import-PowerShellDataFile -LiteralPath $file }
    catch { $problems.Add("$($meta.Name): $file cannot be read: $($_.Exception.Message)"); continue }
    $found = Test-HelpSource -Name $meta.Name -Source $source -Meta $meta -File $file
    if ($found.Count) { $problems.AddRange($found) } else { $sources[$meta.Name] = $source }
}
foreach ($f in Get-ChildItem -LiteralPath $SourcePath -Filter '*.psd1') {
    if ($f.BaseName -notin $cmdletNames) { $problems.Add("$($f.Name): a help source for '$($f.BaseName)', which the manifest does not export") }
}
$abouts = @(Get-ChildItem -LiteralPath $SourcePath -Filter 'about_*.help.txt')
foreach ($a in $abouts) {
    $topic = $a.Name -replace '\.help\.txt$', ''
    $head = @(Get-Content -LiteralPath $a.FullName -TotalCount 2)
    if ($head.Count -lt 2 -or $head[0].Trim() -cne 'TOPIC' -or $head[1].Trim() -ne $topic) {
        $problems.Add("$($a.Name): an about topic starts with the lines 'TOPIC' and '    $topic'")
    }
}
if ($problems.Count) {
    # One per line here too: pwsh's concise error view runs a message's lines together.
    foreach ($p in $problems) { Write-Host "help: $p" -ForegroundColor Red }
    throw "The module's help is incomplete ($($problems.Count) problem(s)):`n  $($problems -join "`n  ")"
}

$null = New-Item -ItemType Directory -Force -Path $OutputPath
$settings = [System.Xml.XmlWriterSettings]@{ Indent = $true; IndentChars = '  '; Encoding = [System.Text.UTF8Encoding]::new($false) }
$target = Join-Path $OutputPath $helpFileName
$w = [System.Xml.XmlWriter]::Create($target, $settings)
try {
    $w.WriteStartDocument()
    $w.WriteStartElement('helpItems', 'http://msh')
    $w.WriteAttributeString('schema', 'maml')
    $w.WriteAttributeString('xmlns', 'maml', $null, $NsMaml)
    $w.WriteAttributeString('xmlns', 'command', $null, $NsCommand)
    $w.WriteAttributeString('xmlns', 'dev', $null, $NsDev)
    foreach ($meta in $metadata) { Write-Command $w $meta $sources[$meta.Name] }
    $w.WriteEndElement()
    $w.WriteEndDocument()
}
finally {
    $w.Dispose()
}
foreach ($a in $abouts) { Copy-Item -LiteralPath $a.FullName -Destination $OutputPath }
Write-Host "Help written: $target ($($metadata.Count) cmdlets), $($abouts.Count) about topic(s)"
