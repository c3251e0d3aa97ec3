using Incept.Reproduce;
using Incept.Training;
using TorchSharp;
using static TorchSharp.torch;

namespace Incept.Tests.Reproduce;

/// <summary>The experiments' measurements on constructed inputs whose answers are known.</summary>
public class MeasuresTests
{
    private static StepValue[] Curve(params (long Step, double Value)[] points) => [.. points.Select(p => new StepValue(p.Step, p.Value))];

    [Fact]
    public void Steps_to_target_is_the_first_evaluation_at_or_above_it()
    {
        var curve = Curve((10, 0.30), (20, 0.55), (30, 0.70), (40, 0.68), (50, 0.81), (60, 0.79));
        Assert.Equal(30, Measures.StepsToTarget(curve, 0.70));
        Assert.Equal(50, Measures.StepsToTarget(curve, 0.75));
        Assert.Equal(10, Measures.StepsToTarget(curve, 0.10));
        Assert.Null(Measures.StepsToTarget(curve, 0.82));
        Assert.Null(Measures.StepsToTarget([], 0.5));
    }

    [Fact]
    public void Steps_to_target_reads_the_curve_in_step_order()
    {
        var shuffled = Curve((30, 0.9), (10, 0.2), (20, 0.85));
        Assert.Equal(20, Measures.StepsToTarget(shuffled, 0.8));
    }

    [Fact]
    public void A_channel_is_dead_when_no_image_gives_it_a_positive_value_anywhere()
    {
        // 3 images × 4 channels × 2 × 2. Channel 0: all zeros (dead); channel 1: negative everywhere (dead);
        // channel 2: one positive value in the last image's corner (alive); channel 3: positive everywhere (alive).
        var values = new float[3 * 4 * 2 * 2];
        int At(int n, int c, int h, int w) => ((n * 4 + c) * 2 + h) * 2 + w;
        for (int n = 0; n < 3; n++)
        {
            for (int h = 0; h < 2; h++)
            {
                for (int w = 0; w < 2; w++)
                {
                    values[At(n, 1, h, w)] = -0.5f;
                    values[At(n, 2, h, w)] = -1f;
                    values[At(n, 3, h, w)] = 2f;
                }
            }
        }
        values[At(2, 2, 1, 1)] = 1e-3f;
        using var activations = tensor(values, [3, 4, 2, 2]);
        Assert.Equal(0.5, Measures.DeadChannelFraction(activations));

        using var pooled = tensor(new float[] { 0, 1, 0, 0, 0, 0 }, [2, 3]);
        Assert.Equal(2.0 / 3, Measures.DeadChannelFraction(pooled), 12);
        using var flat = tensor(new float[] { 1, 2 });
        Assert.Throws<InputShapeException>(() => Measures.DeadChannelFraction(flat));
    }

    [Fact]
    public void Divergence_is_a_non_finite_loss_or_one_beyond_ten_times_the_reference()
    {
        double reference = Math.Log(10);
        Assert.Null(Measures.DivergenceStep([2.3, 2.1, 5.0, 22.0, 1.2], reference));
        Assert.Equal(3, Measures.DivergenceStep([2.3, 2.1, double.NaN, 1.0], reference));
        Assert.Equal(2, Measures.DivergenceStep([2.3, double.PositiveInfinity], reference));
        Assert.Equal(4, Measures.DivergenceStep([2.3, 2.2, 20.0, 23.5, 1e6], reference));
        Assert.Equal(2, Measures.DivergenceStep([1.0, 3.5], 1.0, factor: 3));
        Assert.False(Measures.IsDivergent(10 * reference, reference));
        Assert.True(Measures.IsDivergent(10 * reference + 1e-9, reference));
    }

    [Fact]
    public void Paired_difference_counts_discordant_examples_and_their_standard_error()
    {
        // 10 examples: A alone right on 3, B alone right on 1, both right on 4, both wrong on 2.
        bool[] a = [true, true, true, false, true, true, true, true, false, false];
        bool[] b = [false, false, false, true, true, true, true, true, false, false];
        var d = Measures.Paired(a, b);
        Assert.Equal(10, d.Count);
        Assert.Equal(3, d.OnlyA);
        Assert.Equal(1, d.OnlyB);
        Assert.Equal(0.2, d.Difference, 12);
        // √(b + c − (b − c)²/n) / n = √(4 − 0.4) / 10
        Assert.Equal(Math.Sqrt(3.6) / 10, d.StandardError, 12);
        Assert.Equal(0.2 - 1.96 * Math.Sqrt(3.6) / 10, d.Low, 12);
        Assert.False(d.FirstBetter);
        Assert.False(d.SecondBetter);

        var clear = Measures.Paired([.. Enumerable.Repeat(true, 100)], [.. Enumerable.Range(0, 100).Select(i => i % 2 == 0)]);
        Assert.True(clear.FirstBetter);
        Assert.Throws<ArgumentException>(() => Measures.Paired([true], [true, false]));
    }

    [Fact]
    public void Expected_calibration_error_over_15_bins_matches_a_hand_computed_set()
    {
        // Two classes. Four predictions with confidence 0.95 (bin 15: (14/15, 1]), three right: |0.75 − 0.95| = 0.2.
        // Four with confidence 0.6 (bin 9: (8/15, 9/15]), all right: |1 − 0.6| = 0.4. ECE = 4/8·0.2 + 4/8·0.4 = 0.3.
        double[][] probabilities = [.. Enumerable.Repeat(new[] { 0.95, 0.05 }, 4), .. Enumerable.Repeat(new[] { 0.6, 0.4 }, 4)];
        long[] targets = [0, 0, 0, 1, 0, 0, 0, 0];
        var metrics = new ClassificationMetrics(2);
        using (var logits = tensor(probabilities.SelectMany(p => p).ToArray(), [8, 2]).log())
        using (var y = tensor(targets))
            metrics.Update(logits, y);
        Assert.Equal(15, metrics.CalibrationBins.Count);
        Assert.Equal(0.3, metrics.ExpectedCalibrationError, 9);
        Assert.Equal(4, metrics.CalibrationBins[14].Count);
        Assert.Equal(4, metrics.CalibrationBins[8].Count);
    }

    [Fact]
    public void Tail_mean_averages_the_last_tenth()
    {
        var series = Enumerable.Range(1, 20).Select(i => new StepValue(i, i)).ToList();
        Assert.Equal(19.5, Measures.TailMean(series));
        Assert.Equal(3, Measures.TailMean([new StepValue(1, 3)]));
    }

    [Theory]
    [InlineData(0.2, 0.05, Verdict.Supported)]
    [InlineData(0.05, null, Verdict.Supported)]
    [InlineData(0.1, 0.1, Verdict.Inconclusive)]
    [InlineData(null, null, Verdict.Inconclusive)]
    [InlineData(0.05, 0.2, Verdict.NotSupported)]
    [InlineData(null, 0.1, Verdict.NotSupported)]
    public void Residual_scaling_is_judged_by_the_highest_learning_rate_each_variant_trains_at(double? scaled, double? unscaled, Verdict expected)
    {
        var (verdict, reason) = Incept.Reproduce.Claims.ResidualScalingClaim.Judge(scaled, unscaled, highest: 0.4);
        Assert.Equal(expected, verdict);
        Assert.EndsWith(".", reason, StringComparison.Ordinal);
    }
}
