using TorchSharp;
using static TorchSharp.torch;

namespace Incept.Reproduce;

/// <summary>The difference in accuracy of two classifiers on the same examples, with its paired standard error.</summary>
/// <param name="Count">Examples compared.</param>
/// <param name="OnlyA">Examples only the first classifier gets right.</param>
/// <param name="OnlyB">Examples only the second classifier gets right.</param>
public sealed record PairedDifference(int Count, long OnlyA, long OnlyB)
{
    /// <summary>Accuracy of the first minus accuracy of the second.</summary>
    public double Difference => Count == 0 ? double.NaN : (double)(OnlyA - OnlyB) / Count;

    /// <summary>
    /// Standard error of <see cref="Difference"/> over the examples (the paired-proportions estimate
    /// √(b + c − (b − c)²/n) / n, with b and c the discordant counts).
    /// </summary>
    public double StandardError => Count == 0 ? double.NaN
        : Math.Sqrt(Math.Max(0, OnlyA + OnlyB - (double)(OnlyA - OnlyB) * (OnlyA - OnlyB) / Count)) / Count;

    /// <summary>Lower end of the 95 % confidence interval of <see cref="Difference"/>.</summary>
    public double Low => Difference - 1.96 * StandardError;

    /// <summary>Upper end of the 95 % confidence interval of <see cref="Difference"/>.</summary>
    public double High => Difference + 1.96 * StandardError;

    /// <summary>Whether the 95 % interval lies entirely above zero (the first is better beyond the noise).</summary>
    public bool FirstBetter => Low > 0;

    /// <summary>Whether the 95 % interval lies entirely below zero (the second is better beyond the noise).</summary>
    public bool SecondBetter => High < 0;
}

/// <summary>The measurements the experiments make on curves and activations, kept apart so that they can be checked on constructed inputs.</summary>
public static class Measures
{
    /// <summary>
    /// The step of the first point of <paramref name="curve"/> (in step order) whose value is at least
    /// <paramref name="target"/>, or null when no point reaches it.
    /// </summary>
    public static long? StepsToTarget(IEnumerable<StepValue> curve, double target)
    {
        ArgumentNullException.ThrowIfNull(curve);
        foreach (var p in curve.OrderBy(p => p.Step))
        {
            if (p.Value >= target) return p.Step;
        }

        return null;
    }

    /// <summary>
    /// The fraction of channels (dimension 1 of <paramref name="activations"/>, N × C or N × C × H × W) that are
    /// dead: no value above zero for any example of the batch at any position.
    /// </summary>
    public static double DeadChannelFraction(Tensor activations)
    {
        ArgumentNullException.ThrowIfNull(activations);
        if (activations.dim() < 2)
            throw new InputShapeException($"Dead channels are counted on a batch shaped N×C(×H×W); got [{string.Join(", ", activations.shape)}].");
        using var _ = no_grad();
        using var scope = NewDisposeScope();
        long channels = activations.shape[1];
        if (channels == 0) return double.NaN;
        // C × (N·H·W): a channel is alive when any of its values is positive.
        var perChannel = activations.detach().transpose(0, 1).reshape(channels, -1);
        using var zero = 0.ToScalar();
        long alive = perChannel.gt(zero).any(1).sum().item<long>();
        return (double)(channels - alive) / channels;
    }

    /// <summary>
    /// The first step (1-based) at which a run's per-step <paramref name="losses"/> are not finite or exceed
    /// <paramref name="factor"/> × <paramref name="reference"/> (a loss explosion), or null when none does.
    /// </summary>
    /// <param name="losses">The training loss after each step, from the first.</param>
    /// <param name="reference">A loss the run should stay below a multiple of: chance level, ln(classes), or the first loss, whichever is larger.</param>
    /// <param name="factor">How many times the reference counts as an explosion.</param>
    public static long? DivergenceStep(IEnumerable<double> losses, double reference, double factor = DefaultExplosionFactor)
    {
        ArgumentNullException.ThrowIfNull(losses);
        long step = 0;
        foreach (var loss in losses)
        {
            step++;
            if (IsDivergent(loss, reference, factor)) return step;
        }

        return null;
    }

    /// <summary>The multiple of the reference loss that <see cref="DivergenceStep"/> counts as an explosion by default.</summary>
    public const double DefaultExplosionFactor = 10;

    /// <summary>Whether one loss value is not finite or exceeds <paramref name="factor"/> × <paramref name="reference"/>.</summary>
    public static bool IsDivergent(double loss, double reference, double factor = DefaultExplosionFactor)
        => !double.IsFinite(loss) || loss > factor * reference;

    /// <summary>Compares two classifiers' per-example correctness on the same examples, in the same order.</summary>
    public static PairedDifference Paired(IReadOnlyList<bool> a, IReadOnlyList<bool> b)
    {
        ArgumentNullException.ThrowIfNull(a);
        ArgumentNullException.ThrowIfNull(b);
        if (a.Count != b.Count)
            throw new ArgumentException($"A paired comparison needs the same examples: {a.Count} against {b.Count}.", nameof(b));
        long onlyA = 0, onlyB = 0;
        for (int i = 0; i < a.Count; i++)
        {
            if (a[i] && !b[i]) onlyA++;
            else if (b[i] && !a[i]) onlyB++;
        }

        return new PairedDifference(a.Count, onlyA, onlyB);
    }

    /// <summary>
    /// The mean of a per-step series over its last <paramref name="fraction"/> of steps (at least one point): a
    /// run's final level with the step-to-step noise averaged out.
    /// </summary>
    public static double TailMean(IReadOnlyList<StepValue> series, double fraction = 0.1)
    {
        ArgumentNullException.ThrowIfNull(series);
        if (series.Count == 0) return double.NaN;
        int n = Math.Max(1, (int)Math.Round(series.Count * fraction));
        return series.Skip(series.Count - n).Average(p => p.Value);
    }
}
