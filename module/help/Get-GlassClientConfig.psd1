@{
    Synopsis     = 'Shows the client settings that New-GlassBinding and Connect-GlassChannel fall back on: the router, and whether a token and a secret are set.'
    Description  = @'
Get-GlassClientConfig reads this user's client settings from $XDG_CONFIG_HOME/glass/client.yaml
(by default ~/.config/glass/client.yaml) and writes them as one GlassClientSettings object:
Router, TokenSet, SecretSet, Plaintext, Routers (the key fingerprint each router, as
HOST:PORT, is pinned to) and Path. The token and the secret are only said to be set, never
shown. A missing file shows no settings.

The client cmdlets use -Router first, then $env:GLASS_ROUTER, then this file's router; the
token and the secret are used where -Token, -Secret or -ConnectSecret are not given.
Get-GlassClientConfig changes nothing. A file that cannot be read writes a non-terminating
InvalidGlassConfig error naming the file, line and key.
'@
    Parameters   = @{}
    Outputs      = @{
        GlassClientSettings = 'Router (null when none is saved), TokenSet, SecretSet, Plaintext, Routers (pins: HOST:PORT to fingerprint), and Path, the file they come from.'
    }
    Examples     = @(
        @{
            Title   = 'Show the settings'
            Code    = 'Get-GlassClientConfig'
            Remarks = 'E.g. Router router.example:7000, TokenSet False, SecretSet True, Path /home/user/.config/glass/client.yaml.'
        }
        @{
            Title   = 'Which router the client cmdlets will use'
            Code    = 'if ($env:GLASS_ROUTER) { $env:GLASS_ROUTER } else { (Get-GlassClientConfig).Router }'
            Remarks = 'The variable wins over the file; -Router on a command wins over both.'
        }
    )
    RelatedLinks = @('Set-GlassClientConfig', 'New-GlassBinding', 'Connect-GlassChannel', 'about_Glass_Configuration')
}
