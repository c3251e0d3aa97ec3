using Incept.Analysis;
using Incept.Layers;
using Incept.Reproduce.Models;
using Incept.Training;
using TorchSharp;
using static TorchSharp.torch;

namespace Incept.Reproduce.Claims;

/// <summary>Inception-v3's factorised convolutions: their exact cost, and a factorised against an unfactorised network trained alike.</summary>
internal static class FactorizationClaim
{
    /// <summary>Channels of the blocks whose costs are compared (equal widths in and out).</summary>
    public const long Channels = 64;

    /// <summary>Side of the grid they run on (Inception-v3's 17×17 stage).</summary>
    public const long Grid = 17;

    /// <summary>One replacement: the full convolution, its factorisation, and the cost ratio the paper's arithmetic gives (factorised / full).</summary>
    public sealed record Replacement(string Name, string PaperSaving, long RatioNumerator, long RatioDenominator,
        Func<nn.Module<Tensor, Tensor>> Full, Func<nn.Module<Tensor, Tensor>> Factorized)
    {
        /// <summary>The saving the paper's arithmetic gives: 1 − numerator / denominator.</summary>
        public double ExpectedSaving => 1 - (double)RatioNumerator / RatioDenominator;
    }

    /// <summary>The measured cost of one replacement.</summary>
    public sealed record ReplacementCost(Replacement Replacement, long FullMacs, long FactorizedMacs)
    {
        /// <summary>1 − factorised / full.</summary>
        public double Saving => 1 - (double)FactorizedMacs / FullMacs;

        /// <summary>Whether factorised / full equals the paper's ratio exactly (in integers).</summary>
        public bool Exact => FactorizedMacs * Replacement.RatioDenominator == FullMacs * Replacement.RatioNumerator;
    }

    public static Claim Create() => new(
        name: "factorization",
        paper: Papers.V3,
        source: "§3.1 (Figure 1) and §3.2 (Figures 3 and 6)",
        statement: "Factorising convolutions saves computation without losing expressiveness: a 5×5 convolution replaced by two 3×3 costs 28 % less, a 3×3 replaced by a 3×1 then a 1×3 costs 33 % less, and an n×n replaced by a 1×n then an n×1 saves 1 − 2/n.",
        paperFigure: "−28 % (5×5 → 2×3×3), −33 % (3×3 → 3×1+1×3), −(1 − 2/n) (n×n → 1×n+n×1)",
        measures: "exact multiply-accumulates of real TorchSharp blocks at equal widths (64 channels in and out on a 17×17 grid), and a factorised against an unfactorised small Inception network trained with the same steps, data and seed on Fashion-MNIST",
        quick: new Budget { TrainImages = 4096, EvalImages = 1000, Epochs = 3, BatchSize = 32, EvalEvery = 32, Width = 0.5, EstimatedMinutes = 5 },
        full: new Budget { TrainImages = 20000, EvalImages = 10000, Epochs = 5, BatchSize = 32, EvalEvery = 250, Width = 1.0, EstimatedMinutes = 50 },
        experiment: Run);

    /// <summary>The replacements the paper describes, as real conv units (conv → BatchNorm → ReLU) at equal widths.</summary>
    public static IReadOnlyList<Replacement> Replacements()
    {
        var u = ConvUnit.BatchNorm;
        const long c = Channels;
        return
        [
            new("5×5 → 3×3 + 3×3", "28 %", 18, 25,
                () => nn.Sequential(u.Build(c, c, 5, padding: 2)),
                () => nn.Sequential(u.Build(c, c, 3, padding: 1), u.Build(c, c, 3, padding: 1))),
            new("3×3 → 3×1 + 1×3", "33 %", 6, 9,
                () => nn.Sequential(u.Build(c, c, 3, padding: 1)),
                () => nn.Sequential(u.Build(c, c, (3, 1), (1, 0)), u.Build(c, c, (1, 3), (0, 1)))),
            new("5×5 → 1×5 + 5×1", "1 − 2/5 = 60 %", 2, 5,
                () => nn.Sequential(u.Build(c, c, 5, padding: 2)),
                () => nn.Sequential(u.Build(c, c, (1, 5), (0, 2)), u.Build(c, c, (5, 1), (2, 0)))),
            new("7×7 → 1×7 + 7×1", "1 − 2/7 = 71.4 %", 2, 7,
                () => nn.Sequential(u.Build(c, c, 7, padding: 3)),
                () => nn.Sequential(u.Build(c, c, (1, 7), (0, 3)), u.Build(c, c, (7, 1), (3, 0)))),
        ];
    }

    /// <summary>Counts the multiply-accumulates of every replacement with <see cref="ModelSummary.CountMacs"/>.</summary>
    public static IReadOnlyList<ReplacementCost> Costs() =>
    [
        .. Replacements().Select(r =>
        {
            using var full = r.Full();
            using var factorized = r.Factorized();
            return new ReplacementCost(r, ModelSummary.CountMacs(full, Channels, Grid, Grid), ModelSummary.CountMacs(factorized, Channels, Grid, Grid));
        }),
    ];

    private static ClaimOutcome Run(ExperimentContext ctx)
    {
        var costs = Costs();
        var measurements = new List<Measurement>();
        foreach (var c in costs)
        {
            measurements.Add(new($"cost saving {c.Replacement.Name} (64→64 channels, 17×17)", c.Replacement.PaperSaving,
                $"{Fmt.Pct(c.Saving)} ({Fmt.N(c.FullMacs)} → {Fmt.N(c.FactorizedMacs)} MACs{(c.Exact ? ", exact" : "")})"));
        }

        ctx.Plot("block_macs.png", path => ReproducePlots.Bars(path, "Multiply-accumulates of one block (64 → 64 channels, 17×17 grid)", "MACs (millions)",
            [.. costs.Select(c => c.Replacement.Name)],
            [("full n×n", [.. costs.Select(c => c.FullMacs / 1e6)]), ("factorised", [.. costs.Select(c => c.FactorizedMacs / 1e6)])]));

        var recipe = Recipe.Get("fast");
        var factorizedRuns = new List<VariantRun>();
        var fullRuns = new List<VariantRun>();
        for (int s = 0; s < ctx.Budget.Seeds; s++)
        {
            string suffix = ctx.Budget.Seeds > 1 ? $" (seed {ctx.Options.Seed + s})" : "";
            factorizedRuns.Add(ctx.Train(new VariantSpec { Label = "factorised" + suffix, Architecture = FactorizationNet.Spec(true), Recipe = recipe, SeedOffset = s }));
            fullRuns.Add(ctx.Train(new VariantSpec { Label = "full n×n" + suffix, Architecture = FactorizationNet.Spec(false), Recipe = recipe, SeedOffset = s }));
        }

        var f = factorizedRuns[0];
        var n = fullRuns[0];
        var paired = Measures.Paired([.. factorizedRuns.SelectMany(r => r.FinalCorrect)], [.. fullRuns.SelectMany(r => r.FinalCorrect)]);
        double fTop1 = factorizedRuns.Average(r => r.FinalTop1), nTop1 = fullRuns.Average(r => r.FinalTop1);
        measurements.Add(new("network multiply-accumulates per image (factorised / full)", "", $"{Fmt.Macs(f.Macs)} / {Fmt.Macs(n.Macs)} ({Fmt.Pct(1 - (double)f.Macs / n.Macs)} less)"));
        measurements.Add(new("network parameters (factorised / full)", "", $"{Fmt.N(f.Params)} / {Fmt.N(n.Params)}"));
        measurements.Add(new("final test top-1 (factorised / full)", "", $"{Fmt.Acc(fTop1)} / {Fmt.Acc(nTop1)}"));
        measurements.Add(new("top-1 difference, factorised − full (95 % interval, paired)", "no loss",
            $"{Fmt.Points(paired.Difference)} [{Fmt.Points(paired.Low)}, {Fmt.Points(paired.High)}] on {Fmt.N(paired.Count)} images"));
        measurements.Add(new("training seconds (factorised / full)", "", $"{Fmt.F(factorizedRuns.Sum(r => r.Seconds), "0")} / {Fmt.F(fullRuns.Sum(r => r.Seconds), "0")}"));

        Papers.AccuracyPlot(ctx, [.. factorizedRuns, .. fullRuns], "Factorised vs full convolutions: test accuracy");
        Papers.LossPlot(ctx, [.. factorizedRuns, .. fullRuns], "Factorised vs full convolutions: training loss");

        bool exact = costs.All(c => c.Exact);
        Verdict verdict;
        string reason;
        if (!exact)
        {
            verdict = Verdict.NotSupported;
            reason = $"The measured savings differ from the paper's arithmetic: {string.Join(", ", costs.Where(c => !c.Exact).Select(c => $"{c.Replacement.Name} {Fmt.Pct(c.Saving)}"))}.";
        }
        else if (paired.SecondBetter)
        {
            verdict = Verdict.NotSupported;
            reason = $"The savings are exactly the paper's, but at equal steps the factorised network is less accurate beyond the noise ({Fmt.Points(paired.Difference)}, 95 % interval {Fmt.Points(paired.Low)} to {Fmt.Points(paired.High)}).";
        }
        else
        {
            verdict = Verdict.Supported;
            reason = $"Every saving is exactly the paper's (integer ratios of the counted MACs), and the factorised network, {Fmt.Pct(1 - (double)f.Macs / n.Macs)} cheaper, is {(paired.FirstBetter ? "more accurate beyond the noise" : "as accurate within the noise")} ({Fmt.Points(paired.Difference)}, 95 % interval {Fmt.Points(paired.Low)} to {Fmt.Points(paired.High)}).";
        }

        var first = costs[0];
        return new ClaimOutcome(
            MeasuredFigure: $"{string.Join(", ", costs.Select(c => "−" + Fmt.Pct(c.Saving)))} (exact); top-1 {Fmt.Points(paired.Difference)} factorised vs full",
            Verdict: verdict,
            Reason: reason,
            Measurements: measurements,
            Setup:
            [
                $"Blocks: conv units (convolution without bias → BatchNorm → ReLU, as every Incept model builds them) from {Channels} to {Channels} channels on a {Grid}×{Grid} grid with 'same' padding, counted by the library's MAC counter (ModelSummary.CountMacs); for the 5×5, {Fmt.N(first.FullMacs)} = {Grid}² × {Channels}² × 25 MACs by hand.",
                $"Networks: FactorizationNet (Reproduce/Models), a stem, two blocks replacing a 5×5 at 14×14, two replacing a 7×7 at 7×7 and one replacing a 3×3 at 4×4; the full variant has the n×n convolutions instead, every width equal.",
                $"Training: {Papers.Describe(recipe, recipe.LearningRateForBatch(ctx.Budget.BatchSize))}; same seed, data order and augmentation for both.",
            ],
            Notes:
            [
                "The paper trains ImageNet networks for weeks; this compares small networks trained for minutes on Fashion-MNIST, so it tests that factorisation costs no accuracy at equal steps, not the paper's ImageNet numbers.",
                "BatchNorm and ReLU are not counted: the paper's figures are the convolutions' multiply-adds.",
            ]);
    }
}
