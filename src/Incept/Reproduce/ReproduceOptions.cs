namespace Incept.Reproduce;

/// <summary>How to run a claim's experiment.</summary>
public sealed record ReproduceOptions
{
    /// <summary>Use the claim's quick budget (about 15 minutes or less on 2 CPU cores) instead of the full one.</summary>
    public bool Quick { get; init; }

    /// <summary>A budget of one's own instead of the claim's (smaller for tests, larger for a closer look).</summary>
    public Budget? Budget { get; init; }

    /// <summary>The folder that receives report.md, result.json and the plots.</summary>
    public string OutDir { get; init; } = "runs/reproduce";

    /// <summary>Seed of every random choice; the same seed gives the same numbers.</summary>
    public int Seed { get; init; }

    /// <summary>The data (<c>fashion-mnist</c> or a folder of Fashion-MNIST IDX files).</summary>
    public string Data { get; init; } = Incept.Data.DataSources.FashionMnistName;

    /// <summary>Device to train on.</summary>
    public string Device { get; init; } = "cpu";

    /// <summary>Threads preparing batches beside the computation.</summary>
    public int Workers { get; init; } = 2;

    /// <summary>The budget these options select for <paramref name="claim"/>.</summary>
    public Budget BudgetFor(Claim claim)
    {
        ArgumentNullException.ThrowIfNull(claim);
        return Budget ?? (Quick ? claim.Quick : claim.Full);
    }
}

/// <summary>Progress of an experiment's training run.</summary>
/// <param name="Run">The run's label.</param>
/// <param name="Step">Steps done.</param>
/// <param name="Steps">Steps planned.</param>
/// <param name="Loss">The last step's training loss.</param>
/// <param name="Top1">Top-1 accuracy of the last evaluation, or null before the first.</param>
/// <param name="EvaluatedAt">The step of that evaluation, or null before the first.</param>
public sealed record ReproduceProgress(string Run, long Step, long Steps, double Loss, double? Top1, long? EvaluatedAt = null);
