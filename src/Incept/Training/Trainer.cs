using System.Diagnostics;
using System.Globalization;
using System.Text.Json;
using Incept.Data;
using Incept.Models;
using Incept.Registry;
using Incept.Training.Reporting;
using Incept.Weights;
using TorchSharp;
using TorchSharp.Modules;
using DataLoader = Incept.Data.DataLoader;
using static TorchSharp.torch;

namespace Incept.Training;

/// <summary>
/// Trains a registered model on a data source with a recipe: seeded and deterministic, checkpointed atomically
/// every epoch (model, optimizer, moving average, position) so that <see cref="TrainOptions.Resume"/> continues
/// bit for bit, keeping the best epoch by validation accuracy, and logging metrics.jsonl, TensorBoard events
/// and PNG plots into the run folder.
/// </summary>
public static class Trainer
{
    private const string CheckpointDir = "checkpoint";
    private static readonly JsonSerializerOptions Json = new()
    {
        PropertyNamingPolicy = JsonNamingPolicy.SnakeCaseLower,
        WriteIndented = true,
        NumberHandling = System.Text.Json.Serialization.JsonNumberHandling.AllowNamedFloatingPointLiterals,
    };

    private static readonly JsonSerializerOptions JsonLines = new(Json) { WriteIndented = false };

    /// <summary>Runs (or resumes) the training described by <paramref name="options"/> on <paramref name="data"/>.</summary>
    public static TrainResult Run(TrainOptions options, DataSource data, IProgress<TrainProgress>? progress = null, CancellationToken cancellation = default)
    {
        ArgumentNullException.ThrowIfNull(options);
        ArgumentNullException.ThrowIfNull(data);
        var plan = Plan.Create(options, data);
        Directory.CreateDirectory(options.OutDir);
        var device = torch.device(options.Device);

        manual_seed(DataLoader.SampleSeed(options.Seed, -1, -1));
        using var model = ModelFactory.Create(plan.Spec, plan.Config, device);
        if (plan.InputSize < model.MinInputSize)
            throw new InputShapeException($"{plan.Spec.Name} needs inputs of at least {model.MinInputSize} pixels with these settings; the data is {plan.InputSize}. Use --input-size {model.MinInputSize}{(plan.Config.SmallInput ? "" : " or --small-input")}.");
        if (plan.Config.AuxLogits && plan.InputSize < model.MinAuxInputSize)
            throw new InputShapeException($"{plan.Spec.Name}'s auxiliary heads need training inputs of at least {model.MinAuxInputSize} pixels; the data is {plan.InputSize}. Use --no-aux or a larger --input-size.");
        using var optimizer = plan.Recipe.CreateOptimizer(model, plan.LearningRate);
        var schedule = plan.Recipe.CreateSchedule(plan.Epochs);
        using var ema = plan.Recipe.CreateEma(model);

        var state = new RunState { Signature = plan.Signature };
        var checkpoint = Path.Combine(options.OutDir, CheckpointDir);
        if (options.Resume)
            state = LoadCheckpoint(checkpoint, plan, model, (OptimizerHelper)optimizer, ema);
        else if (File.Exists(Path.Combine(checkpoint, "state.json")))
            throw new InceptException($"'{options.OutDir}' already holds a training run. Continue it with --resume, or choose another --out.");

        var trainLoader = new DataLoader(plan.Train, plan.TrainPipeline, new DataLoaderOptions
        {
            BatchSize = plan.BatchSize, Shuffle = true, DropLast = true, Seed = options.Seed, Workers = options.Workers,
        });
        var evalOptions = new DataLoaderOptions { BatchSize = Math.Max(plan.BatchSize, 128), Workers = options.Workers, Seed = options.Seed };
        var validationLoader = plan.Validation is null ? null : new DataLoader(plan.Validation, plan.EvalPipeline, evalOptions);
        var testLoader = new DataLoader(data.Test, plan.EvalPipeline, evalOptions);
        var tensorboard = utils.tensorboard.SummaryWriter(Path.Combine(options.OutDir, "tensorboard"));
        var weightsPath = Path.Combine(options.OutDir, "model.safetensors");

        ClassificationMetrics? bestTest = null;
        int stopAt = options.StopAfterEpochs is { } n ? Math.Min(plan.Epochs, state.EpochsDone + n) : plan.Epochs;
        for (int epoch = state.EpochsDone; epoch < stopAt; epoch++)
        {
            cancellation.ThrowIfCancellationRequested();
            var clock = Stopwatch.StartNew();
            manual_seed(DataLoader.SampleSeed(options.Seed, epoch, -2));
            var (trainLoss, trainTop1, imagesPerSecond, lr) = TrainEpoch(model, optimizer, schedule, ema, plan, trainLoader, epoch, device, progress, options.OnStep, cancellation);
            ema?.Swap(model);
            try
            {
                var (valLoss, valMetrics) = validationLoader is null ? (double.NaN, null) : Evaluate(model, validationLoader, plan, device, "validate", epoch, progress);
                var (testLoss, testMetrics) = Evaluate(model, testLoader, plan, device, "test", epoch, progress);
                double score = valMetrics?.Top1 ?? testMetrics.Top1;
                state.Seconds += clock.Elapsed.TotalSeconds;
                var metrics = new EpochMetrics(epoch + 1, lr, trainLoss, trainTop1, valLoss, valMetrics?.Top1 ?? double.NaN,
                    testLoss, testMetrics.Top1, testMetrics.Top5, clock.Elapsed.TotalSeconds, imagesPerSecond);
                state.History.Add(metrics);
                if (state.BestEpoch == 0 || score > state.BestScore)
                {
                    state.BestEpoch = epoch + 1;
                    state.BestScore = score;
                    CheckpointLoader.Save(weightsPath, model, plan.Spec, plan.Preprocess, data.Train.ClassNames);
                    bestTest = testMetrics;
                }

                Log(tensorboard, metrics);
            }
            finally
            {
                ema?.Swap(model);
            }

            state.EpochsDone = epoch + 1;
            WriteMetrics(options.OutDir, state.History);
            SaveCheckpoint(checkpoint, model, (OptimizerHelper)optimizer, ema, state);
        }

        var artifacts = new Dictionary<string, string>
        {
            ["metrics"] = Path.Combine(options.OutDir, "metrics.jsonl"),
            ["tensorboard"] = Path.Combine(options.OutDir, "tensorboard"),
            ["checkpoint"] = checkpoint,
        };
        if (state.EpochsDone < plan.Epochs)
        {
            var last = state.History.LastOrDefault();
            return new TrainResult
            {
                RunDir = options.OutDir, Weights = weightsPath, Epochs = state.EpochsDone, Seconds = state.Seconds,
                TestTop1 = last?.TestTop1 ?? double.NaN, TestTop5 = last?.TestTop5 ?? double.NaN, BestEpoch = state.BestEpoch,
                History = state.History, Artifacts = artifacts, Incomplete = true,
            };
        }

        // The kept weights: the best epoch by validation accuracy. Its test metrics are at hand when that epoch ran
        // in this invocation; after a resume the saved weights are evaluated again.
        var final = bestTest ?? EvaluateSaved(weightsPath, testLoader, plan, device, progress);
        artifacts["loss_plot"] = Path.Combine(options.OutDir, "loss.png");
        artifacts["accuracy_plot"] = Path.Combine(options.OutDir, "accuracy.png");
        artifacts["confusion_plot"] = Path.Combine(options.OutDir, "confusion.png");
        WritePlots(options.OutDir, state.History, final, data.Train.ClassNames);
        return new TrainResult
        {
            RunDir = options.OutDir, Weights = weightsPath, Epochs = state.EpochsDone, Seconds = state.Seconds,
            TestTop1 = final.Top1, TestTop5 = final.Top5, BestEpoch = state.BestEpoch, History = state.History, Artifacts = artifacts,
        };
    }

    /// <summary>Evaluates <paramref name="model"/> on <paramref name="loader"/>: mean loss (no smoothing) and classification metrics.</summary>
    public static (double Loss, ClassificationMetrics Metrics) Evaluate(InceptionModel model, DataLoader loader, int numClasses, Device device,
        IProgress<TrainProgress>? progress = null, string phase = "test", int epoch = 0, int epochs = 1)
    {
        ArgumentNullException.ThrowIfNull(model);
        ArgumentNullException.ThrowIfNull(loader);
        model.eval();
        var metrics = new ClassificationMetrics(numClasses);
        double lossSum = 0;
        var clock = Stopwatch.StartNew();
        int step = 0;
        using var _ = no_grad();
        foreach (var batch in loader.Epoch(0))
        {
            using (batch)
            using (var scope = NewDisposeScope())
            {
                var x = batch.Images.to(device);
                var y = batch.Labels.to(device);
                var logits = model.call(x).Logits;
                lossSum += nn.functional.cross_entropy(logits, y, reduction: nn.Reduction.Sum).item<float>();
                metrics.Update(logits, y);
            }

            step++;
            progress?.Report(new TrainProgress(phase, epoch, epochs, step, loader.BatchCount, lossSum / metrics.Count, metrics.Top1, metrics.Count / clock.Elapsed.TotalSeconds));
        }

        return (lossSum / Math.Max(1, metrics.Count), metrics);
    }

    private static ClassificationMetrics EvaluateSaved(string weightsPath, DataLoader testLoader, Plan plan, Device device, IProgress<TrainProgress>? progress)
    {
        using var best = CheckpointLoader.Load(weightsPath, new CheckpointOptions { Device = device });
        return Evaluate(best.Model, testLoader, plan, device, "test", plan.Epochs - 1, progress).Metrics;
    }

    private static (double Loss, ClassificationMetrics Metrics) Evaluate(InceptionModel model, DataLoader loader, Plan plan, Device device, string phase, int epoch, IProgress<TrainProgress>? progress)
        => Evaluate(model, loader, plan.NumClasses, device, progress, phase, epoch, plan.Epochs);

    private static (double Loss, double Top1, double ImagesPerSecond, double LearningRate) TrainEpoch(
        InceptionModel model, optim.Optimizer optimizer, LearningRateSchedule schedule, ExponentialMovingAverage? ema, Plan plan,
        DataLoader loader, int epoch, Device device, IProgress<TrainProgress>? progress, Action<TrainStep>? onStep, CancellationToken cancellation)
    {
        model.train();
        int steps = loader.BatchCount;
        double lossSum = 0, lr = 0, stepLoss = 0;
        long correct = 0, seen = 0;
        var clock = Stopwatch.StartNew();
        int step = 0;
        foreach (var batch in loader.Epoch(epoch))
        {
            cancellation.ThrowIfCancellationRequested();
            using (batch)
            using (var scope = NewDisposeScope())
            {
                lr = schedule.Apply(optimizer, epoch, step, steps);
                var x = batch.Images.to(device);
                var y = batch.Labels.to(device);
                optimizer.zero_grad();
                var output = model.call(x);
                var loss = Losses.Total(output, y, plan.Recipe.AuxWeight, plan.Recipe.LabelSmoothing);
                loss.backward();
                if (plan.Recipe.GradClipNorm is { } clip) GradientClipping.ClipByGlobalNorm(model.parameters(), clip);
                optimizer.step();
                ema?.Update(model);
                stepLoss = loss.item<float>();
                lossSum += stepLoss * batch.Count;
                correct += output.Logits.argmax(1).eq(y).sum().item<long>();
                seen += batch.Count;
            }

            step++;
            progress?.Report(new TrainProgress("train", epoch, plan.Epochs, step, steps, lossSum / seen, (double)correct / seen, seen / clock.Elapsed.TotalSeconds));
            if (onStep is not null)
            {
                onStep(new TrainStep(model, epoch, step, steps, stepLoss, lr));
                model.train();
            }
        }

        return (lossSum / Math.Max(1, seen), (double)correct / Math.Max(1, seen), seen / clock.Elapsed.TotalSeconds, lr);
    }

    private static void Log(SummaryWriter writer, EpochMetrics m)
    {
        writer.add_scalar("train/loss", (float)m.TrainLoss, m.Epoch);
        writer.add_scalar("train/top1", (float)m.TrainTop1, m.Epoch);
        writer.add_scalar("train/lr", (float)m.LearningRate, m.Epoch);
        if (!double.IsNaN(m.ValidationTop1))
        {
            writer.add_scalar("validation/loss", (float)m.ValidationLoss, m.Epoch);
            writer.add_scalar("validation/top1", (float)m.ValidationTop1, m.Epoch);
        }

        writer.add_scalar("test/loss", (float)m.TestLoss, m.Epoch);
        writer.add_scalar("test/top1", (float)m.TestTop1, m.Epoch);
        writer.add_scalar("test/top5", (float)m.TestTop5, m.Epoch);
    }

    private static void WriteMetrics(string dir, IReadOnlyList<EpochMetrics> history)
    {
        var lines = string.Join("\n", history.Select(h => JsonSerializer.Serialize(h, JsonLines))) + "\n";
        AtomicFile.Write(Path.Combine(dir, "metrics.jsonl"), s => s.Write(System.Text.Encoding.UTF8.GetBytes(lines)));
    }

    private static void WritePlots(string dir, IReadOnlyList<EpochMetrics> history, ClassificationMetrics final, IReadOnlyList<string> classNames)
    {
        IReadOnlyList<CurvePoint> Curve(Func<EpochMetrics, double> f) => [.. history.Where(h => !double.IsNaN(f(h))).Select(h => new CurvePoint(h.Epoch, f(h)))];
        TrainingPlots.Curves(Path.Combine(dir, "loss.png"), "Loss", "cross-entropy", new Dictionary<string, IReadOnlyList<CurvePoint>>
        {
            ["train"] = Curve(h => h.TrainLoss), ["validation"] = Curve(h => h.ValidationLoss), ["test"] = Curve(h => h.TestLoss),
        });
        TrainingPlots.Curves(Path.Combine(dir, "accuracy.png"), "Accuracy", "top-1", new Dictionary<string, IReadOnlyList<CurvePoint>>
        {
            ["train"] = Curve(h => h.TrainTop1), ["validation"] = Curve(h => h.ValidationTop1), ["test"] = Curve(h => h.TestTop1),
        });
        TrainingPlots.ConfusionMatrix(Path.Combine(dir, "confusion.png"), final.ConfusionMatrix, classNames,
            $"Test confusion matrix (top-1 {final.Top1:P2})");
    }

    private static void SaveCheckpoint(string dir, InceptionModel model, OptimizerHelper optimizer, ExponentialMovingAverage? ema, RunState state)
    {
        // Write a complete new folder, then swap it in: a crash leaves the previous checkpoint intact.
        var fresh = dir + ".new";
        var old = dir + ".old";
        if (Directory.Exists(fresh)) Directory.Delete(fresh, recursive: true);
        Directory.CreateDirectory(fresh);
        SafeTensors.Write(Path.Combine(fresh, "model.safetensors"), model.state_dict());
        using (var writer = new BinaryWriter(File.Create(Path.Combine(fresh, "optimizer.bin")))) optimizer.save_state_dict(writer);
        if (ema is not null)
            SafeTensors.Write(Path.Combine(fresh, "ema.safetensors"), ema.Shadow,
                new Dictionary<string, string> { ["num_updates"] = ema.NumUpdates.ToString(CultureInfo.InvariantCulture) });
        File.WriteAllText(Path.Combine(fresh, "state.json"), JsonSerializer.Serialize(state, Json));
        if (Directory.Exists(old)) Directory.Delete(old, recursive: true);
        if (Directory.Exists(dir)) Directory.Move(dir, old);
        Directory.Move(fresh, dir);
        if (Directory.Exists(old)) Directory.Delete(old, recursive: true);
    }

    private static RunState LoadCheckpoint(string dir, Plan plan, InceptionModel model, OptimizerHelper optimizer, ExponentialMovingAverage? ema)
    {
        if (!File.Exists(Path.Combine(dir, "state.json")) && Directory.Exists(dir + ".old")) dir += ".old";
        var statePath = Path.Combine(dir, "state.json");
        if (!File.Exists(statePath))
            throw new InceptException($"There is no checkpoint to resume in '{Path.GetDirectoryName(dir)}'. Start the run without --resume.");
        var state = JsonSerializer.Deserialize<RunState>(File.ReadAllText(statePath), Json)
            ?? throw new CheckpointFormatException($"'{statePath}' is empty or damaged; start the run again without --resume.");
        if (state.Signature != plan.Signature)
            throw new InceptException($"The checkpoint in '{dir}' belongs to a run with other settings ({state.Signature}); resume with the same model, data, width, input size, recipe and seed, or choose another --out.");
        using (var weights = SafeTensors.Read(Path.Combine(dir, "model.safetensors"))) StateDictLoader.Load(model, weights.Tensors);
        using (var reader = new BinaryReader(File.OpenRead(Path.Combine(dir, "optimizer.bin")))) optimizer.load_state_dict(reader);
        if (ema is not null)
        {
            using var shadow = SafeTensors.Read(Path.Combine(dir, "ema.safetensors"));
            ema.Restore(shadow.Tensors, long.Parse(shadow.Metadata["num_updates"], CultureInfo.InvariantCulture));
        }

        return state;
    }

    /// <summary>Position and history of a run, saved with every checkpoint.</summary>
    private sealed class RunState
    {
        public string Signature { get; set; } = "";

        public int EpochsDone { get; set; }

        public int BestEpoch { get; set; }

        public double BestScore { get; set; }

        public double Seconds { get; set; }

        public List<EpochMetrics> History { get; set; } = [];
    }

    /// <summary>Everything derived from the options and the data before training starts.</summary>
    private sealed record Plan(
        ModelSpec Spec, Recipe Recipe, ModelConfig Config, int InputSize, int Epochs, int BatchSize, double LearningRate,
        int NumClasses, IImageDataset Train, IImageDataset? Validation, PreprocessSpec Preprocess,
        ImagePipeline TrainPipeline, ImagePipeline EvalPipeline, string Signature)
    {
        public static Plan Create(TrainOptions o, DataSource data)
        {
            var spec = o.Architecture ?? ModelRegistry.Get(o.Model);
            var recipe = o.Recipe;
            recipe.Validate();
            int size = o.InputSize ?? (data.ImageSize is { } native && native <= 64 ? native : spec.InputSize);
            bool small = o.SmallInput ?? size <= 64;
            int epochs = o.Epochs ?? recipe.Epochs;
            int batch = o.BatchSize ?? recipe.BatchSize;
            if (epochs < 1) throw new InceptException($"The number of epochs must be at least 1; got {epochs}.");
            if (batch < 2) throw new InceptException($"The batch size must be at least 2 (BatchNorm needs two samples); got {batch}.");
            double lr = o.LearningRate ?? recipe.LearningRateForBatch(batch);
            int classes = data.Train.ClassNames.Count;
            bool aux = o.Aux ?? (spec.HasAux && recipe.AuxWeight > 0);
            if (aux && !spec.HasAux) throw new InceptException($"{spec.Name} has no auxiliary heads; train it without --aux.");
            var config = recipe.ApplyTo(new ModelConfig
            {
                NumClasses = classes, InChannels = data.Mean.Length, AuxLogits = aux, Width = o.Width, SmallInput = small,
            });
            IImageDataset train = data.Train;
            IImageDataset? validation = null;
            if (o.ValidationFraction > 0)
            {
                var split = DatasetSplit.Create(data.Train, o.ValidationFraction, o.Seed);
                train = split.Train;
                validation = split.Validation;
            }

            var preprocess = new PreprocessSpec(size, small ? 1.0 : 0.875, "bilinear", data.Mean, data.Std, false, 1.0);
            var trainPipeline = small ? ImagePipeline.SmallImageTraining(preprocess) : ImagePipeline.Training(preprocess);
            var evalPipeline = small ? ImagePipeline.SmallImageEvaluation(preprocess) : ImagePipeline.Evaluation(preprocess);
            var signature = string.Create(CultureInfo.InvariantCulture,
                $"model={spec.Name} data={data.Name} width={o.Width} size={size} small={small} aux={aux} epochs={epochs} batch={batch} lr={lr} recipe={recipe.Name} seed={o.Seed} val={o.ValidationFraction}");
            return new Plan(spec, recipe, config, size, epochs, batch, lr, classes, train, validation, preprocess, trainPipeline, evalPipeline, signature);
        }
    }
}
