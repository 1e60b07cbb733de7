# A fast slice of the fuzz run (./build.ps1 bench runs a million inputs): random and mutated
# packets through the real parsers and splice engine; no exception may escape, no state may leak.

Describe 'The packet path under random and hostile input' {
    It 'survives 20,000 fuzzed packets with its invariants intact' {
        $bench = if ($env:GLASS_BENCH) { $env:GLASS_BENCH } else { Join-Path $PSScriptRoot '../Glass.Bench/bin/Release/net10.0/glass-bench.dll' }
        Test-Path $bench | Should -BeTrue -Because 'build.ps1 build compiles glass-bench'
        $out = & dotnet $bench fuzz --inputs 20000 --seed 7 2>&1
        $LASTEXITCODE | Should -Be 0 -Because ($out -join "`n")
        ($out -join "`n") | Should -Match 'PASS: 20,000 inputs'
    }
}
