using Incept.Training;
using TorchSharp;
using static TorchSharp.torch;

namespace Incept.Tests.Training;

/// <summary>Accuracy, confusion matrix, per-class accuracy and calibration error on constructed logits.</summary>
public class ClassificationMetricsTests
{
    // Logits are log-probabilities, so the softmax confidences are the probabilities written here.
    private static readonly double[][] Probabilities =
    [
        [0.90, 0.02, 0.02, 0.02, 0.02, 0.02], // target 0: right, confidence 0.90
        [0.12, 0.62, 0.10, 0.08, 0.05, 0.03], // target 0: predicted 1, target second → in the top 5
        [0.03, 0.05, 0.08, 0.10, 0.12, 0.62], // target 0: predicted 5, target last → not in the top 5
        [0.05, 0.04, 0.72, 0.10, 0.06, 0.03], // target 2: right, confidence 0.72
    ];

    private static readonly long[] Targets = [0, 0, 0, 2];

    private static Tensor Logits(int from, int count) =>
        tensor(Probabilities.Skip(from).Take(count).SelectMany(r => r).ToArray(), [count, 6]).log();

    [Fact]
    public void Constructed_batch_gives_the_hand_computed_metrics()
    {
        var m = new ClassificationMetrics(6);
        using (var logits = Logits(0, 4))
        using (var targets = tensor(Targets))
            m.Update(logits, targets);

        Assert.Equal(4, m.Count);
        Assert.Equal(0.5, m.Top1);
        Assert.Equal(0.75, m.Top5);
        var c = m.ConfusionMatrix;
        Assert.Equal(1, c[0, 0]);
        Assert.Equal(1, c[0, 1]);
        Assert.Equal(1, c[0, 5]);
        Assert.Equal(1, c[2, 2]);
        Assert.Equal(4, c.Cast<long>().Sum());
        Assert.Equal([3L, 0, 1, 0, 0, 0], m.ClassCounts);
        var perClass = m.PerClassAccuracy;
        Assert.Equal(1.0 / 3, perClass[0], 15);
        Assert.Equal(1.0, perClass[2]);
        Assert.True(double.IsNaN(perClass[1]));
        Assert.Equal(2.0 / 3, m.MeanClassAccuracy, 15);

        // 15 bins of width 1/15: 0.90 → bin 13 (right), 0.62 ×2 → bin 9 (both wrong), 0.72 → bin 10 (right).
        // ECE = ¼·|1 − 0.90| + ½·|0 − 0.62| + ¼·|1 − 0.72| = 0.025 + 0.31 + 0.07.
        Assert.Equal(0.405, m.ExpectedCalibrationError, 12);
        var bins = m.CalibrationBins;
        Assert.Equal(15, bins.Count);
        Assert.Equal([9, 10, 13], bins.Select((b, i) => (b, i)).Where(x => x.b.Count > 0).Select(x => x.i));
        Assert.Equal(0.62, bins[9].Confidence, 12);
        Assert.Equal(0, bins[9].Accuracy);
    }

    [Fact]
    public void Batches_accumulate_like_one_batch_and_reset_forgets()
    {
        var whole = new ClassificationMetrics(6);
        var parts = new ClassificationMetrics(6);
        using (var all = Logits(0, 4))
        using (var y = tensor(Targets))
            whole.Update(all, y);
        using (var first = Logits(0, 1))
        using (var y = tensor(Targets.Take(1).ToArray()))
            parts.Update(first, y);
        using (var rest = Logits(1, 3))
        using (var y = tensor(Targets.Skip(1).ToArray()))
            parts.Update(rest, y);

        Assert.Equal(whole.Top1, parts.Top1);
        Assert.Equal(whole.Top5, parts.Top5);
        Assert.Equal(whole.ConfusionMatrix, parts.ConfusionMatrix);
        Assert.Equal(whole.ExpectedCalibrationError, parts.ExpectedCalibrationError, 12);

        parts.Reset();
        Assert.Equal(0, parts.Count);
        Assert.True(double.IsNaN(parts.Top1));
        Assert.True(double.IsNaN(parts.ExpectedCalibrationError));
    }

    [Fact]
    public void Top_k_counts_a_target_among_the_k_best_and_all_when_k_exceeds_the_classes()
    {
        using var logits = tensor(new float[] { 0.1f, 0.5f, 0.4f, 3, 2, 1 }, [2, 3]);
        using var y = tensor(new long[] { 2, 2 });
        Assert.Equal(0, ClassificationMetrics.TopKCorrect(logits, y, 1));
        Assert.Equal(1, ClassificationMetrics.TopKCorrect(logits, y, 2));
        Assert.Equal(2, ClassificationMetrics.TopKCorrect(logits, y, 5));

        var m = new ClassificationMetrics(3);
        m.Update(logits, y);
        Assert.Equal(1.0, m.Top5);
    }

    [Fact]
    public void Wrong_shapes_and_targets_are_explained()
    {
        var m = new ClassificationMetrics(3);
        using var logits = zeros(2, 4);
        using var y = tensor(new long[] { 0, 1 });
        Assert.Contains("N×3", Assert.Throws<InputShapeException>(() => m.Update(logits, y)).Message, StringComparison.Ordinal);
        using var ok = zeros(2, 3);
        using var outside = tensor(new long[] { 0, 3 });
        Assert.Contains("outside the classes", Assert.Throws<InputShapeException>(() => m.Update(ok, outside)).Message, StringComparison.Ordinal);
        Assert.Equal(0, m.Count);
    }

    [Fact]
    public void Repeated_updates_leak_no_tensors()
    {
        var m = new ClassificationMetrics(6);
        using var logits = Logits(0, 4);
        using var y = tensor(Targets);
        m.Update(logits, y);
        var live = DisposeScopeManager.Statistics.ThreadTotalLiveCount;
        for (var i = 0; i < 10; i++) m.Update(logits, y);
        Assert.Equal(live, DisposeScopeManager.Statistics.ThreadTotalLiveCount);
        Assert.Equal(44, m.Count);
    }
}
