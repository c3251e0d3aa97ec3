using System.Diagnostics;
using Incept.Analysis;
using Incept.Data;
using Incept.Models;
using Incept.Registry;
using Incept.Training;
using TorchSharp;
using DataLoader = Incept.Data.DataLoader;
using static TorchSharp.torch;

namespace Incept.Reproduce;

/// <summary>One training run an experiment asks for.</summary>
internal sealed record VariantSpec
{
    /// <summary>Label in tables and plots.</summary>
    public required string Label { get; init; }

    /// <summary>Registry name of the model (ignored when <see cref="Architecture"/> is set).</summary>
    public string Model { get; init; } = "googlenet";

    /// <summary>An experiment's own architecture.</summary>
    public ModelSpec? Architecture { get; init; }

    /// <summary>The recipe.</summary>
    public required Recipe Recipe { get; init; }

    /// <summary>Peak learning rate; null: the recipe's at the budget's batch size.</summary>
    public double? LearningRate { get; init; }

    /// <summary>Train with auxiliary heads.</summary>
    public bool Aux { get; init; }

    /// <summary>Offset added to the experiment's seed (for repeats).</summary>
    public int SeedOffset { get; init; }

    /// <summary>Further measurements of the model at each evaluation, by name.</summary>
    public IReadOnlyDictionary<string, Func<InceptionModel, double>> Probes { get; init; } = new Dictionary<string, Func<InceptionModel, double>>();
}

/// <summary>
/// What a claim's experiment works with: its budget and options, the data (opened on first use, cut to the budget),
/// training runs through <see cref="Trainer"/> with per-step curves, and the output folder for plots.
/// </summary>
internal sealed class ExperimentContext : IDisposable
{
    private readonly Lazy<DataSource> data;
    private readonly List<VariantRun> runs = [];
    private readonly List<string> plots = [];
    private readonly List<Tensor> owned = [];
    private int runCount;

    public ExperimentContext(Claim claim, Budget budget, ReproduceOptions options, string outDir, string scratchDir,
        IProgress<ReproduceProgress>? progress, CancellationToken cancellation)
    {
        Claim = claim;
        Budget = budget;
        Options = options;
        OutDir = outDir;
        ScratchDir = scratchDir;
        Progress = progress;
        Cancellation = cancellation;
        data = new Lazy<DataSource>(() => OpenData(options.Data, budget));
    }

    public Claim Claim { get; }

    public Budget Budget { get; }

    public ReproduceOptions Options { get; }

    public string OutDir { get; }

    public string ScratchDir { get; }

    public IProgress<ReproduceProgress>? Progress { get; }

    public CancellationToken Cancellation { get; }

    /// <summary>The data cut to the budget: the first <see cref="Budget.TrainImages"/> training and <see cref="Budget.EvalImages"/> test images.</summary>
    public DataSource Data => data.Value;

    /// <summary>The runs trained so far.</summary>
    public IReadOnlyList<VariantRun> Runs => runs;

    /// <summary>The plots written so far (file names in <see cref="OutDir"/>).</summary>
    public IReadOnlyList<string> Plots => plots;

    /// <summary>The evaluation preprocessing at the budget's input size.</summary>
    public PreprocessSpec Preprocess => new(Budget.InputSize, 1.0, "bilinear", Data.Mean, Data.Std, false, 1.0);

    /// <summary>The model configuration the trainer builds for these data and this budget.</summary>
    public ModelConfig Config(bool aux = false) => new()
    {
        NumClasses = Data.Train.ClassNames.Count, InChannels = Data.Mean.Length, AuxLogits = aux, Width = Budget.Width, SmallInput = true,
    };

    /// <summary>Writes a plot into the output folder through <paramref name="draw"/> (given the full path) and records it.</summary>
    public void Plot(string fileName, Action<string> draw)
    {
        ArgumentNullException.ThrowIfNull(draw);
        draw(Path.Combine(OutDir, fileName));
        plots.Add(fileName);
    }

    /// <summary>The first <paramref name="count"/> evaluation images as one normalised batch (owned by the context).</summary>
    public Tensor ProbeImages(int count)
    {
        var subset = new Subset(Data.Test, Enumerable.Range(0, Math.Min(count, Data.Test.Count)));
        var loader = new DataLoader(subset, ImagePipeline.SmallImageEvaluation(Preprocess), new DataLoaderOptions { BatchSize = subset.Count, Workers = 0 });
        using var batch = loader.Epoch(0).First();
        var images = batch.Images.clone();
        owned.Add(images);
        return images;
    }

    /// <summary>
    /// Trains one variant with the <see cref="Trainer"/> on the budget's data, recording the loss after every step and
    /// evaluating on the evaluation images every <see cref="Budget.EvalEvery"/> steps and at the end. A run whose loss
    /// becomes non-finite or explodes (<see cref="Measures.IsDivergent"/>) is evaluated once more and stopped.
    /// </summary>
    public VariantRun Train(VariantSpec spec)
    {
        ArgumentNullException.ThrowIfNull(spec);
        Cancellation.ThrowIfCancellationRequested();
        var source = Data;
        int seed = Options.Seed + spec.SeedOffset;
        long planned = Budget.Steps;
        int classes = source.Train.ClassNames.Count;
        var modelSpec = spec.Architecture ?? ModelRegistry.Get(spec.Model);
        var (parameters, macs) = Cost(modelSpec, spec.Aux);

        var evalLoader = new DataLoader(source.Test, ImagePipeline.SmallImageEvaluation(Preprocess),
            new DataLoaderOptions { BatchSize = 250, Workers = Options.Workers, Seed = seed });
        var losses = new List<StepValue>();
        var evaluations = new List<EvalPoint>();
        IReadOnlyList<bool> lastCorrect = [];
        IReadOnlyList<CalibrationBin> lastBins = [];
        double? reference = null;
        long? divergedAt = null;
        using var stop = CancellationTokenSource.CreateLinkedTokenSource(Cancellation);

        void Evaluate(InceptionModel model, long step)
        {
            var (point, correct, bins) = EvaluateModel(model, evalLoader, classes, step, torch.device(Options.Device), spec.Probes);
            evaluations.Add(point);
            lastCorrect = correct;
            lastBins = bins;
        }

        void OnStep(TrainStep s)
        {
            long step = s.GlobalStep;
            losses.Add(new StepValue(step, s.Loss));
            reference ??= Math.Max(Math.Log(classes), double.IsFinite(s.Loss) ? s.Loss : 0);
            if (Measures.IsDivergent(s.Loss, reference.Value))
            {
                divergedAt = step;
                Evaluate(s.Model, step);
                Progress?.Report(new ReproduceProgress(spec.Label, step, planned, s.Loss, evaluations[^1].Top1, evaluations[^1].Step));
                stop.Cancel();
                return;
            }

            if (step % Budget.EvalEvery == 0 || step == planned) Evaluate(s.Model, step);
            Progress?.Report(new ReproduceProgress(spec.Label, step, planned, s.Loss, evaluations.Count > 0 ? evaluations[^1].Top1 : null,
                evaluations.Count > 0 ? evaluations[^1].Step : null));
        }

        // The trainer's own per-epoch test pass and checkpoints go to a scratch folder; one batch of test images keeps
        // that pass short, the curves come from the evaluations above.
        var trainerData = source with { Test = new Subset(source.Test, Enumerable.Range(0, Math.Min(Budget.BatchSize, source.Test.Count))) };
        var options = new TrainOptions
        {
            Model = modelSpec.Name, Architecture = spec.Architecture, Recipe = spec.Recipe, Epochs = Budget.Epochs, BatchSize = Budget.BatchSize,
            LearningRate = spec.LearningRate, Width = Budget.Width, InputSize = Budget.InputSize, SmallInput = true, Aux = spec.Aux,
            ValidationFraction = 0, Seed = seed, OutDir = Path.Combine(ScratchDir, $"run{++runCount}"), Device = Options.Device,
            Workers = Options.Workers, OnStep = OnStep,
        };
        var clock = Stopwatch.StartNew();
        try
        {
            Trainer.Run(options, trainerData, null, stop.Token);
        }
        catch (OperationCanceledException) when (divergedAt is not null && !Cancellation.IsCancellationRequested)
        {
        }
        finally
        {
            if (Directory.Exists(options.OutDir)) Directory.Delete(options.OutDir, recursive: true);
        }

        var run = new VariantRun
        {
            Label = spec.Label, Model = modelSpec.Name, Seed = seed, LearningRate = options.LearningRate ?? spec.Recipe.LearningRateForBatch(Budget.BatchSize),
            Params = parameters, Macs = macs, PlannedSteps = planned, Steps = losses.Count, Seconds = clock.Elapsed.TotalSeconds,
            DivergedAtStep = divergedAt, TrainLoss = losses, Evaluations = evaluations, FinalCorrect = lastCorrect, FinalCalibration = lastBins,
        };
        runs.Add(run);
        return run;
    }

    /// <summary>Parameters and multiply-accumulates per image of <paramref name="spec"/> at the budget's width and input size.</summary>
    public (long Params, long Macs) Cost(ModelSpec spec, bool aux = false)
    {
        ArgumentNullException.ThrowIfNull(spec);
        using var model = ModelFactory.Create(spec, Config(aux));
        var summary = ModelSummary.Create(model, spec.Name, Budget.InputSize);
        return (summary.Params, summary.Macs);
    }

    private static (EvalPoint Point, bool[] Correct, IReadOnlyList<CalibrationBin> Bins) EvaluateModel(InceptionModel model, DataLoader loader, int classes, long step, Device device,
        IReadOnlyDictionary<string, Func<InceptionModel, double>> probes)
    {
        model.eval();
        var metrics = new ClassificationMetrics(classes);
        var correct = new List<bool>(loader.Dataset.Count);
        double lossSum = 0;
        using (no_grad())
        {
            foreach (var batch in loader.Epoch(0))
            {
                using (batch)
                using (NewDisposeScope())
                {
                    var x = batch.Images.to(device);
                    var y = batch.Labels.to(device);
                    var logits = model.call(x).Logits;
                    lossSum += nn.functional.cross_entropy(logits, y, reduction: nn.Reduction.Sum).item<float>();
                    metrics.Update(logits, y);
                    correct.AddRange(logits.argmax(1).eq(y).cpu().data<bool>().ToArray());
                }
            }
        }

        var probed = probes.ToDictionary(p => p.Key, p => p.Value(model));
        model.train();
        var point = new EvalPoint(step, lossSum / Math.Max(1, metrics.Count), metrics.Top1, metrics.ExpectedCalibrationError, probed);
        return (point, [.. correct], metrics.CalibrationBins);
    }

    private static DataSource OpenData(string name, Budget budget)
    {
        var source = DataSources.Open(name);
        if (source.Train.Count < budget.TrainImages || source.Test.Count < budget.EvalImages)
            throw new InceptException($"The budget needs {budget.TrainImages} training and {budget.EvalImages} test images; '{source.Name}' has {source.Train.Count} and {source.Test.Count}. Use a smaller budget or the full data set.");
        return source with
        {
            Train = new Subset(source.Train, Enumerable.Range(0, budget.TrainImages)),
            Test = new Subset(source.Test, Enumerable.Range(0, budget.EvalImages)),
        };
    }

    public void Dispose()
    {
        foreach (var t in owned) t.Dispose();
        owned.Clear();
    }
}
