using Incept.Registry;
using Incept.Training;

namespace Incept.Reproduce.Claims;

/// <summary>Auxiliary classifiers: regularisers that do not speed up early training.</summary>
internal static class AuxClassifiersClaim
{
    /// <summary>The model: Inception-v3, whose paper makes the claim.</summary>
    public const string Model = "inception_v3";

    /// <summary>The aux loss weight (TF-slim's Inception-v3 training).</summary>
    public const double AuxWeight = 0.4;

    /// <summary>A speed-up to the early target at or above this counts as aux heads speeding up early training.</summary>
    public const double EarlySpeedup = 1.5;

    public static Claim Create() => new(
        name: "aux-classifiers",
        paper: $"{Papers.V3}; {Papers.V1}",
        source: "v3 §4; v1 §5",
        statement: "Auxiliary classifiers act as regularisers: they did not improve convergence early in training, but near the end the network with them reaches a slightly higher accuracy.",
        paperFigure: "no early speed-up; slightly higher accuracy near the end",
        measures: "inception_v3 trained with and without its auxiliary head (loss weight 0.4), same seed: test accuracy curves, steps to the early target (the no-aux run's accuracy at a quarter of the steps), and the final accuracy (a paired comparison on the same images)",
        quick: new Budget { TrainImages = 4096, EvalImages = 1000, Epochs = 4, BatchSize = 32, EvalEvery = 32, Width = 0.25, EstimatedMinutes = 7 },
        full: new Budget { TrainImages = 30000, EvalImages = 5000, Epochs = 3, BatchSize = 32, EvalEvery = 200, Width = 0.25, Seeds = 2, EstimatedMinutes = 65 },
        experiment: Run);

    private static ClaimOutcome Run(ExperimentContext ctx)
    {
        var spec = ModelRegistry.Get(Model);
        using (var probe = ModelFactory.Create(spec, ctx.Config(aux: true)))
        {
            if (ctx.Budget.InputSize < probe.MinAuxInputSize)
                throw new InceptException($"{Model}'s auxiliary head needs inputs of at least {probe.MinAuxInputSize} pixels with the small-input stem; the budget gives {ctx.Budget.InputSize}.");
        }

        var recipe = Recipe.Get("fast") with { AuxWeight = AuxWeight };
        var withAux = new List<VariantRun>();
        var without = new List<VariantRun>();
        for (int s = 0; s < ctx.Budget.Seeds; s++)
        {
            string suffix = ctx.Budget.Seeds > 1 ? $" (seed {ctx.Options.Seed + s})" : "";
            withAux.Add(ctx.Train(new VariantSpec { Label = "aux head" + suffix, Model = Model, Recipe = recipe, Aux = true, SeedOffset = s }));
            without.Add(ctx.Train(new VariantSpec { Label = "no aux head" + suffix, Model = Model, Recipe = recipe, Aux = false, SeedOffset = s }));
        }

        // The early target: the no-aux run's accuracy at the first evaluation past a quarter of the steps.
        var reference = without[0];
        long quarter = reference.PlannedSteps / 4;
        var early = reference.Evaluations.FirstOrDefault(e => e.Step >= quarter) ?? reference.Evaluations[^1];
        double earlyTarget = early.Top1;
        long? stepsWith = Measures.StepsToTarget(withAux[0].Top1Curve, earlyTarget);
        long? stepsWithout = Measures.StepsToTarget(reference.Top1Curve, earlyTarget);
        double speedup = stepsWith is { } a && stepsWithout is { } b ? (double)b / a : double.NaN;
        var paired = Measures.Paired([.. withAux.SelectMany(r => r.FinalCorrect)], [.. without.SelectMany(r => r.FinalCorrect)]);
        double aTop1 = withAux.Average(r => r.FinalTop1), nTop1 = without.Average(r => r.FinalTop1);

        var measurements = new List<Measurement>
        {
            new("early target: no-aux test top-1 at a quarter of the steps", "", $"{Fmt.Acc(earlyTarget)} at step {early.Step}"),
            new("steps to the early target, with / without aux (speed-up)", "no speed-up", $"{Fmt.Steps(stepsWith)} / {Fmt.Steps(stepsWithout)} ({Fmt.Times(speedup)})"),
            new("final test top-1 with / without aux", "", $"{Fmt.Acc(aTop1)} / {Fmt.Acc(nTop1)}"),
            new("final top-1 gain from aux (95 % interval, paired)", "slightly higher", $"{Fmt.Points(paired.Difference)} [{Fmt.Points(paired.Low)}, {Fmt.Points(paired.High)}] on {Fmt.N(paired.Count)} image-runs"),
            new("final train loss, last 10 % of steps, with (main + 0.4 aux) / without", "", $"{Fmt.Acc(withAux.Average(r => Measures.TailMean(r.TrainLoss)))} / {Fmt.Acc(without.Average(r => Measures.TailMean(r.TrainLoss)))}"),
            new("parameters with / without aux", "", $"{Fmt.N(withAux[0].Params)} / {Fmt.N(without[0].Params)}"),
        };
        Papers.AccuracyPlot(ctx, [.. withAux, .. without], "Auxiliary head: test accuracy", [("early target", earlyTarget)]);
        Papers.LossPlot(ctx, [.. withAux, .. without], "Auxiliary head: training loss (with aux: main + 0.4 × aux)");

        bool earlySpeedup = double.IsFinite(speedup) && speedup >= EarlySpeedup;
        string interval = $"{Fmt.Points(paired.Difference)}, 95 % interval {Fmt.Points(paired.Low)} to {Fmt.Points(paired.High)}";
        Verdict verdict;
        string reason;
        if (earlySpeedup)
        {
            verdict = Verdict.NotSupported;
            reason = $"The aux head sped up early training: {Fmt.Times(speedup)} fewer steps to the no-aux run's quarter-way accuracy {Fmt.Acc(earlyTarget)}.";
        }
        else if (paired.SecondBetter)
        {
            verdict = Verdict.NotSupported;
            reason = $"No early speed-up ({Fmt.Times(speedup)}), but the aux head lowered the final accuracy beyond the noise ({interval}).";
        }
        else if (paired.FirstBetter)
        {
            verdict = Verdict.Supported;
            reason = $"No early speed-up ({Fmt.Times(speedup)} to {Fmt.Acc(earlyTarget)}), and a higher final accuracy with the aux head beyond the noise ({interval}).";
        }
        else
        {
            verdict = Verdict.Inconclusive;
            reason = $"No early speed-up ({Fmt.Times(speedup)} to {Fmt.Acc(earlyTarget)}), as the paper says, but the final difference ({interval}) is within the noise, so the regularising effect is not resolved.";
        }

        return new ClaimOutcome(
            MeasuredFigure: $"early speed-up {Fmt.Times(speedup)}; final {Fmt.Points(paired.Difference)} top-1 with aux",
            Verdict: verdict,
            Reason: reason,
            Measurements: measurements,
            Setup:
            [
                $"Model: {Model} at width {Fmt.F(ctx.Budget.Width)} with the small-input stem at {ctx.Budget.InputSize} px (its aux head pools adaptively to 5×5, so it runs on the 6×6 grid of this input).",
                $"Training: {Papers.Describe(recipe, recipe.LearningRateForBatch(ctx.Budget.BatchSize))}; the run without aux differs only in not building the head.",
                $"An early speed-up counts when the aux run reaches the early target in at most 1/{Fmt.F(EarlySpeedup)} of the steps.",
            ],
            Notes:
            [
                "The paper observes the aux effect over ImageNet training of many epochs; on a few epochs of Fashion-MNIST the 'near the end' regime may not be reached.",
                "The v1 paper added two aux heads to GoogLeNet with weight 0.3; this checks the later v3 statement on the one head of Inception-v3.",
            ]);
    }
}
