using Incept.Training;

namespace Incept.Reproduce.Claims;

/// <summary>Residual connections speed up the training of Inception networks.</summary>
internal static class ResidualClaim
{
    /// <summary>The common target is this fraction of the lower of the two runs' best accuracies, so that both reach it.</summary>
    public const double TargetFraction = 0.98;

    /// <summary>A speed-up at or above this is "marked".</summary>
    public const double MarkedSpeedup = 1.25;

    public static Claim Create() => new(
        name: "residual",
        paper: Papers.V4,
        source: "§5 (Figures 21–26)",
        statement: "Training with residual connections accelerates the training of Inception networks significantly; Inception-ResNet-v2 and Inception-v4, of similar cost, reach similar final accuracy, the residual one faster.",
        paperFigure: "residual version trains markedly faster",
        measures: "inception_v4 and inception_resnet_v2 at the same width (similar multiply-accumulates), trained alike: steps to a common target (98 % of the lower best accuracy) and final accuracy",
        quick: new Budget { TrainImages = 2048, EvalImages = 500, Epochs = 4, BatchSize = 32, EvalEvery = 16, Width = 0.25, EstimatedMinutes = 7 },
        full: new Budget { TrainImages = 10000, EvalImages = 2000, Epochs = 5, BatchSize = 32, EvalEvery = 40, Width = 0.25, EstimatedMinutes = 45 },
        experiment: Run);

    /// <summary>The recipe: SGD with Nesterov momentum at a constant rate after a short warm-up, so that steps to target reflect the architectures, not a schedule.</summary>
    public static Recipe TrainRecipe => Recipe.Get("fast") with { Schedule = ScheduleKind.Constant, WarmupEpochs = 0.25 };

    private static ClaimOutcome Run(ExperimentContext ctx)
    {
        var recipe = TrainRecipe;
        var plain = ctx.Train(new VariantSpec { Label = "inception_v4", Model = "inception_v4", Recipe = recipe });
        var residual = ctx.Train(new VariantSpec { Label = "inception_resnet_v2", Model = "inception_resnet_v2", Recipe = recipe });
        double target = TargetFraction * Math.Min(plain.BestTop1, residual.BestTop1);
        long? sPlain = Measures.StepsToTarget(plain.Top1Curve, target);
        long? sResidual = Measures.StepsToTarget(residual.Top1Curve, target);
        double speedup = sPlain is { } p && sResidual is { } r ? (double)p / r : double.NaN;
        double perStepPlain = plain.Seconds / Math.Max(1, plain.Steps), perStepResidual = residual.Seconds / Math.Max(1, residual.Steps);

        var measurements = new List<Measurement>
        {
            new("multiply-accumulates per image, v4 / ResNet-v2", "similar raw cost", $"{Fmt.Macs(plain.Macs)} / {Fmt.Macs(residual.Macs)}"),
            new("parameters, v4 / ResNet-v2", "", $"{Fmt.N(plain.Params)} / {Fmt.N(residual.Params)}"),
            new("common target (98 % of the lower best top-1)", "", Fmt.Acc(target)),
            new("steps to the target, v4 / ResNet-v2 (speed-up)", "markedly faster", $"{Fmt.Steps(sPlain)} / {Fmt.Steps(sResidual)} ({Fmt.Times(speedup)})"),
            new("final test top-1, v4 / ResNet-v2", "similar", $"{Fmt.Acc(plain.FinalTop1)} / {Fmt.Acc(residual.FinalTop1)}"),
            new("seconds per step, v4 / ResNet-v2", "", $"{Fmt.F(perStepPlain, "0.00")} / {Fmt.F(perStepResidual, "0.00")}"),
        };
        Papers.AccuracyPlot(ctx, [plain, residual], "Inception-v4 vs Inception-ResNet-v2: test accuracy", [("common target", target)]);
        Papers.LossPlot(ctx, [plain, residual], "Inception-v4 vs Inception-ResNet-v2: training loss");

        Verdict verdict;
        string reason;
        if (plain.Diverged || residual.Diverged)
        {
            verdict = Verdict.Inconclusive;
            reason = $"{(plain.Diverged ? "inception_v4" : "inception_resnet_v2")} diverged at step {(plain.Diverged ? plain.DivergedAtStep : residual.DivergedAtStep)}; choose a smaller learning rate.";
        }
        else if (speedup >= MarkedSpeedup)
        {
            verdict = Verdict.Supported;
            reason = $"Inception-ResNet-v2 reached {Fmt.Acc(target)} in {Fmt.Times(speedup)} fewer steps than Inception-v4 ({sResidual} against {sPlain}).";
        }
        else if (speedup <= 1)
        {
            verdict = Verdict.NotSupported;
            reason = $"Inception-ResNet-v2 was not faster: {Fmt.Steps(sResidual)} steps to {Fmt.Acc(target)} against {Fmt.Steps(sPlain)} for Inception-v4.";
        }
        else
        {
            verdict = Verdict.Inconclusive;
            reason = $"Inception-ResNet-v2 was faster by {Fmt.Times(speedup)} ({sResidual} against {sPlain} steps to {Fmt.Acc(target)}), less than the {Fmt.Times(MarkedSpeedup)} taken as marked, within the evaluation interval's resolution.";
        }

        return new ClaimOutcome(
            MeasuredFigure: $"{Fmt.Times(speedup)} fewer steps to {Fmt.Acc(target)}",
            Verdict: verdict,
            Reason: reason,
            Measurements: measurements,
            Setup:
            [
                $"Models: inception_v4 and inception_resnet_v2 at width {Fmt.F(ctx.Budget.Width)} with the small-input stem at {ctx.Budget.InputSize} px (reference residual scales 0.17, 0.10, 0.20).",
                $"Training: {Papers.Describe(recipe, recipe.LearningRateForBatch(ctx.Budget.BatchSize))}; same seed, data order and augmentation for both.",
                $"Steps to target: the first evaluation (every {ctx.Budget.EvalEvery} steps) at or above the target.",
            ],
            Notes:
            [
                "The paper trained with RMSProp (learning rate 0.045, decayed) on ImageNet for many epochs; here SGD at a constant rate for a few epochs of Fashion-MNIST, where both networks are far from their capacity.",
            ]);
    }
}
