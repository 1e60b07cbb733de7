@{
    Synopsis     = 'Starts a whole glass router from one YAML file: the translator, then the controller; with -Wait, runs in the foreground until Ctrl+C or SIGTERM.'
    Description  = @'
Start-GlassRouter reads the router configuration file first, so a wrong file fails before
anything starts (InvalidGlassConfig, naming the file, line and key). It then runs
Start-GlassTranslator -ConfigPath and Start-GlassController -ConfigPath with that file, in that
order, and writes both jobs.

With -Wait it writes nothing and runs in the foreground until Ctrl+C or SIGTERM, or until
either part stops by itself (its job failed). It then stops the controller, then the translator
(which removes its iptables rules, sysctls, tun device and socket), removes both jobs and writes
the errors they reported. That is what a service manager wants: examples/glass-router.service
runs it under systemd.

It needs root, as Start-GlassTranslator does. A part that fails to start is a terminating error
from that cmdlet (see Start-GlassTranslator and Start-GlassController).
'@
    Parameters   = @{
        ConfigPath = 'The router configuration file in YAML (see about_Glass_Configuration and examples/router.yaml). Required. Every key in it is optional.'
        Wait       = 'Runs in the foreground until Ctrl+C or SIGTERM, or until the translator or the controller stops by itself; then stops both and cleans up. Without it, the cmdlet returns the two jobs and they run in the background of this session.'
        WhatIf     = 'Checks the file and starts nothing.'
    }
    Outputs      = @{
        GlassTranslatorJob = 'Without -Wait: the translator''s job (see Start-GlassTranslator).'
        GlassControllerJob = 'Without -Wait: the controller''s job (see Start-GlassController).'
    }
    Examples     = @(
        @{
            Title   = 'Run a router in the foreground'
            Code    = 'Start-GlassRouter -ConfigPath ./examples/router.yaml -Wait'
            Remarks = 'As root. Ctrl+C stops the controller and the translator and removes everything they changed.'
        }
        @{
            Title   = 'Start a router in the background of this session'
            Code    = @'
$router = Start-GlassRouter ./examples/router.yaml
$router | Format-Table Name, State
$router | Remove-Job -Force
'@
            Remarks = 'Both jobs run until stopped; Remove-Job -Force stops them and removes them from the session.'
        }
        @{
            Title   = 'As a systemd service'
            Code    = 'pwsh -NoProfile -NonInteractive -Command "Import-Module Glass; Start-GlassRouter -ConfigPath /etc/glass/router.yaml -Wait -Verbose"'
            Remarks = 'The ExecStart of examples/glass-router.service: systemd''s SIGTERM ends the wait, and pwsh exits after both parts have stopped.'
        }
        @{
            Title   = 'Check a file without starting anything'
            Code    = 'Start-GlassRouter -ConfigPath /etc/glass/router.yaml -WhatIf'
            Remarks = 'A wrong file fails with an InvalidGlassConfig error such as "router.yaml:4:3: unknown key ''controller.prot''".'
        }
    )
    Notes        = 'When the translator starts but the controller then fails to start, the translator''s job keeps running in the session; stop it with Get-Job -Name GlassTranslator-* | Remove-Job -Force.'
    RelatedLinks = @('Start-GlassTranslator', 'Start-GlassController', 'about_Glass', 'about_Glass_Configuration')
}
