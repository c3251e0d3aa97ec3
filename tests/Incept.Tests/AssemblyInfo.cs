// Torch tests share the global RNG and the intra-op thread pool: run them one at a time.
[assembly: CollectionBehavior(DisableTestParallelization = true)]
