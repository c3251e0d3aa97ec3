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

    /// <summary>A network whose last feature map has at least this fraction of dead channels has died.</summary>
    public const double DeadThreshold = 0.5;

    /// <summary>Images in the batch on which dead channels are counted.</summary>
    public const int ProbeImages = 256;

    public static Claim Create() => new(
        name: "residual-scaling",
        paper: Papers.V4,
        source: "§3.3 (Figure 20)",
        statement: "With more than 1000 filters, residual Inception networks become unstable and \"die\" early in training (the last layer before the average pooling outputs only zeros) unless the residuals are scaled down by 0.1–0.3 before the addition.",
        paperFigure: "unscaled: dies (only zeros before the pool); scaled 0.1–0.3: trains",
        measures: "inception_resnet_v2 (≥ 1000 filters in its last stage at width ≥ 0.5) with all residual scales 1.0 against the reference scales (0.17, 0.10, 0.20), at a high learning rate: the fraction of dead channels (no positive output for any of 256 test images) of the feature map before the final pool, loss curves and accuracy",
        quick: new Budget { TrainImages = 2048, EvalImages = 500, Epochs = 3, BatchSize = 32, EvalEvery = 16, Width = 0.5, InputSize = 16, EstimatedMinutes = 7 },
        full: new Budget { TrainImages = 8192, EvalImages = 1000, Epochs = 3, BatchSize = 32, EvalEvery = 32, Width = 1.0, InputSize = 28, EstimatedMinutes = 180 },
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
        var scaled = ctx.Train(new VariantSpec
        {
            Label = $"scales {Fmt.F(a)}/{Fmt.F(b)}/{Fmt.F(c)}", Architecture = Scaled(a, b, c, "inception_resnet_v2"), Recipe = recipe, Probes = probes,
        });
        var unscaled = ctx.Train(new VariantSpec
        {
            Label = "scales 1.0", Architecture = Scaled(1, 1, 1, "inception_resnet_v2_unscaled"), Recipe = recipe, Probes = probes,
        });

        long filters;
        using (var m = ModelFactory.Create(ModelRegistry.Get("inception_resnet_v2"), ctx.Config()))
            filters = Analysis.ModelSummary.Create(m, "inception_resnet_v2", ctx.Budget.InputSize).Layers.Where(l => l.OutputShape.Count > 1).Max(l => l.OutputShape[1]);
        double Final(VariantRun r) => r.Evaluations.Count == 0 ? double.NaN : r.Evaluations[^1].Probes["dead_fraction"];
        double Peak(VariantRun r) => r.Evaluations.Count == 0 ? double.NaN : r.Evaluations.Max(e => e.Probes["dead_fraction"]);
        bool Died(VariantRun r) => r.Diverged || Final(r) >= DeadThreshold;

        var measurements = new List<Measurement>
        {
            new("dead channels before the final pool at the end, scales 1.0", "all (only zeros)", $"{Fmt.Pct(Final(unscaled))} (peak {Fmt.Pct(Peak(unscaled))}){(unscaled.Diverged ? $"; diverged at step {unscaled.DivergedAtStep}" : "")}"),
            new($"dead channels at the end, reference scales", "few (trains)", $"{Fmt.Pct(Final(scaled))} (peak {Fmt.Pct(Peak(scaled))}){(scaled.Diverged ? $"; diverged at step {scaled.DivergedAtStep}" : "")}"),
            new("final test top-1, scales 1.0 / reference", "", $"{Fmt.Acc(unscaled.FinalTop1)} / {Fmt.Acc(scaled.FinalTop1)}"),
            new("training loss over the last 10 % of steps, scales 1.0 / reference", "", $"{Fmt.Acc(Measures.TailMean(unscaled.TrainLoss))} / {Fmt.Acc(Measures.TailMean(scaled.TrainLoss))}"),
            new("channels of the widest stage (paper: instability above 1000)", "> 1000", Fmt.N(filters)),
        };
        ctx.Plot("dead_channels.png", path => ReproducePlots.Curves(path, "Dead channels before the final pool (256 test images)", "fraction of channels with no positive output",
            [.. new[] { scaled, unscaled }.Select(r => (r.Label, (IReadOnlyList<StepValue>)[.. r.Evaluations.Select(e => new StepValue(e.Step, e.Probes["dead_fraction"]))]))],
            [("died", DeadThreshold)]));
        Papers.LossPlot(ctx, [scaled, unscaled], "Residual scaling: training loss at a high learning rate");
        Papers.AccuracyPlot(ctx, [scaled, unscaled], "Residual scaling: test accuracy");

        Verdict verdict;
        string reason;
        bool unscaledDied = Died(unscaled), scaledDied = Died(scaled);
        if (unscaledDied && !scaledDied)
        {
            verdict = Verdict.Supported;
            reason = $"Unscaled, the network died ({(unscaled.Diverged ? $"diverged at step {unscaled.DivergedAtStep}" : $"{Fmt.Pct(Final(unscaled))} of the channels before the pool dead")}); with the reference scales it trained ({Fmt.Pct(Final(scaled))} dead, top-1 {Fmt.Acc(scaled.FinalTop1)}).";
        }
        else if (scaledDied && unscaledDied)
        {
            verdict = Verdict.Inconclusive;
            reason = $"Both networks died ({Fmt.Pct(Final(unscaled))} dead unscaled, {Fmt.Pct(Final(scaled))} scaled{(scaled.Diverged ? "; the scaled one diverged" : "")}): the learning rate is too high for either, so it does not separate them.";
        }
        else if (scaledDied)
        {
            verdict = Verdict.NotSupported;
            reason = $"The scaled network died ({Fmt.Pct(Final(scaled))} dead{(scaled.Diverged ? ", diverged" : "")}) while the unscaled one trained: scaling did not stabilise training at this learning rate.";
        }
        else
        {
            verdict = Verdict.Inconclusive;
            reason = $"Neither network died within {unscaled.Steps} steps ({Fmt.Pct(Final(unscaled))} dead unscaled, {Fmt.Pct(Final(scaled))} scaled); the paper saw the death after tens of thousands of iterations, far beyond this budget.";
        }

        return new ClaimOutcome(
            MeasuredFigure: $"dead before the pool: {Fmt.Pct(Final(unscaled))} unscaled, {Fmt.Pct(Final(scaled))} scaled",
            Verdict: verdict,
            Reason: reason,
            Measurements: measurements,
            Setup:
            [
                $"Model: inception_resnet_v2 at width {Fmt.F(ctx.Budget.Width)} with the small-input stem at {ctx.Budget.InputSize} px; the unscaled variant builds every Block35, Block17 and Block8 with scale 1.0 (InceptionResNetV2's scale arguments, keys unchanged).",
                $"Training: {Papers.Describe(recipe, recipe.LearningRateForBatch(ctx.Budget.BatchSize))}.",
                $"Dead channels: after each evaluation, the output of conv2d_7b (the ReLU feature map that the final average pool reads) on the first {ProbeImages} test images in evaluation mode; a channel is dead when none of its values is positive. A network has died when at least {Fmt.Pct(DeadThreshold, 0)} of the channels are dead or its loss diverged.",
            ],
            Notes:
            [
                "The paper saw the death with the full-width network on ImageNet after tens of thousands of iterations; this budget is far shorter, so a network that survives here may still die later.",
                "The full budget uses width 1.0 (1536 channels before the pool, 2080 in the last stage), as the paper's networks; the quick one uses width 0.5 at 16 px to fit the time, which still has more than 1000 channels in the last stage.",
            ]);
    }
}
