using TorchSharp;
using static TorchSharp.torch;

namespace Incept.Training;

/// <summary>One bin of a reliability diagram: the predictions whose confidence falls in (Lower, Upper].</summary>
/// <param name="Lower">Lower edge of the bin (exclusive, except 0 for the first bin).</param>
/// <param name="Upper">Upper edge of the bin (inclusive).</param>
/// <param name="Count">Predictions in the bin.</param>
/// <param name="Confidence">Mean confidence (top softmax probability) of those predictions; NaN when empty.</param>
/// <param name="Accuracy">Fraction of those predictions that are right; NaN when empty.</param>
public sealed record CalibrationBin(double Lower, double Upper, long Count, double Confidence, double Accuracy);

/// <summary>
/// Accumulates classification metrics over batches of logits: top-1 and top-5 accuracy, the confusion matrix, per-class
/// accuracy, and the expected calibration error (ECE) of the softmax confidence over equal-width bins.
/// </summary>
public sealed class ClassificationMetrics
{
    private readonly long[] confusion;
    private readonly long[] binCount;
    private readonly double[] binConfidence;
    private readonly long[] binCorrect;
    private long top5Correct;

    /// <summary>Creates an empty accumulator for <paramref name="numClasses"/> classes.</summary>
    /// <param name="numClasses">Classes of the classifier, at least 1.</param>
    /// <param name="calibrationBins">Equal-width confidence bins for the ECE (15 as in Guo et al., 2017).</param>
    public ClassificationMetrics(int numClasses, int calibrationBins = 15)
    {
        ArgumentOutOfRangeException.ThrowIfLessThan(numClasses, 1);
        ArgumentOutOfRangeException.ThrowIfLessThan(calibrationBins, 1);
        NumClasses = numClasses;
        confusion = new long[(long)numClasses * numClasses];
        binCount = new long[calibrationBins];
        binConfidence = new double[calibrationBins];
        binCorrect = new long[calibrationBins];
    }

    /// <summary>Classes of the classifier.</summary>
    public int NumClasses { get; }

    /// <summary>Examples seen.</summary>
    public long Count { get; private set; }

    /// <summary>Fraction of examples whose top-scoring class is the target (NaN before any example).</summary>
    public double Top1 => Ratio(Diagonal().Sum(), Count);

    /// <summary>Fraction of examples whose target is among the five top-scoring classes (all of them when there are five classes or fewer).</summary>
    public double Top5 => Ratio(top5Correct, Count);

    /// <summary>
    /// The confusion matrix: entry [t, p] counts examples of true class t predicted as p (the top-scoring class).
    /// </summary>
    public long[,] ConfusionMatrix
    {
        get
        {
            var m = new long[NumClasses, NumClasses];
            for (var t = 0; t < NumClasses; t++)
                for (var p = 0; p < NumClasses; p++)
                    m[t, p] = confusion[(long)t * NumClasses + p];
            return m;
        }
    }

    /// <summary>Examples seen of each true class.</summary>
    public long[] ClassCounts
    {
        get
        {
            var counts = new long[NumClasses];
            for (var t = 0; t < NumClasses; t++)
                for (var p = 0; p < NumClasses; p++)
                    counts[t] += confusion[(long)t * NumClasses + p];
            return counts;
        }
    }

    /// <summary>Top-1 accuracy within each true class (recall); NaN for a class with no examples.</summary>
    public double[] PerClassAccuracy
    {
        get
        {
            var counts = ClassCounts;
            var diagonal = Diagonal().ToArray();
            return [.. Enumerable.Range(0, NumClasses).Select(c => Ratio(diagonal[c], counts[c]))];
        }
    }

    /// <summary>The mean of <see cref="PerClassAccuracy"/> over the classes seen (balanced accuracy); NaN before any example.</summary>
    public double MeanClassAccuracy
    {
        get
        {
            var seen = PerClassAccuracy.Where(a => !double.IsNaN(a)).ToList();
            return seen.Count == 0 ? double.NaN : seen.Average();
        }
    }

    /// <summary>The reliability-diagram bins over the confidence range [0, 1].</summary>
    public IReadOnlyList<CalibrationBin> CalibrationBins =>
        [.. Enumerable.Range(0, binCount.Length).Select(b => new CalibrationBin(
            (double)b / binCount.Length, (double)(b + 1) / binCount.Length, binCount[b],
            binCount[b] == 0 ? double.NaN : binConfidence[b] / binCount[b], Ratio(binCorrect[b], binCount[b])))];

    /// <summary>
    /// Expected calibration error: Σ_b (n_b / N)·|accuracy_b − confidence_b| over the bins (NaN before any example).
    /// </summary>
    public double ExpectedCalibrationError
    {
        get
        {
            if (Count == 0) return double.NaN;
            double ece = 0;
            for (var b = 0; b < binCount.Length; b++)
                if (binCount[b] > 0)
                    ece += Math.Abs((double)binCorrect[b] / binCount[b] - binConfidence[b] / binCount[b]) * binCount[b] / Count;
            return ece;
        }
    }

    /// <summary>Adds a batch: <paramref name="logits"/> N×K (K = <see cref="NumClasses"/>) and class indices <paramref name="targets"/> (N).</summary>
    public void Update(Tensor logits, Tensor targets)
    {
        ArgumentNullException.ThrowIfNull(logits);
        ArgumentNullException.ThrowIfNull(targets);
        if (logits.dim() != 2 || logits.shape[1] != NumClasses)
            throw new InputShapeException($"The metrics take logits shaped N×{NumClasses}; got [{string.Join(", ", logits.shape)}].");
        if (targets.dim() != 1 || targets.shape[0] != logits.shape[0])
            throw new InputShapeException($"The metrics take one class index per row of logits ({logits.shape[0]}); got targets shaped [{string.Join(", ", targets.shape)}].");
        if (logits.shape[0] == 0) return;

        using var _ = no_grad();
        using var scope = NewDisposeScope();
        var y = targets.to(ScalarType.Int64).cpu();
        var yData = y.data<long>().ToArray();
        if (yData.Any(t => t < 0 || t >= NumClasses))
            throw new InputShapeException($"A target is outside the classes [0, {NumClasses}): {yData.First(t => t < 0 || t >= NumClasses)}.");

        var probs = logits.detach().to(ScalarType.Float64).softmax(1);
        var (confidence, predicted) = probs.max(1);
        var k = Math.Min(5, NumClasses);
        var (_, top) = logits.detach().topk(k, dim: 1);
        var inTop5 = top.cpu().eq(y.unsqueeze(1)).any(1).to(ScalarType.Int64).sum().item<long>();

        var conf = confidence.cpu().data<double>().ToArray();
        var pred = predicted.cpu().data<long>().ToArray();
        for (var i = 0; i < yData.Length; i++)
        {
            confusion[yData[i] * NumClasses + pred[i]]++;
            var bin = Math.Clamp((int)Math.Ceiling(conf[i] * binCount.Length) - 1, 0, binCount.Length - 1);
            binCount[bin]++;
            binConfidence[bin] += conf[i];
            if (pred[i] == yData[i]) binCorrect[bin]++;
        }
        top5Correct += inTop5;
        Count += yData.Length;
    }

    /// <summary>Forgets every example seen.</summary>
    public void Reset()
    {
        Array.Clear(confusion);
        Array.Clear(binCount);
        Array.Clear(binConfidence);
        Array.Clear(binCorrect);
        top5Correct = 0;
        Count = 0;
    }

    /// <summary>
    /// Examples of one batch whose target is among the <paramref name="k"/> top-scoring classes (all classes when k exceeds them).
    /// </summary>
    public static long TopKCorrect(Tensor logits, Tensor targets, int k)
    {
        ArgumentNullException.ThrowIfNull(logits);
        ArgumentNullException.ThrowIfNull(targets);
        ArgumentOutOfRangeException.ThrowIfLessThan(k, 1);
        if (logits.dim() != 2 || targets.dim() != 1 || targets.shape[0] != logits.shape[0])
            throw new InputShapeException($"Top-k accuracy takes logits N×K and N targets; got [{string.Join(", ", logits.shape)}] and [{string.Join(", ", targets.shape)}].");
        using var _ = no_grad();
        using var scope = NewDisposeScope();
        var (_, top) = logits.topk((int)Math.Min(k, logits.shape[1]), dim: 1);
        return top.eq(targets.to(ScalarType.Int64).unsqueeze(1)).any(1).sum().item<long>();
    }

    private IEnumerable<long> Diagonal() => Enumerable.Range(0, NumClasses).Select(c => confusion[(long)c * NumClasses + c]);

    private static double Ratio(long a, long b) => b == 0 ? double.NaN : (double)a / b;
}
