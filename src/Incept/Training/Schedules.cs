using TorchSharp;

namespace Incept.Training;

/// <summary>
/// A learning-rate schedule as a pure function of the position in training — (epoch, step within the epoch, steps per
/// epoch) — so that a resumed run sets exactly the rate the uninterrupted run would have. It gives a factor that
/// multiplies the base learning rate: a linear warm-up over the first <see cref="WarmupEpochs"/>, times the schedule's
/// decay.
/// </summary>
/// <remarks>
/// Positions are counted in optimizer steps: step s = epoch·stepsPerEpoch + stepInEpoch, from 0. Periods given in
/// epochs are rounded to whole steps. During warm-up (W = round(WarmupEpochs·stepsPerEpoch) steps) the factor is
/// multiplied by (s + 1)/W, so the first step already moves and step W − 1 reaches the full rate.
/// </remarks>
public abstract record LearningRateSchedule
{
    private readonly double warmupEpochs;

    /// <summary>Epochs of linear warm-up from 1/W of the rate to the full rate (0: none).</summary>
    public double WarmupEpochs
    {
        get => warmupEpochs;
        init
        {
            TrainingSettingException.CheckRange("warmup_epochs", value, 0);
            warmupEpochs = value;
        }
    }

    /// <summary>The factor (of the base learning rate) for the step <paramref name="stepInEpoch"/> of <paramref name="epoch"/>, both from 0.</summary>
    public double Factor(int epoch, int stepInEpoch, int stepsPerEpoch)
    {
        if (stepsPerEpoch < 1) throw new ArgumentOutOfRangeException(nameof(stepsPerEpoch), stepsPerEpoch, "An epoch has at least one step.");
        ArgumentOutOfRangeException.ThrowIfNegative(epoch);
        if (stepInEpoch < 0 || stepInEpoch >= stepsPerEpoch)
            throw new ArgumentOutOfRangeException(nameof(stepInEpoch), stepInEpoch, $"The step within the epoch must be in [0, {stepsPerEpoch}).");
        var step = (long)epoch * stepsPerEpoch + stepInEpoch;
        var warmup = Steps(WarmupEpochs, stepsPerEpoch);
        var factor = DecayFactor(step, warmup, stepsPerEpoch);
        return step < warmup ? factor * (step + 1) / warmup : factor;
    }

    /// <summary>The learning rate <paramref name="baseLearningRate"/> × <see cref="Factor"/>.</summary>
    public double LearningRate(double baseLearningRate, int epoch, int stepInEpoch, int stepsPerEpoch) =>
        baseLearningRate * Factor(epoch, stepInEpoch, stepsPerEpoch);

    /// <summary>
    /// Sets every parameter group of <paramref name="optimizer"/> to its initial learning rate × <see cref="Factor"/>; call
    /// it before each optimizer step. Groups keep their own base rates.
    /// </summary>
    /// <returns>The factor applied.</returns>
    public double Apply(torch.optim.Optimizer optimizer, int epoch, int stepInEpoch, int stepsPerEpoch)
    {
        ArgumentNullException.ThrowIfNull(optimizer);
        var factor = Factor(epoch, stepInEpoch, stepsPerEpoch);
        foreach (var g in optimizer.ParamGroups) g.LearningRate = g.InitialLearningRate * factor;
        return factor;
    }

    /// <summary>
    /// The decay period to use in a run of <paramref name="runEpochs"/> for a paper's period of
    /// <paramref name="paperPeriodEpochs"/> in a run of <paramref name="paperRunEpochs"/>: the period is scaled by
    /// runEpochs/paperRunEpochs, so the short run makes as many decays as the paper's run and ends at the same fraction of
    /// the initial rate. For example Inception-v3's 0.94 every 2 epochs over 100 epochs becomes 0.94 every 0.2 epochs over
    /// 10 epochs: both end at 0.94⁵⁰ ≈ 0.045 of the initial rate.
    /// </summary>
    public static double ScaleDecayPeriod(double paperPeriodEpochs, double paperRunEpochs, double runEpochs)
    {
        TrainingSettingException.CheckPositive("decay_epochs", paperPeriodEpochs);
        TrainingSettingException.CheckPositive("paper_epochs", paperRunEpochs);
        TrainingSettingException.CheckPositive("epochs", runEpochs);
        return paperPeriodEpochs * runEpochs / paperRunEpochs;
    }

    /// <summary>The decay factor at <paramref name="globalStep"/> (before the warm-up ramp is applied).</summary>
    /// <param name="globalStep">Steps taken before this one.</param>
    /// <param name="warmupSteps">Length of the warm-up, in steps.</param>
    /// <param name="stepsPerEpoch">Steps in one epoch.</param>
    protected abstract double DecayFactor(long globalStep, long warmupSteps, int stepsPerEpoch);

    /// <summary>A duration in epochs as a whole number of steps (at least 1 when the duration is positive).</summary>
    protected static long Steps(double epochs, int stepsPerEpoch) =>
        epochs <= 0 ? 0 : Math.Max(1L, (long)Math.Round(epochs * stepsPerEpoch, MidpointRounding.AwayFromZero));
}

/// <summary>A constant rate (after the optional warm-up).</summary>
public sealed record ConstantSchedule : LearningRateSchedule
{
    /// <inheritdoc/>
    protected override double DecayFactor(long globalStep, long warmupSteps, int stepsPerEpoch) => 1;
}

/// <summary>
/// Staircase exponential decay as TensorFlow's <c>exponential_decay(staircase=True)</c>: the rate is multiplied by
/// <see cref="Gamma"/> every <see cref="EveryEpochs"/> (0.94 every 2 epochs for Inception-v3, 0.96 every 8 for GoogLeNet).
/// The period counts from step 0, warm-up included, as TensorFlow counts from its global step.
/// </summary>
public sealed record StepDecaySchedule : LearningRateSchedule
{
    /// <summary>Creates the schedule.</summary>
    /// <param name="gamma">The factor applied at each decay, in (0, 1].</param>
    /// <param name="everyEpochs">The period in epochs (fractions allowed; rounded to whole steps).</param>
    public StepDecaySchedule(double gamma, double everyEpochs)
    {
        TrainingSettingException.CheckPositive("decay_rate", gamma);
        if (gamma > 1) throw new TrainingSettingException("decay_rate", $"The setting decay_rate must be in (0, 1]; got {gamma}.");
        TrainingSettingException.CheckPositive("decay_epochs", everyEpochs);
        Gamma = gamma;
        EveryEpochs = everyEpochs;
    }

    /// <summary>The factor applied at each decay.</summary>
    public double Gamma { get; }

    /// <summary>The period between decays, in epochs.</summary>
    public double EveryEpochs { get; }

    /// <inheritdoc/>
    protected override double DecayFactor(long globalStep, long warmupSteps, int stepsPerEpoch) =>
        Math.Pow(Gamma, globalStep / Steps(EveryEpochs, stepsPerEpoch));
}

/// <summary>
/// Cosine decay from the full rate at the end of warm-up to <see cref="FinalFactor"/> of it at the end of
/// <see cref="TotalEpochs"/>: factor = f + (1 − f)·½·(1 + cos(π·p)), with p the fraction of the post-warm-up steps done.
/// </summary>
public sealed record CosineSchedule : LearningRateSchedule
{
    /// <summary>Creates the schedule.</summary>
    /// <param name="totalEpochs">The length of the run, warm-up included.</param>
    /// <param name="finalFactor">The factor reached at the end, in [0, 1].</param>
    public CosineSchedule(double totalEpochs, double finalFactor = 0)
    {
        TrainingSettingException.CheckPositive("epochs", totalEpochs);
        if (!(finalFactor is >= 0 and <= 1))
            throw new TrainingSettingException("final_lr_factor", $"The setting final_lr_factor must be in [0, 1]; got {finalFactor}.");
        TotalEpochs = totalEpochs;
        FinalFactor = finalFactor;
    }

    /// <summary>The length of the run in epochs, warm-up included.</summary>
    public double TotalEpochs { get; }

    /// <summary>The factor reached at the end of the run.</summary>
    public double FinalFactor { get; }

    /// <inheritdoc/>
    protected override double DecayFactor(long globalStep, long warmupSteps, int stepsPerEpoch)
    {
        if (globalStep < warmupSteps) return 1;
        var decaySteps = Steps(TotalEpochs, stepsPerEpoch) - warmupSteps;
        var p = decaySteps <= 0 ? 1 : Math.Min(1.0, (double)(globalStep - warmupSteps) / decaySteps);
        return FinalFactor + (1 - FinalFactor) * 0.5 * (1 + Math.Cos(Math.PI * p));
    }
}
