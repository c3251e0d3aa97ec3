using Incept.Data;
using Incept.Training;
using static TorchSharp.torch;

namespace Incept.Inference;

/// <summary>One class of a prediction: the classifier output's index, its name, its softmax probability and logit.</summary>
public sealed record ClassScore(int Index, string Label, float Probability, float Logit);

/// <summary>What the network says about one image: the most probable classes, best first, and every logit.</summary>
public sealed record ImagePrediction(string Path, IReadOnlyList<ClassScore> Top, IReadOnlyList<float> Logits);

/// <summary>The predictions for a batch of files and the files of the batch that could not be read.</summary>
public sealed record PredictionBatch(IReadOnlyList<ImagePrediction> Predictions, IReadOnlyList<ImageFailure> Failures);

/// <summary>
/// Classifies image files: prepares them as the weights say (<see cref="ImagePreprocessor"/>), runs them through an
/// <see cref="IInferenceEngine"/> in batches, and names the most probable classes.
/// </summary>
public sealed class Predictor
{
    private readonly IInferenceEngine _engine;

    /// <summary>
    /// Classifies with <paramref name="engine"/> the images <paramref name="preprocessor"/> prepares; <paramref name="classNames"/>
    /// names the outputs. With <paramref name="tta"/> each image is scored over its views (see <see cref="TestTimeAugmentation"/>):
    /// the probabilities are their mean and the logits the logarithm of that mean.
    /// </summary>
    public Predictor(IInferenceEngine engine, ImagePreprocessor preprocessor, IReadOnlyList<string> classNames,
        TestTimeAugmentation tta = TestTimeAugmentation.None)
    {
        ArgumentNullException.ThrowIfNull(engine);
        ArgumentNullException.ThrowIfNull(preprocessor);
        ArgumentNullException.ThrowIfNull(classNames);
        _engine = engine;
        Preprocessor = preprocessor;
        ClassNames = classNames;
        Tta = tta;
    }

    /// <summary>The views each image is scored over.</summary>
    public TestTimeAugmentation Tta { get; }

    /// <summary>How images are prepared.</summary>
    public ImagePreprocessor Preprocessor { get; }

    /// <summary>Names of the classifier outputs.</summary>
    public IReadOnlyList<string> ClassNames { get; }

    /// <summary>
    /// Classifies <paramref name="paths"/> as one batch, keeping the <paramref name="top"/> most probable classes of
    /// each; unreadable files are skipped and listed in <see cref="PredictionBatch.Failures"/>.
    /// </summary>
    /// <exception cref="InceptException">The engine's outputs do not match the class names.</exception>
    public PredictionBatch Predict(IReadOnlyList<string> paths, int top = 5)
    {
        ArgumentNullException.ThrowIfNull(paths);
        ArgumentOutOfRangeException.ThrowIfLessThan(top, 1);
        using var batch = Preprocessor.LoadBatch(paths);
        if (batch.Images is null) return new PredictionBatch([], batch.Failures);
        using var logits = Tta.Logits(_engine.Run, batch.Images);
        if (logits.dim() != 2 || logits.shape[0] != batch.Paths.Count)
            throw new InceptException($"The {_engine.Name} engine returned logits shaped [{string.Join(", ", logits.shape)}] for {batch.Paths.Count} images; expected one row per image.");
        int classes = (int)logits.shape[1];
        if (classes != ClassNames.Count)
            throw new InceptException($"The network has {classes} outputs but {ClassNames.Count} class names are known; give weights whose class names match their classifier.");
        using var cpu = logits.to_type(ScalarType.Float32).contiguous();
        var values = cpu.data<float>().ToArray();
        var predictions = new List<ImagePrediction>(batch.Paths.Count);
        for (int i = 0; i < batch.Paths.Count; i++)
        {
            var row = values.AsMemory(i * classes, classes).ToArray();
            predictions.Add(new ImagePrediction(batch.Paths[i], TopK(row, Math.Min(top, classes)), row));
        }
        return new PredictionBatch(predictions, batch.Failures);
    }

    /// <summary>Classifies <paramref name="paths"/> in batches of <paramref name="batchSize"/>, yielding each batch's results as it completes.</summary>
    public IEnumerable<PredictionBatch> PredictAll(IReadOnlyList<string> paths, int batchSize, int top = 5)
    {
        ArgumentNullException.ThrowIfNull(paths);
        ArgumentOutOfRangeException.ThrowIfLessThan(batchSize, 1);
        ArgumentOutOfRangeException.ThrowIfLessThan(top, 1);
        return Batches();

        IEnumerable<PredictionBatch> Batches()
        {
            for (int start = 0; start < paths.Count; start += batchSize)
                yield return Predict(paths.Skip(start).Take(batchSize).ToList(), top);
        }
    }

    private ClassScore[] TopK(float[] logits, int k)
    {
        // Softmax in double, shifted by the maximum so that no exponent overflows.
        double max = logits.Max(), sum = 0;
        var p = new double[logits.Length];
        for (int j = 0; j < logits.Length; j++) sum += p[j] = Math.Exp(logits[j] - max);
        return Enumerable.Range(0, logits.Length)
            .OrderByDescending(j => logits[j]).ThenBy(j => j)
            .Take(k)
            .Select(j => new ClassScore(j, ClassNames[j], (float)(p[j] / sum), logits[j]))
            .ToArray();
    }
}
