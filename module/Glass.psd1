@{
    RootModule           = 'Glass.PowerShell.dll'
    # <Version> in Directory.Build.props: build.ps1 writes it over the placeholder 0.0.0 of module/Glass.psd1 (and fails if it cannot).
    ModuleVersion        = '0.0.0'
    GUID                 = '6f0f3a8e-5c1b-4d0e-9a4e-2b7c9e3d1a55'
    Author               = 'The Glass developers'
    Copyright            = '(c) The Glass developers. LGPL-3.0.'
    Description          = 'Glass: any two machines open a TCP connection to each other through a glass router that splices TCP at packet level, even when both sit behind NATs and neither learns the other''s address.'
    PowerShellVersion    = '7.6'
    CompatiblePSEditions = @('Core')
    FormatsToProcess     = @('Glass.format.ps1xml')
    CmdletsToExport      = @(
        'Start-GlassTranslator'
        'Start-GlassController'
        'Start-GlassRouter'
        'New-GlassBinding'
        'Connect-GlassChannel'
        'Get-GlassSession'
        'Get-GlassTranslatorStatus'
        'Get-GlassClientConfig'
        'Set-GlassClientConfig'
        'Get-GlassBinding'
        'Remove-GlassBinding'
        'Get-GlassChannel'
        'Disconnect-GlassChannel'
        'Stop-GlassTranslator'
        'Stop-GlassController'
        'Get-GlassRouterStatus'
    )
    FunctionsToExport    = @()
    VariablesToExport    = @()
    AliasesToExport      = @()
    PrivateData          = @{
        PSData = @{
            Tags       = @('TCP', 'NAT', 'relay', 'NFQUEUE', 'Linux')
            LicenseUri = 'https://www.gnu.org/licenses/lgpl-3.0.html'
        }
    }
}
