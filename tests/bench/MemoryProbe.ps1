# Dot-sourced by the benchmark's and the tests' host scripts: answers a memory question about this
# process, which only the process itself can see.

function Write-GlassMemoryAnswer {
    <#
    When "<ReadyFile>.memory-request" exists: collects garbage fully and writes
    "<ReadyFile>.memory.json" (whole, then renamed) with
      managedBytes     GC.GetTotalMemory after a full, compacting, aggressive collection: live managed objects
      heapSizeBytes    GCMemoryInfo.HeapSizeBytes (the GC heap, including fragmentation)
      committedBytes   GCMemoryInfo.TotalCommittedBytes (what the GC has committed from the OS)
      workingSetBytes  Environment.WorkingSet (the process's resident set)
    The caller polls this; the asker reads RSS and PSS from /proc itself.
    #>
    param([Parameter(Mandatory)] [string] $ReadyFile)
    $request = "$ReadyFile.memory-request"
    $answer = "$ReadyFile.memory.json"
    if (-not (Test-Path -LiteralPath $request)) { return }
    Remove-Item -LiteralPath $request
    # Aggressive: the GC also gives its free memory back to the kernel. What it keeps otherwise
    # (its allocation budget, regions not yet decommitted) is a few MB whatever the number of
    # sessions, and came and went between snapshots by more than 10,000 sessions hold themselves.
    [GC]::Collect(2, [GCCollectionMode]::Aggressive, $true, $true)
    [GC]::WaitForPendingFinalizers()
    $managed = [GC]::GetTotalMemory($true)
    $info = [GC]::GetGCMemoryInfo()
    [ordered]@{
        managedBytes    = $managed
        heapSizeBytes   = $info.HeapSizeBytes
        committedBytes  = $info.TotalCommittedBytes
        workingSetBytes = [Environment]::WorkingSet
    } | ConvertTo-Json -Compress | Set-Content -LiteralPath "$answer.tmp"
    Move-Item -Force -LiteralPath "$answer.tmp" -Destination $answer
}
