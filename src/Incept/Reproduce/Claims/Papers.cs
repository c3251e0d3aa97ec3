namespace Incept.Reproduce.Claims;

/// <summary>The four papers whose claims are checked, and plotting helpers the training claims share.</summary>
internal static class Papers
{
    public const string V1 = "Going Deeper with Convolutions (Szegedy et al., 2014)";
    public const string Bn = "Batch Normalization: Accelerating Deep Network Training by Reducing Internal Covariate Shift (Ioffe & Szegedy, 2015)";
    public const string V3 = "Rethinking the Inception Architecture for Computer Vision (Szegedy et al., 2015)";
    public const string V4 = "Inception-v4, Inception-ResNet and the Impact of Residual Connections on Learning (Szegedy et al., 2016)";

    /// <summary>Top-1 accuracy of every run against steps, with optional target lines.</summary>
    public static void AccuracyPlot(ExperimentContext ctx, IReadOnlyList<VariantRun> runs, string title, IReadOnlyList<(string, double)>? lines = null, string file = "accuracy.png")
        => ctx.Plot(file, path => ReproducePlots.Curves(path, title, "test top-1 (evaluation images)",
            [.. runs.Select(r => (r.Label, r.Top1Curve))], lines));

    /// <summary>Training loss of every run against steps, averaged over windows of steps to make the curves readable.</summary>
    public static void LossPlot(ExperimentContext ctx, IReadOnlyList<VariantRun> runs, string title, string file = "loss.png")
        => ctx.Plot(file, path => ReproducePlots.Curves(path, title, "training loss (mean over 10 steps)",
            [.. runs.Select(r => (r.Label, Smooth(r.TrainLoss, 10)))]));

    /// <summary>Means of consecutive windows of <paramref name="window"/> points, placed at each window's last step.</summary>
    public static IReadOnlyList<StepValue> Smooth(IReadOnlyList<StepValue> series, int window)
    {
        var result = new List<StepValue>();
        for (int start = 0; start < series.Count; start += window)
        {
            var part = series.Skip(start).Take(window).ToList();
            result.Add(new StepValue(part[^1].Step, part.Average(p => p.Value)));
        }

        return result;
    }

    /// <summary>A short description of a recipe for the report's setup.</summary>
    public static string Describe(Training.Recipe r, double lr) =>
        $"recipe: {r.Optimizer.ToString().ToLowerInvariant()} (momentum {Fmt.F(r.Momentum)}), learning rate {Fmt.Lr(lr)}, {r.Schedule.ToString().ToLowerInvariant()} schedule"
        + (r.WarmupEpochs > 0 ? $" after {Fmt.F(r.WarmupEpochs)} epochs of warm-up" : "")
        + $", weight decay {Fmt.Lr(r.WeightDecay)}, label smoothing {Fmt.F(r.LabelSmoothing)}"
        + (r.DropRate is { } d ? $", dropout {Fmt.F(d)}" : "")
        + (r.GradClipNorm is { } c ? $", gradient clipping at {Fmt.F(c)}" : "")
        + (r.AuxWeight > 0 ? $", aux weight {Fmt.F(r.AuxWeight)}" : "");
}
