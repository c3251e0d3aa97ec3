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
