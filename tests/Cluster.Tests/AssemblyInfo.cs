// Every test starts real processes on a 2-core machine and measures timings: one at a time.
[assembly: CollectionBehavior(DisableTestParallelization = true)]
