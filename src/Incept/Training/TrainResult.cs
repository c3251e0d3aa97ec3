namespace Incept.Training;

/// <summary>One epoch's numbers, as written to <c>metrics.jsonl</c>.</summary>
public sealed record EpochMetrics(
    int Epoch, double LearningRate, double TrainLoss, double TrainTop1,
    double ValidationLoss, double ValidationTop1, double TestLoss, double TestTop1, double TestTop5,
    double Seconds, double ImagesPerSecond);

/// <summary>Progress of a run, reported while it trains.</summary>
/// <param name="Phase"><c>train</c>, <c>validate</c> or <c>test</c>.</param>
/// <param name="Epoch">Epoch (0-based).</param>
/// <param name="Epochs">Epochs of the run.</param>
/// <param name="Step">Batches done in this phase.</param>
/// <param name="Steps">Batches of this phase.</param>
/// <param name="Loss">Mean loss so far in this phase.</param>
/// <param name="Top1">Accuracy so far in this phase.</param>
/// <param name="ImagesPerSecond">Throughput of this phase.</param>
public sealed record TrainProgress(string Phase, int Epoch, int Epochs, int Step, int Steps, double Loss, double Top1, double ImagesPerSecond);

/// <summary>One optimizer step of a run, as given to <see cref="TrainOptions.OnStep"/>.</summary>
/// <param name="Model">The model being trained (its raw weights, not the moving average).</param>
/// <param name="Epoch">Epoch (0-based).</param>
/// <param name="Step">Steps done in this epoch (1 after the epoch's first step).</param>
/// <param name="StepsPerEpoch">Steps in one epoch.</param>
/// <param name="Loss">The step's training loss (including auxiliary losses and smoothing).</param>
/// <param name="LearningRate">The learning rate the step used.</param>
public sealed record TrainStep(Models.InceptionModel Model, int Epoch, int Step, int StepsPerEpoch, double Loss, double LearningRate)
{
    /// <summary>Steps done since the start of the run (1 after its first step).</summary>
    public long GlobalStep => (long)Epoch * StepsPerEpoch + Step;
}

/// <summary>What a finished run produced.</summary>
public sealed record TrainResult
{
    /// <summary>The run folder.</summary>
    public required string RunDir { get; init; }

    /// <summary>Registry name of the architecture trained.</summary>
    public string Model { get; init; } = "";

    /// <summary>The final weights (the best epoch by validation accuracy), loadable on their own.</summary>
    public required string Weights { get; init; }

    /// <summary>Epochs trained in total.</summary>
    public required int Epochs { get; init; }

    /// <summary>Wall-clock seconds of training and evaluation, across resumed invocations.</summary>
    public required double Seconds { get; init; }

    /// <summary>Test top-1 accuracy of the final weights.</summary>
    public required double TestTop1 { get; init; }

    /// <summary>Test top-5 accuracy of the final weights.</summary>
    public required double TestTop5 { get; init; }

    /// <summary>Epoch whose weights were kept.</summary>
    public required int BestEpoch { get; init; }

    /// <summary>Per-epoch numbers.</summary>
    public required IReadOnlyList<EpochMetrics> History { get; init; }

    /// <summary>Files the run wrote besides the weights (plots, logs).</summary>
    public required IReadOnlyDictionary<string, string> Artifacts { get; init; }

    /// <summary>Whether the run stopped early (<see cref="TrainOptions.StopAfterEpochs"/>) and can be resumed.</summary>
    public bool Incomplete { get; init; }
}
