// Each test class runs its own cluster and measures delivery in time: one at a time.
[assembly: CollectionBehavior(DisableTestParallelization = true)]
