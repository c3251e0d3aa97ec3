using Incept.Models;
using Incept.Models.InceptionResNetV2;
using Incept.Registry;
using Incept.Training;
using TorchSharp;
using static TorchSharp.torch;

namespace Incept.Reproduce.Claims;

/// <summary>Residual scaling: without it, wide Inception-ResNets "die" early in training.</summary>
internal static class ResidualScalingClaim
{
    /// <summary>The reference's scales of the 35×35, 17×17 and 8×8 residual blocks.</summary>
    public static readonly (double A, double B, double C) ReferenceScales = (0.17, 0.10, 0.20);

    /// <summary>
    /// A network whose last feature map has at least this fraction of dead channels has died: the paper's dead network
    /// puts out "only zeros" before the pool, so nearly all of the channels must be silent, not merely many of them
    /// (short runs leave a large share of channels unused in networks that classify well).
    /// </summary>
    public const double DeadThreshold = 0.9;

    /// <summary>Images in the batch on which dead channels are counted.</summary>
    public const int ProbeImages = 256;

    public static Claim Create() => new(
        name: "residual-scaling",
        paper: Papers.V4,
        source: "§3.3 (Figure 20)",
        statement: "With more than 1000 filters, residual Inception networks become unstable and \"die\" early in training (the last layer before the average pooling outputs only zeros) unless the residuals are scaled down by 0.1–0.3 before the addition.",
        paperFigure: "unscaled: dies (only zeros before the pool); scaled 0.1–0.3: trains",
        measures: "inception_resnet_v2 (≥ 1000 filters in its last stage at width ≥ 0.5) with all residual scales 1.0 against the reference scales (0.17, 0.10, 0.20), each down a ladder of high learning rates (halving after a run that dies): the highest rate each trains at, the fraction of dead channels (no positive output for any of 256 test images) of the feature map before the final pool, loss curves and accuracy",
        quick: new Budget { TrainImages = 2048, EvalImages = 500, Epochs = 3, BatchSize = 32, EvalEvery = 16, Width = 0.5, InputSize = 16, EstimatedMinutes = 7 },
        full: new Budget { TrainImages = 8192, EvalImages = 500, Epochs = 3, BatchSize = 32, EvalEvery = 64, Width = 1.0, InputSize = 16, EstimatedMinutes = 45 },
        experiment: Run);

    /// <summary>The recipe: SGD with momentum at a high constant rate, no warm-up, no clipping.</summary>
    public static Recipe TrainRecipe => Recipe.Get("fast") with
    {
        Schedule = ScheduleKind.Constant, WarmupEpochs = 0, LearningRate = 0.8, BatchSize = 64, Nesterov = false, LabelSmoothing = 0, WeightDecay = 0,
    };

    /// <summary>inception_resnet_v2 with the residual scales <paramref name="a"/>, <paramref name="b"/>, <paramref name="c"/> (its last block keeps 1.0), registered as <paramref name="name"/>, keys unchanged.</summary>
    public static ModelSpec Scaled(double a, double b, double c, string name) => ModelRegistry.Get("inception_resnet_v2") with
    {
        Name = name,
        Build = config => new InceptionResNetV2(config, a, b, c),
    };

    /// <summary>
    /// The learning rates tried, as multiples of the recipe's rate at the budget's batch size, from the highest down.
    /// Each variant goes down the ladder until it trains; the claim compares the highest rate each one survives.
    /// </summary>
    public static readonly double[] LadderFactors = [1, 0.5, 0.25, 0.125];

    /// <summary>Whether a run died: its loss diverged, or at least <see cref="DeadThreshold"/> of the channels before the pool are dead at the end.</summary>
    internal static bool Died(VariantRun run) => run.Diverged || FinalDead(run) >= DeadThreshold;

    private static double FinalDead(VariantRun r) => r.Evaluations.Count == 0 ? double.NaN : r.Evaluations[^1].Probes["dead_fraction"];

    /// <summary>
    /// The verdict from the highest learning rate each variant trained at (null: it died at every rate tried). The
    /// claim holds when the scaled network trains at a rate where the unscaled one dies.
    /// </summary>
    internal static (Verdict Verdict, string Reason) Judge(double? scaledBest, double? unscaledBest, double highest)
    {
        string Rate(double? lr) => lr is { } v ? $"up to {Fmt.Lr(v)}" : "at none of the rates";
        return (scaledBest, unscaledBest) switch
        {
            (null, null) => (Verdict.Inconclusive,
                $"Both networks died at every learning rate tried (the lowest was {Fmt.Lr(highest * LadderFactors[^1])}): the rates are too high for either, so they do not separate them."),
            ({ } s, var u) when u is null || s > u => (Verdict.Supported,
                $"With the reference scales the network trains at learning rates {Rate(scaledBest)}; unscaled it trains {Rate(unscaledBest)} and dies above: scaling the residuals lets the wide network train where the unscaled one dies."),
            ({ } s, { } u) when s == u => (Verdict.Inconclusive,
                $"Both networks train at learning rates up to {Fmt.Lr(s)} and die above it: within this budget scaling did not change the highest stable rate."),
            _ => (Verdict.NotSupported,
                $"Unscaled, the network trains at learning rates {Rate(unscaledBest)}, the scaled one only {Rate(scaledBest)}: scaling did not stabilise training here."),
        };
    }

    private static ClaimOutcome Run(ExperimentContext ctx)
    {
        var recipe = TrainRecipe;
        var device = torch.device(ctx.Options.Device);
        var probe = ctx.ProbeImages(ProbeImages);
        double Dead(InceptionModel model)
        {
            using var _ = no_grad();
            using var scope = NewDisposeScope();
            return Measures.DeadChannelFraction(model.ForwardFeatures(probe.to(device)));
        }

        var probes = new Dictionary<string, Func<InceptionModel, double>> { ["dead_fraction"] = Dead };
        var (a, b, c) = ReferenceScales;
        double highest = recipe.LearningRateForBatch(ctx.Budget.BatchSize);
        var variants = new (string Label, ModelSpec Architecture)[]
        {
            ($"scales {Fmt.F(a)}/{Fmt.F(b)}/{Fmt.F(c)}", Scaled(a, b, c, "inception_resnet_v2")),
            ("scales 1.0", Scaled(1, 1, 1, "inception_resnet_v2_unscaled")),
        };

        // Each variant walks down the ladder until a run trains; the rates it died at and the one it survived are kept.
        var ladders = variants.Select(v =>
        {
            var tried = new List<VariantRun>();
            foreach (var factor in LadderFactors)
            {
                var run = ctx.Train(new VariantSpec
                {
                    Label = $"{v.Label}, lr {Fmt.Lr(highest * factor)}", Architecture = v.Architecture, Recipe = recipe,
                    LearningRate = highest * factor, Probes = probes,
                });
                tried.Add(run);
                if (!Died(run)) break;
            }

            return tried;
        }).ToList();
        var (scaledRuns, unscaledRuns) = (ladders[0], ladders[1]);
        double? Best(List<VariantRun> runs) => runs.Where(r => !Died(r)).Select(r => (double?)r.LearningRate).FirstOrDefault();
        double? scaledBest = Best(scaledRuns), unscaledBest = Best(unscaledRuns);

        long filters;
        using (var m = ModelFactory.Create(ModelRegistry.Get("inception_resnet_v2"), ctx.Config()))
            filters = Analysis.ModelSummary.Create(m, "inception_resnet_v2", ctx.Budget.InputSize).Layers.Where(l => l.OutputShape.Count > 1).Max(l => l.OutputShape[1]);
        string Outcome(VariantRun? r) => r is null ? "not run (a higher rate trained)"
            : r.Diverged ? $"died: diverged at step {r.DivergedAtStep}"
            : Died(r) ? $"died: {Fmt.Pct(FinalDead(r))} dead, top-1 {Fmt.Acc(r.FinalTop1)}"
            : $"trains: {Fmt.Pct(FinalDead(r))} dead, top-1 {Fmt.Acc(r.FinalTop1)}";
        VariantRun? At(List<VariantRun> runs, double factor) => runs.FirstOrDefault(r => Math.Abs(r.LearningRate - highest * factor) < 1e-12 * highest);

        var measurements = new List<Measurement>();
        foreach (var factor in LadderFactors)
        {
            var (s, u) = (At(scaledRuns, factor), At(unscaledRuns, factor));
            if (s is null && u is null) continue;
            measurements.Add(new($"lr {Fmt.Lr(highest * factor)}: scales 1.0 | reference", "dies | trains", $"{Outcome(u)} | {Outcome(s)}"));
        }

        measurements.Add(new("highest learning rate that trains, scales 1.0 / reference", "lower / higher",
            $"{(unscaledBest is { } ub ? Fmt.Lr(ub) : "none")} / {(scaledBest is { } sb ? Fmt.Lr(sb) : "none")}"));
        measurements.Add(new("channels of the widest stage (paper: instability above 1000)", "> 1000", Fmt.N(filters)));

        var all = scaledRuns.Concat(unscaledRuns).ToList();
        ctx.Plot("dead_channels.png", path => ReproducePlots.Curves(path, "Dead channels before the final pool (256 test images)", "fraction of channels with no positive output",
            [.. all.Select(r => (r.Label, (IReadOnlyList<StepValue>)[.. r.Evaluations.Select(e => new StepValue(e.Step, e.Probes["dead_fraction"]))]))],
            [("died", DeadThreshold)]));
        Papers.LossPlot(ctx, all, "Residual scaling: training loss down the learning-rate ladder");
        Papers.AccuracyPlot(ctx, all, "Residual scaling: test accuracy");

        var (verdict, reason) = Judge(scaledBest, unscaledBest, highest);
        return new ClaimOutcome(
            MeasuredFigure: $"highest rate that trains: {(unscaledBest is { } u1 ? Fmt.Lr(u1) : "none")} unscaled, {(scaledBest is { } s1 ? Fmt.Lr(s1) : "none")} scaled",
            Verdict: verdict,
            Reason: reason,
            Measurements: measurements,
            Setup:
            [
                $"Model: inception_resnet_v2 at width {Fmt.F(ctx.Budget.Width)} with the small-input stem at {ctx.Budget.InputSize} px; the unscaled variant builds every Block35, Block17 and Block8 with scale 1.0 (InceptionResNetV2's scale arguments, keys unchanged).",
                $"Training: {Papers.Describe(recipe, highest)}; each variant starts at that rate and halves it after a run that dies, down to {Fmt.Lr(highest * LadderFactors[^1])}, stopping at the first rate it trains at.",
                $"Dead channels: after each evaluation, the output of conv2d_7b (the ReLU feature map that the final average pool reads) on the first {ProbeImages} test images in evaluation mode; a channel is dead when none of its values is positive. A run has died when at least {Fmt.Pct(DeadThreshold, 0)} of the channels are dead at its end or its loss diverged.",
            ],
            Notes:
            [
                "The paper saw the death with the full-width network on ImageNet after tens of thousands of iterations; this budget is far shorter, so a network that survives here may still die later.",
                "The full budget uses width 1.0 (1536 channels before the pool, 2080 in the last stage), as the paper's networks; the quick one uses width 0.5 at 16 px to fit the time, which still has more than 1000 channels in the last stage.",
            ]);
    }
}
