using Incept.Training;

namespace Incept.Reproduce.Claims;

/// <summary>Batch normalisation: the same accuracy in far fewer steps, and much higher learning rates usable.</summary>
internal static class BatchNormClaim
{
    /// <summary>The learning-rate multiples of the paper's BN-Baseline, BN-x5 and BN-x30.</summary>
    public static readonly int[] Multiples = [1, 5, 30];

    /// <summary>The paper's speed-ups to Inception's 72.2 % (Figure 3: 31.0 M steps against 13.3 M, 2.1 M and 2.7 M).</summary>
    public static readonly IReadOnlyDictionary<int, string> PaperSpeedups = new Dictionary<int, string>
    {
        [1] = "2.3× (31.0 M → 13.3 M steps)", [5] = "14.8× (→ 2.1 M)", [30] = "11.5× (→ 2.7 M)",
    };

    /// <summary>Below this best accuracy the baseline has not learned enough to set a target.</summary>
    public const double MinimumBaseline = 0.5;

    public static Claim Create() => new(
        name: "batchnorm",
        paper: Papers.Bn,
        source: "§4.2.1–4.2.2 (Figures 2 and 3)",
        statement: "With batch normalisation the network reaches the baseline's accuracy in far fewer steps (BN-x5: 14 times fewer than Inception), and much higher learning rates (×5, ×30) become usable.",
        paperFigure: "14× fewer steps (BN-x5); ×5 and ×30 learning rates train",
        measures: "googlenet_paper (no BatchNorm, LRN) and googlenet (BatchNorm) trained alike at the paper's base learning rate and at 5× and 30× it: steps to reach the no-BN baseline's best accuracy, and divergence (a non-finite loss or one above 10× its first value)",
        quick: new Budget { TrainImages = 2048, EvalImages = 500, Epochs = 8, BatchSize = 32, EvalEvery = 16, Width = 0.25, EstimatedMinutes = 8 },
        full: new Budget { TrainImages = 10000, EvalImages = 2000, Epochs = 8, BatchSize = 32, EvalEvery = 50, Width = 0.25, EstimatedMinutes = 60 },
        experiment: Run);

    /// <summary>
    /// The recipe: the googlenet preset (SGD, momentum 0.9, learning rate 0.0015 at batch 32, dropout 0.4) at a constant
    /// rate, without aux heads or weight averaging, so that the curves show the raw weights' progress.
    /// </summary>
    public static Recipe BaseRecipe => Recipe.Get("googlenet") with
    {
        Schedule = ScheduleKind.Constant, WarmupEpochs = 0, EmaDecay = null, AuxWeight = 0, PaperEpochs = null,
    };

    private static ClaimOutcome Run(ExperimentContext ctx)
    {
        var recipe = BaseRecipe;
        double lr0 = recipe.LearningRateForBatch(ctx.Budget.BatchSize);
        var baseline = ctx.Train(new VariantSpec { Label = "no BN, lr ×1", Model = "googlenet_paper", Recipe = recipe, LearningRate = lr0 });
        var bn = new Dictionary<int, VariantRun>();
        foreach (var m in Multiples)
            bn[m] = ctx.Train(new VariantSpec { Label = $"BN, lr ×{m}", Model = "googlenet", Recipe = recipe, LearningRate = lr0 * m });
        var plain = new Dictionary<int, VariantRun> { [1] = baseline };
        foreach (var m in Multiples.Skip(1))
            plain[m] = ctx.Train(new VariantSpec { Label = $"no BN, lr ×{m}", Model = "googlenet_paper", Recipe = recipe, LearningRate = lr0 * m });

        double target = baseline.BestTop1;
        long? baseSteps = Measures.StepsToTarget(baseline.Top1Curve, target);
        var steps = Multiples.ToDictionary(m => m, m => Measures.StepsToTarget(bn[m].Top1Curve, target));
        double Speedup(int m) => steps[m] is { } s && baseSteps is { } b ? (double)b / s : double.NaN;

        var measurements = new List<Measurement>
        {
            new("target: the no-BN baseline's best test top-1", "72.2 % (Inception)", $"{Fmt.Acc(target)}, first reached at step {Fmt.Steps(baseSteps)}"),
        };
        foreach (var m in Multiples)
        {
            var r = bn[m];
            measurements.Add(new($"BN, lr ×{m}: steps to the target (speed-up)", PaperSpeedups[m],
                r.Diverged ? $"diverged at step {r.DivergedAtStep}" : $"{Fmt.Steps(steps[m])} ({Fmt.Times(Speedup(m))}); final top-1 {Fmt.Acc(r.FinalTop1)}"));
        }

        foreach (var m in Multiples.Skip(1))
        {
            var r = plain[m];
            long? s = Measures.StepsToTarget(r.Top1Curve, target);
            measurements.Add(new($"no BN, lr ×{m}", "", r.Diverged ? $"diverged at step {r.DivergedAtStep}" : $"target {(s is null ? "not reached" : $"at step {s}")}; final top-1 {Fmt.Acc(r.FinalTop1)}"));
        }

        var all = new[] { baseline }.Concat(Multiples.Select(m => bn[m])).Concat(Multiples.Skip(1).Select(m => plain[m])).ToList();
        Papers.AccuracyPlot(ctx, all, "BatchNorm: test accuracy at ×1, ×5 and ×30 the base learning rate", [("target (no-BN best)", target)]);
        Papers.LossPlot(ctx, all, "BatchNorm: training loss");

        Verdict verdict;
        string reason;
        var bnDiverged = Multiples.Where(m => bn[m].Diverged).ToList();
        var bnMissed = Multiples.Where(m => !bn[m].Diverged && steps[m] is null).ToList();
        double best = Multiples.Select(Speedup).Where(double.IsFinite).DefaultIfEmpty(double.NaN).Max();
        string plainFate = string.Join(", ", Multiples.Skip(1).Select(m => $"×{m} {(plain[m].Diverged ? "diverged" : $"top-1 {Fmt.Acc(plain[m].FinalTop1)}")}"));
        if (target < MinimumBaseline)
        {
            verdict = Verdict.Inconclusive;
            reason = $"The no-BN baseline reached only {Fmt.Acc(target)} in {baseline.Steps} steps, too little to set a target; a larger budget is needed.";
        }
        else if (bnDiverged.Count > 0 || bnMissed.Count > 0)
        {
            verdict = Verdict.NotSupported;
            reason = $"With BatchNorm, {string.Join(", ", bnDiverged.Select(m => $"lr ×{m} diverged").Concat(bnMissed.Select(m => $"lr ×{m} never reached the baseline's {Fmt.Acc(target)}")))}.";
        }
        else if (best >= 2)
        {
            verdict = Verdict.Supported;
            reason = $"With BatchNorm every learning rate up to ×30 trains and reaches the no-BN baseline's best ({Fmt.Acc(target)}) in fewer steps, at best {Fmt.Times(best)} fewer (paper: 14×); without BatchNorm {plainFate}.";
        }
        else
        {
            verdict = best > 1 ? Verdict.Inconclusive : Verdict.NotSupported;
            reason = $"With BatchNorm the higher rates train, but the speed-up to the baseline's best ({Fmt.Acc(target)}) is only {Fmt.Times(best)} (paper: 14×); without BatchNorm {plainFate}.";
        }

        return new ClaimOutcome(
            MeasuredFigure: double.IsFinite(best) ? $"{Fmt.Times(best)} fewer steps (best BN run); BN trains at ×5 and ×30: {(bnDiverged.Count == 0 ? "yes" : "no")}" : "target not reached with BN",
            Verdict: verdict,
            Reason: reason,
            Measurements: measurements,
            Setup:
            [
                $"Models: googlenet_paper (the paper's GoogLeNet: no BatchNorm, LRN, 5×5 branches, Xavier initialisation with biases 0.2) against googlenet (torchvision's: BatchNorm after every convolution), both at width {Fmt.F(ctx.Budget.Width)} with the small-input stem.",
                $"Training: {Papers.Describe(recipe, lr0)}, and 5× and 30× that rate; no auxiliary heads, no weight averaging.",
                $"Steps to target: the first evaluation (every {ctx.Budget.EvalEvery} steps) at or above the no-BN baseline's best accuracy, as the paper measures steps to Inception's best.",
            ],
            Notes:
            [
                "The paper's BN-x5 and BN-x30 also removed dropout and LRN, reduced the L2 weight decay, sped up the learning-rate decay and shuffled more; here only the learning rate changes, and both networks keep dropout 0.4.",
                "googlenet differs from googlenet_paper beyond BatchNorm (a 3×3 instead of the 5×5 branch, no LRN, another initialisation); the paper's BN-Inception also differs from Inception beyond BatchNorm (two 3×3 instead of each 5×5).",
                "The paper counts steps on ImageNet over millions of steps; here a few hundred on a few thousand Fashion-MNIST images, so the ratio is the comparable figure, not the counts.",
            ]);
    }
}
