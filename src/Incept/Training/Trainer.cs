using System.Diagnostics;
using System.Globalization;
using System.Text.Json;
using Incept.Data;
using Incept.Inference;
using Incept.Layers;
using Incept.Models;
using Incept.Registry;
using Incept.Runtime;
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
        var device = torch.device(options.Device);
        var (plan, model) = Build(options, data, device);
        using var _ = model;
        if (options.ChannelsLast) MemoryFormat.ToChannelsLast(model);
        WinogradTraining.Use(model, options.Winograd);
        var bf16 = options.BFloat16 ? BFloat16Compute.For(model) : null;
        Directory.CreateDirectory(options.OutDir);

        var state = new RunState { Signature = plan.Signature };
        var checkpoint = Path.Combine(options.OutDir, CheckpointDir);
        if (options.Resume)
            state = ReadState(checkpoint, plan);
        else if (File.Exists(Path.Combine(checkpoint, "state.json")))
            throw new InceptException($"'{options.OutDir}' already holds a training run. Continue it with --resume, or choose another --out.");

        // The optimizer covers exactly the parameters that train in the current phase; a resumed run re-enters the phase
        // its checkpoint was written in, so the saved optimizer state matches.
        bool frozen = plan.FreezeBackbone && (plan.UnfreezeAfter is not { } after || state.EpochsDone < after);
        if (frozen) Freezing.FreezeBackbone(model, plan.Spec);
        using var optimizer = new PhaseOptimizer(plan.Recipe.CreateOptimizer(model, plan.LearningRate));
        var schedule = plan.Recipe.CreateSchedule(plan.Epochs);
        using var ema = plan.Recipe.CreateEma(model);
        if (options.Resume) LoadCheckpoint(checkpoint, model, optimizer.Current, ema);

        var trainLoader = new DataLoader(plan.Train, plan.TrainPipeline, new DataLoaderOptions
        {
            BatchSize = plan.BatchSize, Shuffle = true, DropLast = true, Seed = options.Seed, Workers = options.Workers,
        });
        var evalOptions = new DataLoaderOptions { BatchSize = Math.Max(plan.BatchSize, 128), Workers = options.Workers, Seed = options.Seed };
        var validationLoader = plan.Validation is null ? null : new DataLoader(plan.Validation, plan.EvalPipeline, evalOptions);
        var testLoader = new DataLoader(data.Test, plan.EvalPipeline, evalOptions);
        var tensorboard = utils.tensorboard.SummaryWriter(Path.Combine(options.OutDir, "tensorboard"));
        var weightsPath = Path.Combine(options.OutDir, "model.safetensors");

        // Large step tensors from one planned buffer (CPU only; a no-op where StepMemory cannot run).
        using var stepMemory = options.PlanMemory && device.type == DeviceType.CPU ? StepMemory.Start() : null;
        ClassificationMetrics? bestTest = null;
        int stopAt = options.StopAfterEpochs is { } n ? Math.Min(plan.Epochs, state.EpochsDone + n) : plan.Epochs;
        for (int epoch = state.EpochsDone; epoch < stopAt; epoch++)
        {
            cancellation.ThrowIfCancellationRequested();
            var clock = Stopwatch.StartNew();
            manual_seed(DataLoader.SampleSeed(options.Seed, epoch, -2));
            var (trainLoss, trainTop1, imagesPerSecond, lr) = TrainEpoch(model, bf16, optimizer.Current, schedule, ema, plan, trainLoader, epoch, device, options.ChannelsLast, progress, options.OnStep, cancellation);
            // Evaluation allocates outside the plan: the buffer's pages go back until the next step needs them.
            StepMemory.Trim();
            ema?.Swap(model);
            try
            {
                var (valLoss, valMetrics) = validationLoader is null ? (double.NaN, null) : Evaluate(model, validationLoader, plan, device, "validate", epoch, progress);
                var (testLoss, testMetrics) = options.TestEachEpoch ? Evaluate(model, testLoader, plan, device, "test", epoch, progress) : (double.NaN, null);
                // The best epoch by validation accuracy; without a validation split, by test accuracy, or, when the test
                // split is kept for the end too, the latest epoch.
                double? score = valMetrics?.Top1 ?? testMetrics?.Top1;
                state.Seconds += clock.Elapsed.TotalSeconds;
                var metrics = new EpochMetrics(epoch + 1, lr, trainLoss, trainTop1, valLoss, valMetrics?.Top1 ?? double.NaN,
                    testLoss, testMetrics?.Top1 ?? double.NaN, testMetrics?.Top5 ?? double.NaN, clock.Elapsed.TotalSeconds, imagesPerSecond);
                state.History.Add(metrics);
                if (state.BestEpoch == 0 || score is null || score > state.BestScore)
                {
                    state.BestEpoch = epoch + 1;
                    state.BestScore = score ?? double.NaN;
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
            if (frozen && state.EpochsDone == plan.UnfreezeAfter)
            {
                // From here the whole network trains, with a fresh optimizer over every parameter. The switch happens
                // before the checkpoint is written, so that a resumed run finds the optimizer of the phase it resumes in.
                Freezing.Unfreeze(model);
                optimizer.Replace(plan.Recipe.CreateOptimizer(model, plan.LearningRate));
                frozen = false;
            }

            WriteMetrics(options.OutDir, state.History);
            SaveCheckpoint(checkpoint, model, optimizer.Current, ema, state);
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
                RunDir = options.OutDir, Model = plan.Spec.Name, Weights = weightsPath, Epochs = state.EpochsDone, Seconds = state.Seconds,
                TestTop1 = last?.TestTop1 ?? double.NaN, TestTop5 = last?.TestTop5 ?? double.NaN, BestEpoch = state.BestEpoch,
                History = state.History, Artifacts = artifacts, Incomplete = true,
            };
        }

        // The kept weights: the best epoch by validation accuracy. Its test metrics are at hand when that epoch ran
        // in this invocation and was tested; otherwise (after a resume, or with the test kept for the end) the saved
        // weights are evaluated now, and that time counts in the run's seconds.
        var finalClock = Stopwatch.StartNew();
        var final = bestTest ?? EvaluateSaved(weightsPath, testLoader, plan, device, progress);
        if (bestTest is null && !options.TestEachEpoch) state.Seconds += finalClock.Elapsed.TotalSeconds;
        artifacts["loss_plot"] = Path.Combine(options.OutDir, "loss.png");
        artifacts["accuracy_plot"] = Path.Combine(options.OutDir, "accuracy.png");
        artifacts["confusion_plot"] = Path.Combine(options.OutDir, "confusion.png");
        WritePlots(options.OutDir, state.History, final, data.Train.ClassNames);
        return new TrainResult
        {
            RunDir = options.OutDir, Model = plan.Spec.Name, Weights = weightsPath, Epochs = state.EpochsDone, Seconds = state.Seconds,
            TestTop1 = final.Top1, TestTop5 = final.Top5, BestEpoch = state.BestEpoch, History = state.History, Artifacts = artifacts,
        };
    }

    /// <summary>
    /// Evaluates <paramref name="model"/> on <paramref name="loader"/>: mean loss (no smoothing) and classification metrics,
    /// each image scored over the views <paramref name="tta"/> asks for.
    /// </summary>
    public static (double Loss, ClassificationMetrics Metrics) Evaluate(InceptionModel model, DataLoader loader, int numClasses, Device device,
        IProgress<TrainProgress>? progress = null, string phase = "test", int epoch = 0, int epochs = 1, TestTimeAugmentation tta = TestTimeAugmentation.None)
    {
        ArgumentNullException.ThrowIfNull(model);
        model.eval();
        return Evaluate(x => model.call(x.to(device)).Logits, loader, numClasses, device, progress, phase, epoch, epochs, tta);
    }

    /// <summary>Evaluates an inference engine (such as an ONNX file run by ONNX Runtime) on <paramref name="loader"/>, as the model overload does.</summary>
    public static (double Loss, ClassificationMetrics Metrics) Evaluate(IInferenceEngine engine, DataLoader loader, int numClasses,
        IProgress<TrainProgress>? progress = null, TestTimeAugmentation tta = TestTimeAugmentation.None)
    {
        ArgumentNullException.ThrowIfNull(engine);
        return Evaluate(engine.Run, loader, numClasses, CPU, progress, "test", 0, 1, tta);
    }

    private static (double Loss, ClassificationMetrics Metrics) Evaluate(Func<Tensor, Tensor> logitsOf, DataLoader loader, int numClasses, Device device,
        IProgress<TrainProgress>? progress, string phase, int epoch, int epochs, TestTimeAugmentation tta)
    {
        ArgumentNullException.ThrowIfNull(loader);
        var metrics = new ClassificationMetrics(numClasses);
        double lossSum = 0;
        var clock = Stopwatch.StartNew();
        int step = 0;
        using var _ = no_grad();
        foreach (var batch in loader.Epoch(0))
        {
            using (batch)
            using (StepMemory.Step())
            using (var scope = NewDisposeScope())
            {
                var y = batch.Labels.to(device);
                var logits = tta.Logits(logitsOf, batch.Images);
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
        => Evaluate(model, loader, plan.NumClasses, device, progress, phase, epoch, plan.Epochs, plan.Tta);

    private static (double Loss, double Top1, double ImagesPerSecond, double LearningRate) TrainEpoch(
        InceptionModel model, BFloat16Compute? bf16, optim.Optimizer optimizer, LearningRateSchedule schedule, ExponentialMovingAverage? ema, Plan plan,
        DataLoader loader, int epoch, Device device, bool channelsLast, IProgress<TrainProgress>? progress, Action<TrainStep>? onStep, CancellationToken cancellation)
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
                schedule.Apply(optimizer, epoch, step, steps);
                lr = optimizer.ParamGroups.First().LearningRate;
                var x = batch.Images.to(device);
                // The batch in the model's layout: the image stem's own path (TrainingConvolution.Stem) takes only a
                // channels-last input, and libtorch would otherwise convert it inside the first convolution.
                if (channelsLast && x.dim() == 4) x = MemoryFormat.ToChannelsLast(x);
                var y = batch.Labels.to(device);
                optimizer.zero_grad();
                ModelOutput output;
                Tensor loss;
                using (bf16?.Enter())
                {
                    output = bf16?.Forward(model, x) ?? model.call(x);
                    loss = Losses.Total(output, y, plan.Recipe.AuxWeight, plan.Recipe.LabelSmoothing);
                    loss.backward();
                }

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

        if (!double.IsNaN(m.TestTop1))
        {
            writer.add_scalar("test/loss", (float)m.TestLoss, m.Epoch);
            writer.add_scalar("test/top1", (float)m.TestTop1, m.Epoch);
            writer.add_scalar("test/top5", (float)m.TestTop5, m.Epoch);
        }
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

    private static void SaveCheckpoint(string dir, InceptionModel model, optim.Optimizer optimizer, ExponentialMovingAverage? ema, RunState state)
    {
        // Write a complete new folder, then swap it in: a crash leaves the previous checkpoint intact.
        var fresh = dir + ".new";
        var old = dir + ".old";
        if (Directory.Exists(fresh)) Directory.Delete(fresh, recursive: true);
        Directory.CreateDirectory(fresh);
        SafeTensors.Write(Path.Combine(fresh, "model.safetensors"), model.state_dict());
        using (var writer = new BinaryWriter(File.Create(Path.Combine(fresh, "optimizer.bin")))) OptimizerStateLayout.Save((OptimizerHelper)optimizer, writer);
        if (ema is not null)
            SafeTensors.Write(Path.Combine(fresh, "ema.safetensors"), ema.Shadow,
                new Dictionary<string, string> { ["num_updates"] = ema.NumUpdates.ToString(CultureInfo.InvariantCulture) });
        File.WriteAllText(Path.Combine(fresh, "state.json"), JsonSerializer.Serialize(state, Json));
        if (Directory.Exists(old)) Directory.Delete(old, recursive: true);
        if (Directory.Exists(dir)) Directory.Move(dir, old);
        Directory.Move(fresh, dir);
        if (Directory.Exists(old)) Directory.Delete(old, recursive: true);
    }

    /// <summary>The folder holding the last complete checkpoint: <paramref name="dir"/>, or the previous one a crash left aside.</summary>
    private static string CompleteCheckpoint(string dir) =>
        !File.Exists(Path.Combine(dir, "state.json")) && Directory.Exists(dir + ".old") ? dir + ".old" : dir;

    private static RunState ReadState(string dir, Plan plan)
    {
        dir = CompleteCheckpoint(dir);
        var statePath = Path.Combine(dir, "state.json");
        if (!File.Exists(statePath))
            throw new InceptException($"There is no checkpoint to resume in '{Path.GetDirectoryName(dir)}'. Start the run without --resume.");
        var state = JsonSerializer.Deserialize<RunState>(File.ReadAllText(statePath), Json)
            ?? throw new CheckpointFormatException($"'{statePath}' is empty or damaged; start the run again without --resume.");
        if (state.Signature != plan.Signature)
            throw new InceptException($"The checkpoint in '{dir}' belongs to a run with other settings ({state.Signature}); resume with the same model, data, width, input size, recipe and seed, or choose another --out.");
        return state;
    }

    private static void LoadCheckpoint(string dir, InceptionModel model, optim.Optimizer optimizer, ExponentialMovingAverage? ema)
    {
        dir = CompleteCheckpoint(dir);
        using (var weights = SafeTensors.Read(Path.Combine(dir, "model.safetensors"))) StateDictLoader.Load(model, weights.Tensors);
        using (var reader = new BinaryReader(File.OpenRead(Path.Combine(dir, "optimizer.bin")))) OptimizerStateLayout.Load((OptimizerHelper)optimizer, reader);
        if (ema is not null)
        {
            using var shadow = SafeTensors.Read(Path.Combine(dir, "ema.safetensors"));
            ema.Restore(shadow.Tensors, long.Parse(shadow.Metadata["num_updates"], CultureInfo.InvariantCulture));
        }
    }

    /// <summary>
    /// Builds the model of the run, seeded: from scratch, or for fine-tuning from the pretrained weights with a fresh
    /// classifier for the data's classes and no auxiliary heads.
    /// </summary>
    private static (Plan Plan, InceptionModel Model) Build(TrainOptions options, DataSource data, Device device)
    {
        using var pretrained = options.FineTune is { } fineTune ? LoadPretrained(fineTune, data) : null;
        var plan = Plan.Create(options, data, pretrained);
        manual_seed(DataLoader.SampleSeed(options.Seed, -1, -1));
        var model = ModelFactory.Create(plan.Spec, plan.Config, device);
        try
        {
            if (plan.InputSize < model.MinInputSize)
                throw new InputShapeException($"{plan.Spec.Name} needs inputs of at least {model.MinInputSize} pixels with these settings; the data is {plan.InputSize}. Use --input-size {model.MinInputSize}{(plan.Config.SmallInput || pretrained is not null ? "" : " or --small-input")}.");
            if (plan.Config.AuxLogits && plan.InputSize < model.MinAuxInputSize)
                throw new InputShapeException($"{plan.Spec.Name}'s auxiliary heads need training inputs of at least {model.MinAuxInputSize} pixels; the data is {plan.InputSize}. Use --no-aux or a larger --input-size.");
            if (pretrained is not null)
            {
                // Everything but the heads: the classifier keeps the initialisation the factory gave it.
                var heads = new List<string> { plan.Spec.Classifier + "." };
                heads.AddRange(plan.Spec.AuxModules.Select(m => m + "."));
                StateDictLoader.Load(model, pretrained.Model.state_dict(), new LoadOptions { Skip = heads, MayBeMissing = heads });
            }

            return (plan, model);
        }
        catch
        {
            model.Dispose();
            throw;
        }
    }

    private static LoadedModel LoadPretrained(FineTuneOptions fineTune, DataSource data)
    {
        ArgumentException.ThrowIfNullOrWhiteSpace(fineTune.Weights);
        if (fineTune.UnfreezeAfter is { } after)
        {
            if (!fineTune.FreezeBackbone)
                throw new InceptException("Unfreezing after some epochs needs a frozen backbone to start with; add --freeze-backbone or drop --unfreeze-after.");
            if (after < 1)
                throw new InceptException($"The backbone can be unfrozen after 1 epoch or more; got --unfreeze-after {after}.");
        }

        // The file's classifier is not needed: it is replaced by one for the data's classes.
        return CheckpointLoader.Load(fineTune.Weights, fineTune.Load with
        {
            SkipClassifier = true, NumClasses = data.Train.ClassNames.Count, Device = null,
        });
    }

    /// <summary>The optimizer of the current phase of the run; replaced when the backbone is unfrozen.</summary>
    private sealed class PhaseOptimizer(optim.Optimizer optimizer) : IDisposable
    {
        public optim.Optimizer Current { get; private set; } = optimizer;

        public void Replace(optim.Optimizer next)
        {
            Current.Dispose();
            Current = next;
        }

        public void Dispose() => Current.Dispose();
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
        ImagePipeline TrainPipeline, ImagePipeline EvalPipeline, string Signature, bool FreezeBackbone, int? UnfreezeAfter, TestTimeAugmentation Tta)
    {
        public static Plan Create(TrainOptions o, DataSource data, LoadedModel? pretrained)
        {
            var recipe = o.Recipe;
            recipe.Validate();
            int epochs = o.Epochs ?? recipe.Epochs;
            int batch = o.BatchSize ?? recipe.BatchSize;
            if (epochs < 1) throw new InceptException($"The number of epochs must be at least 1; got {epochs}.");
            if (batch < 2) throw new InceptException($"The batch size must be at least 2 (BatchNorm needs two samples); got {batch}.");
            double lr = o.LearningRate ?? recipe.LearningRateForBatch(batch);
            int classes = data.Train.ClassNames.Count;
            var (spec, config, preprocess, small) = pretrained is null ? FromScratch(o, data) : FromWeights(o, data, pretrained);
            config = recipe.ApplyTo(config);
            int size = preprocess.InputSize;
            if (o.FineTune?.UnfreezeAfter is { } after && after >= epochs)
                throw new InceptException($"The backbone would be unfrozen after epoch {after}, but the run has {epochs} epochs; unfreeze earlier or train longer.");

            IImageDataset train = data.Train;
            IImageDataset? validation = null;
            if (o.ValidationFraction > 0)
            {
                var split = DatasetSplit.Create(data.Train, o.ValidationFraction, o.Seed);
                train = split.Train;
                validation = split.Validation;
            }

            var trainPipeline = small ? ImagePipeline.SmallImageTraining(preprocess) : ImagePipeline.Training(preprocess);
            var evalPipeline = small ? ImagePipeline.SmallImageEvaluation(preprocess) : ImagePipeline.Evaluation(preprocess);
            var signature = string.Create(CultureInfo.InvariantCulture,
                $"model={spec.Name} data={data.Name} width={config.Width} size={size} small={config.SmallInput} aux={config.AuxLogits} epochs={epochs} batch={batch} lr={lr} recipe={recipe.Name} seed={o.Seed} val={o.ValidationFraction}");
            if (o.FineTune is { } ft)
                signature += string.Create(CultureInfo.InvariantCulture, $" from={Path.GetFullPath(ft.Weights)} freeze={ft.FreezeBackbone} unfreeze={ft.UnfreezeAfter}");
            if (o.BFloat16) signature += " precision=bfloat16";
            return new Plan(spec, recipe, config, size, epochs, batch, lr, classes, train, validation, preprocess, trainPipeline, evalPipeline,
                signature, o.FineTune?.FreezeBackbone ?? false, o.FineTune?.UnfreezeAfter, o.TestTimeAugmentation);
        }

        /// <summary>The registry's architecture with the data's classes and channels; small images get the small stem and pipelines.</summary>
        private static (ModelSpec, ModelConfig, PreprocessSpec, bool SmallPipelines) FromScratch(TrainOptions o, DataSource data)
        {
            var spec = o.Architecture ?? ModelRegistry.Get(o.Model);
            int size = o.InputSize ?? (data.ImageSize is { } native && native <= 64 ? native : spec.InputSize);
            bool small = o.SmallInput ?? size <= 64;
            bool aux = o.Aux ?? (spec.HasAux && o.Recipe.AuxWeight > 0);
            if (aux && !spec.HasAux) throw new InceptException($"{spec.Name} has no auxiliary heads; train it without --aux.");
            var config = new ModelConfig
            {
                NumClasses = data.Train.ClassNames.Count, InChannels = data.Mean.Length, AuxLogits = aux, Width = o.Width, SmallInput = small,
            };
            return (spec, config, new PreprocessSpec(size, small ? 1.0 : 0.875, "bilinear", data.Mean, data.Std, false, 1.0), small);
        }

        /// <summary>
        /// The architecture, width, stem and input channels of the pretrained weights, a classifier for the data's classes,
        /// no auxiliary heads, and the weights' preprocessing (the data's normalisation when the weights do not say).
        /// </summary>
        private static (ModelSpec, ModelConfig, PreprocessSpec, bool SmallPipelines) FromWeights(TrainOptions o, DataSource data, LoadedModel pretrained)
        {
            var spec = pretrained.Spec;
            var trained = pretrained.Model.Config;
            if (o.SmallInput is { } s && s != trained.SmallInput)
                throw new InceptException($"The weights were trained {(trained.SmallInput ? "with" : "without")} the small-input stem, which fine-tuning keeps; leave out --small-input.");
            if (o.Aux == true)
                throw new InceptException("Fine-tuning trains without the auxiliary heads; leave out --aux.");
            int channels = data.Mean.Length;
            if (channels != trained.InChannels && !(channels == 1 && trained.InChannels == 3))
                throw new InceptException($"The weights take {trained.InChannels}-channel images but {data.Name} has {channels}-channel images; fine-tune them on {trained.InChannels}-channel data.");

            var weights = pretrained.Preprocess is { } p && p.Mean.Length == trained.InChannels && p.Std.Length == trained.InChannels ? p : null;
            int size = o.InputSize
                ?? (trained.SmallInput && data.ImageSize is { } native && native <= 64 ? native : weights?.InputSize ?? spec.InputSize);
            double crop = size <= 64 ? 1.0 : weights?.CropFraction ?? 0.875;
            // Grayscale data for an RGB network: the pipelines repeat the channel, and the data's own statistics repeat with it.
            var preprocess = weights is not null
                ? weights with { InputSize = size, CropFraction = crop }
                : new PreprocessSpec(size, crop, "bilinear", Repeat(data.Mean, trained.InChannels), Repeat(data.Std, trained.InChannels), false, 1.0);
            var config = trained with { NumClasses = data.Train.ClassNames.Count, AuxLogits = false, DropRate = null };
            return (spec, config, preprocess, size <= 64);
        }

        private static float[] Repeat(float[] values, int channels) =>
            values.Length == channels ? values : [.. Enumerable.Repeat(values[0], channels)];
    }
}
