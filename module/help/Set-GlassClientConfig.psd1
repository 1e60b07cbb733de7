@{
    Synopsis     = 'Saves the router, token, default secret and router key pins that New-GlassBinding and Connect-GlassChannel use when none is given.'
    Description  = @'
Set-GlassClientConfig writes this user's client settings to $XDG_CONFIG_HOME/glass/client.yaml
(by default ~/.config/glass/client.yaml; XDG_CONFIG_HOME counts only when it is an absolute
path). Settings not named are kept; an empty string removes one. The file is replaced in one
step and is readable by this user only (mode 600; its folder, when created, mode 700), because
it may hold a token and a secret. The keys are listed in about_Glass_Configuration.

-RouterFingerprint pins the router (the one -Router names, else the saved one) to the
fingerprint of its key, under routers in the file: New-GlassBinding and Connect-GlassChannel
then refuse a router that presents another key (router-fingerprint-mismatch). Pins learnt on
first use are recorded there too. Ask the router's operator for the fingerprint
(Start-GlassController and Get-GlassRouterStatus show it on the router).

The router is checked to read as HOST or HOST:PORT (no lookup is made), and the token and the
secret as 1 to 64 printable characters without spaces or "=". Failures stop the cmdlet and
change nothing: InvalidRouter, InvalidClientSetting, InvalidGlassConfig (the existing file
cannot be read; it names the file, line and key) or ClientConfigNotSaved.
'@
    Parameters   = @{
        Router   = 'The glass controller, as HOST:PORT or HOST (port 7000). An empty string removes it.'
        Token    = 'The router''s token: its access.bindToken for New-GlassBinding, its access.connectToken for Connect-GlassChannel. An empty string removes it.'
        Secret   = 'The default channel secret: -ConnectSecret of New-GlassBinding and -Secret of Connect-GlassChannel. An empty string removes it.'
        RouterFingerprint = 'Pins the router named by -Router (else the saved router) to this key fingerprint: sha256: and 64 hex characters, as Get-GlassRouterStatus shows it on the router. An empty string removes the pin. A malformed one stops the cmdlet with InvalidRouterFingerprint; with no router named, RouterMissing.'
        PassThru = 'Writes the settings as saved (as Get-GlassClientConfig shows them). By default nothing is written.'
        WhatIf   = 'Checks the values and shows the file it would write, and writes nothing.'
    }
    Defaults     = @{
        Router = 'None: kept as saved'
        Token  = 'None: kept as saved'
        Secret = 'None: kept as saved'
        RouterFingerprint = 'None: pins kept as saved'
    }
    Outputs      = @{
        GlassClientSettings = 'With -PassThru: Router, TokenSet, SecretSet, Plaintext, Routers (the pins: HOST:PORT to fingerprint) and Path.'
    }
    Examples     = @(
        @{
            Title   = 'Name the router once'
            Code    = 'Set-GlassClientConfig -Router router.example:7000'
            Remarks = 'New-GlassBinding and Connect-GlassChannel now need no -Router.'
        }
        @{
            Title   = 'Save a token and a default secret, and show the result'
            Code    = 'Set-GlassClientConfig -Token office-token -Secret correct-horse-battery -PassThru'
            Remarks = 'TokenSet and SecretSet become True; the router saved before is kept.'
        }
        @{
            Title   = 'Pin the router''s key'
            Code    = 'Set-GlassClientConfig -Router router.example:7000 -RouterFingerprint sha256:3b6a27bcceb6a42d62a3a8d02a6f0d73653215771de243a63ac048a18b59da29'
            Remarks = 'The fingerprint comes from the router''s operator (Get-GlassRouterStatus there). A router at router.example:7000 that presents another key is refused.'
        }
        @{
            Title   = 'Remove the default secret'
            Code    = 'Set-GlassClientConfig -Secret ""'
            Remarks = 'An empty string removes a setting.'
        }
    )
    Notes        = 'The token and the secret are stored as plain text in the file (which only this user may read) and, typed on a command line, may land in the shell history.'
    RelatedLinks = @('Get-GlassClientConfig', 'New-GlassBinding', 'Connect-GlassChannel', 'about_Glass_Configuration')
}
