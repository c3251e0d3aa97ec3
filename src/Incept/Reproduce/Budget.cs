namespace Incept.Reproduce;

/// <summary>
/// How much an experiment trains: how many Fashion-MNIST images, how many epochs, how often it evaluates, how wide
/// the models are. Every run of a claim shares its budget, so the runs differ only in what the claim varies.
/// </summary>
public sealed record Budget
{
    /// <summary>Training images: the first ones of the training set, the same for every run.</summary>
    public int TrainImages { get; init; } = 2048;

    /// <summary>Test images each evaluation uses: the first ones of the test set.</summary>
    public int EvalImages { get; init; } = 1000;

    /// <summary>Passes over the training images.</summary>
    public int Epochs { get; init; } = 4;

    /// <summary>Images per step.</summary>
    public int BatchSize { get; init; } = 32;

    /// <summary>Steps between two evaluations (the curves' resolution); the last step is always evaluated.</summary>
    public int EvalEvery { get; init; } = 16;

    /// <summary>Width multiplier of the models (<see cref="Incept.Models.ModelConfig.Width"/>).</summary>
    public double Width { get; init; } = 0.25;

    /// <summary>Side of the network input in pixels (Fashion-MNIST's 28, or larger to make room for a stem).</summary>
    public int InputSize { get; init; } = 28;

    /// <summary>Seeds per configuration: each configuration trains once per seed, from the run's seed upwards.</summary>
    public int Seeds { get; init; } = 1;

    /// <summary>
    /// Estimated wall-clock minutes of the whole claim on an otherwise idle machine with 2 CPU cores (0 for arithmetic
    /// claims), from the models' measured throughput; a shared machine takes longer.
    /// </summary>
    public double EstimatedMinutes { get; init; }

    /// <summary>Optimizer steps of one run: epochs × whole batches per epoch.</summary>
    public long Steps => (long)Epochs * (TrainImages / Math.Max(1, BatchSize));

    /// <summary>Throws an <see cref="InceptException"/> naming the first value that cannot work.</summary>
    public void Validate()
    {
        if (BatchSize < 2) throw new InceptException($"The budget's batch size must be at least 2 (BatchNorm needs two samples); got {BatchSize}.");
        if (TrainImages < BatchSize) throw new InceptException($"The budget needs at least one batch of training images ({BatchSize}); got {TrainImages}.");
        if (EvalImages < 1) throw new InceptException($"The budget needs at least one test image; got {EvalImages}.");
        if (Epochs < 1) throw new InceptException($"The budget needs at least one epoch; got {Epochs}.");
        if (EvalEvery < 1) throw new InceptException($"The budget's evaluation interval must be at least one step; got {EvalEvery}.");
        if (Seeds < 1) throw new InceptException($"The budget needs at least one seed; got {Seeds}.");
        if (InputSize < 1) throw new InceptException($"The budget's input size must be positive; got {InputSize}.");
    }
}
