using Incept.Registry;

namespace Incept.Training;

/// <summary>What to train and how; every value not given comes from the recipe or the data.</summary>
public sealed record TrainOptions
{
    /// <summary>Registry name of the architecture.</summary>
    public string Model { get; init; } = "googlenet";

    /// <summary>
    /// An architecture outside the registry (an experiment's ablation, such as a model with other residual scales);
    /// when set it is trained instead of <see cref="Model"/>. Its weights can be evaluated in the run but not reloaded
    /// by name.
    /// </summary>
    public ModelSpec? Architecture { get; init; }

    /// <summary>The recipe (optimizer, schedule, regularisation).</summary>
    public Recipe Recipe { get; init; } = Recipe.Get("fast");

    /// <summary>Epochs; null takes the recipe's.</summary>
    public int? Epochs { get; init; }

    /// <summary>Batch size; null takes the recipe's.</summary>
    public int? BatchSize { get; init; }

    /// <summary>Peak learning rate; null scales the recipe's to the batch size (linear rule).</summary>
    public double? LearningRate { get; init; }

    /// <summary>Width multiplier (0.25–1).</summary>
    public double Width { get; init; } = 1.0;

    /// <summary>Input side in pixels; null takes the data's native size for small images, else the model's default.</summary>
    public int? InputSize { get; init; }

    /// <summary>Use the small-input stem; null decides from the input size (64 px or less).</summary>
    public bool? SmallInput { get; init; }

    /// <summary>Build and train the auxiliary heads; null: when the family has them and the recipe weighs them.</summary>
    public bool? Aux { get; init; }

    /// <summary>Fraction of the training set held out to pick the best epoch.</summary>
    public double ValidationFraction { get; init; } = 0.05;

    /// <summary>Seed of every random choice (initialisation, order, augmentation, dropout).</summary>
    public int Seed { get; init; }

    /// <summary>Run folder: checkpoints, logs, plots and the final weights.</summary>
    public string OutDir { get; init; } = "runs/train";

    /// <summary>Continue from the last checkpoint in <see cref="OutDir"/>.</summary>
    public bool Resume { get; init; }

    /// <summary>Device to train on.</summary>
    public string Device { get; init; } = "cpu";

    /// <summary>Threads preparing batches beside the computation.</summary>
    public int Workers { get; init; } = 2;

    /// <summary>
    /// Called on the training thread after every optimizer step (after the moving average is updated), with the
    /// model in training mode; the trainer puts the model back into training mode afterwards, so the callback may
    /// evaluate it. A callback that neither changes the parameters nor draws from torch's global generator leaves the
    /// run's results unchanged. To stop early, cancel the token given to <see cref="Trainer.Run"/>.
    /// </summary>
    public Action<TrainStep>? OnStep { get; init; }

    /// <summary>Stop after this many epochs of this invocation (for tests and time-boxed runs); null runs to the end.</summary>
    public int? StopAfterEpochs { get; init; }
}
