using System.Text.Json.Serialization;

namespace Incept.Reproduce;

/// <summary>What an experiment says about a paper's claim.</summary>
[JsonConverter(typeof(JsonStringEnumConverter<Verdict>))]
public enum Verdict
{
    /// <summary>The measurement agrees with the paper.</summary>
    [JsonStringEnumMemberName("supported")] Supported,

    /// <summary>The measurement contradicts the paper.</summary>
    [JsonStringEnumMemberName("not supported")] NotSupported,

    /// <summary>The measurement cannot decide (too small an effect for the budget, or a run that did not learn).</summary>
    [JsonStringEnumMemberName("inconclusive")] Inconclusive,
}

/// <summary>One row of a claim's results: a quantity, the paper's value and the measured one.</summary>
/// <param name="Quantity">What is measured.</param>
/// <param name="Paper">The paper's figure, or empty where the paper gives none.</param>
/// <param name="Measured">The measured figure.</param>
public sealed record Measurement(string Quantity, string Paper, string Measured);

/// <summary>One evaluation during a training run.</summary>
/// <param name="Step">Optimizer steps done.</param>
/// <param name="Loss">Mean cross-entropy on the evaluation images (no smoothing).</param>
/// <param name="Top1">Top-1 accuracy on the evaluation images.</param>
/// <param name="Ece">Expected calibration error (15 bins) on the evaluation images.</param>
/// <param name="Probes">Further measurements of the model at this step (such as the fraction of dead channels).</param>
public sealed record EvalPoint(long Step, double Loss, double Top1, double Ece, IReadOnlyDictionary<string, double> Probes);

/// <summary>One point of a per-step series.</summary>
/// <param name="Step">Optimizer steps done.</param>
/// <param name="Value">The value after that step.</param>
public readonly record struct StepValue(long Step, double Value);

/// <summary>One training run of an experiment: its settings and curves.</summary>
public sealed record VariantRun
{
    /// <summary>The run's label in tables and plots (such as <c>BN ×5 lr</c>).</summary>
    public required string Label { get; init; }

    /// <summary>The architecture trained (a registry name or an experiment's variant).</summary>
    public required string Model { get; init; }

    /// <summary>The seed of the run.</summary>
    public required int Seed { get; init; }

    /// <summary>The peak learning rate.</summary>
    public required double LearningRate { get; init; }

    /// <summary>Trainable parameters of the model.</summary>
    public required long Params { get; init; }

    /// <summary>Multiply-accumulates per image at the run's input size.</summary>
    public required long Macs { get; init; }

    /// <summary>Steps the budget planned.</summary>
    public required long PlannedSteps { get; init; }

    /// <summary>Steps done (fewer than planned when the run diverged and was stopped).</summary>
    public required long Steps { get; init; }

    /// <summary>Wall-clock seconds of the run, evaluations included.</summary>
    public required double Seconds { get; init; }

    /// <summary>Step at which the loss became non-finite or exploded, or null.</summary>
    public long? DivergedAtStep { get; init; }

    /// <summary>Whether the run diverged.</summary>
    public bool Diverged => DivergedAtStep is not null;

    /// <summary>The training loss after every step.</summary>
    public required IReadOnlyList<StepValue> TrainLoss { get; init; }

    /// <summary>The evaluations, every <see cref="Budget.EvalEvery"/> steps and at the end.</summary>
    public required IReadOnlyList<EvalPoint> Evaluations { get; init; }

    /// <summary>The reliability-diagram bins (15) of the last evaluation.</summary>
    public IReadOnlyList<Training.CalibrationBin> FinalCalibration { get; init; } = [];

    /// <summary>Top-1 accuracy at the last evaluation.</summary>
    public double FinalTop1 => Evaluations.Count == 0 ? double.NaN : Evaluations[^1].Top1;

    /// <summary>Expected calibration error at the last evaluation.</summary>
    public double FinalEce => Evaluations.Count == 0 ? double.NaN : Evaluations[^1].Ece;

    /// <summary>The best top-1 accuracy of any evaluation.</summary>
    public double BestTop1 => Evaluations.Count == 0 ? double.NaN : Evaluations.Max(e => e.Top1);

    /// <summary>Whether each evaluation image was classified correctly at the last evaluation (for paired comparisons).</summary>
    [JsonIgnore]
    public IReadOnlyList<bool> FinalCorrect { get; init; } = [];

    /// <summary>The top-1 accuracy curve as (step, accuracy).</summary>
    [JsonIgnore]
    public IReadOnlyList<StepValue> Top1Curve => [.. Evaluations.Select(e => new StepValue(e.Step, e.Top1))];
}

/// <summary>The outcome of one claim's experiment, as <c>result.json</c> records it.</summary>
public sealed record ClaimResult
{
    /// <summary>The claim's name (such as <c>batchnorm</c>).</summary>
    public required string Claim { get; init; }

    /// <summary>The paper that makes the claim.</summary>
    public required string Paper { get; init; }

    /// <summary>Where in the paper (section, table or figure).</summary>
    public required string Source { get; init; }

    /// <summary>The paper's statement.</summary>
    public required string Statement { get; init; }

    /// <summary>The paper's figure, in a few words.</summary>
    public required string PaperFigure { get; init; }

    /// <summary>The measured figure, in a few words.</summary>
    public required string MeasuredFigure { get; init; }

    /// <summary>The verdict.</summary>
    public required Verdict Verdict { get; init; }

    /// <summary>Why the verdict is what it is.</summary>
    public required string Reason { get; init; }

    /// <summary>Every measured quantity, with the paper's value beside it where it gives one.</summary>
    public required IReadOnlyList<Measurement> Measurements { get; init; }

    /// <summary>How the experiment was set up (models, recipe, data), as sentences.</summary>
    public required IReadOnlyList<string> Setup { get; init; }

    /// <summary>Caveats: where the experiment differs from the paper's.</summary>
    public required IReadOnlyList<string> Notes { get; init; }

    /// <summary>The training runs, with their curves (empty for arithmetic claims).</summary>
    public required IReadOnlyList<VariantRun> Runs { get; init; }

    /// <summary>The PNG plots written, as file names in the output folder.</summary>
    public required IReadOnlyList<string> Plots { get; init; }

    /// <summary>Whether the quick budget was used.</summary>
    public required bool Quick { get; init; }

    /// <summary>The budget used.</summary>
    public required Budget Budget { get; init; }

    /// <summary>The seed of the experiment.</summary>
    public required int Seed { get; init; }

    /// <summary>When the experiment started.</summary>
    public required DateTimeOffset Started { get; init; }

    /// <summary>Wall-clock seconds of the experiment.</summary>
    public required double Seconds { get; init; }

    /// <summary>The machine it ran on (processor count, operating system, runtime).</summary>
    public required string Machine { get; init; }

    /// <summary>The output folder.</summary>
    public required string OutDir { get; init; }
}
