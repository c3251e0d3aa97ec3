using Incept.Weights;
using Incept.Registry;

namespace Incept.Training;

/// <summary>What to train and how; every value not given comes from the recipe or the data.</summary>
public sealed record TrainOptions
{
    /// <summary>Registry name of the architecture (with <see cref="FineTune"/>, the weights' architecture is used instead).</summary>
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

    /// <summary>Width multiplier (0.25–1); with <see cref="FineTune"/>, the weights' width is used instead.</summary>
    public double Width { get; init; } = 1.0;

    /// <summary>Input side in pixels; null takes the data's native size for small images, else the model's default.</summary>
    public int? InputSize { get; init; }

    /// <summary>
    /// Use the small-input stem; null decides from the input size (64 px or less). With <see cref="FineTune"/> the stem
    /// is the weights' and a different value is refused.
    /// </summary>
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
    /// Train in the channels-last memory layout (convolution weights and activations stored N×H×W×C), which libtorch's
    /// oneDNN convolutions run markedly faster on the CPU. The numbers are the same up to rounding; saved weights and
    /// checkpoints do not depend on it.
    /// </summary>
    public bool ChannelsLast { get; init; } = true;

    /// <summary>
    /// On CPUs with 512-bit vectors, compute the stride-1 3×3, 5×5, 1×7 and 7×1 convolutions of a training step on grids of 28×28
    /// and more (14×14 for layers with many channels) by Winograd's method (<see cref="Layers.WinogradTraining"/>): the forward pass and the input
    /// gradient with about half the multiplications, the weight gradient without im2col buffers. The numbers equal
    /// libtorch's up to float32 rounding. Needs <see cref="ChannelsLast"/>; no effect elsewhere or on other devices.
    /// On by default.
    /// </summary>
    public bool Winograd { get; init; } = true;

    /// <summary>
    /// On CPUs under Linux x86-64, serve each training step's large tensors from one buffer laid out from the first
    /// step's allocations (<see cref="Runtime.StepMemory"/>), so that the step's peak memory is what it holds live and
    /// not the allocator's free memory between its tensors. The numbers do not change. On by default.
    /// </summary>
    public bool PlanMemory { get; init; } = true;

    /// <summary>
    /// Compute the convolutions and linear layers in bfloat16 with float32 master weights
    /// (<see cref="BFloat16Compute"/>): faster on CPUs with AVX-512 BF16 or AMX, at the cost of bfloat16 rounding
    /// in the forward and backward passes. Evaluation, the optimizer, checkpoints and saved weights stay float32.
    /// </summary>
    public bool BFloat16 { get; init; }

    /// <summary>
    /// Views each image is scored over when the run evaluates (validation and test, every epoch): none, or the image and its
    /// mirror image (<see cref="Training.TestTimeAugmentation"/>). It changes the evaluation only, so a run may resume with
    /// another setting.
    /// </summary>
    public TestTimeAugmentation TestTimeAugmentation { get; init; }

    /// <summary>
    /// Evaluate the test split after every epoch (the default, for the curves), or only once at the end, on the weights
    /// the run keeps; the latter saves a test pass per epoch, and the final pass counts in the run's time. The kept
    /// weights are the best epoch by validation accuracy, or, without a validation split, the latest epoch.
    /// </summary>
    public bool TestEachEpoch { get; init; } = true;

    /// <summary>
    /// Called on the training thread after every optimizer step (after the moving average is updated), with the
    /// model in training mode; the trainer puts the model back into training mode afterwards, so the callback may
    /// evaluate it. A callback that neither changes the parameters nor draws from torch's global generator leaves the
    /// run's results unchanged. To stop early, cancel the token given to <see cref="Trainer.Run"/>.
    /// </summary>
    public Action<TrainStep>? OnStep { get; init; }

    /// <summary>Stop after this many epochs of this invocation (for tests and time-boxed runs); null runs to the end.</summary>
    public int? StopAfterEpochs { get; init; }

    /// <summary>Start from pretrained weights with a new classifier (fine-tuning) instead of from scratch; null: from scratch.</summary>
    public FineTuneOptions? FineTune { get; init; }
}

/// <summary>
/// Fine-tuning: the model, its width, stem and input channels come from <see cref="Weights"/>; its classifier is replaced
/// by a fresh one for the data's classes and the auxiliary heads are left out. By default the preprocessing is the
/// weights' (input size, crop, interpolation, mean and standard deviation), so that the backbone sees inputs prepared as
/// it was trained; grayscale data is repeated to three channels for RGB weights.
/// </summary>
public sealed record FineTuneOptions
{
    /// <summary>The pretrained weights: a file Incept saved, or a published or converted checkpoint in another key scheme.</summary>
    public required string Weights { get; init; }

    /// <summary>
    /// How to read <see cref="Weights"/> (model name for files that do not say, key scheme, strictness);
    /// <see cref="CheckpointOptions.SkipClassifier"/>, <see cref="CheckpointOptions.NumClasses"/> and
    /// <see cref="CheckpointOptions.Device"/> are set by the trainer.
    /// </summary>
    public CheckpointOptions Load { get; init; } = new();

    /// <summary>
    /// Train only the new classifier: every other parameter is frozen and every BatchNorm layer of the backbone stays in
    /// evaluation mode, so its running statistics do not change (<see cref="Freezing"/>).
    /// </summary>
    public bool FreezeBackbone { get; init; }

    /// <summary>
    /// With <see cref="FreezeBackbone"/>: after this many epochs the whole network trains (BatchNorm layers back in
    /// training mode) with a new optimizer over all parameters; null keeps the backbone frozen to the end.
    /// </summary>
    public int? UnfreezeAfter { get; init; }
}
