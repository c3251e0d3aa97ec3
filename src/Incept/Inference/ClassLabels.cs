using System.Reflection;

namespace Incept.Inference;

/// <summary>The names of a classifier's outputs: stored with the weights, ImageNet-1k's, or plain indices.</summary>
public static class ClassLabels
{
    /// <summary>Name of the label set of the ImageNet-1k weights (as <see cref="Weights.WeightsSpec.Labels"/> spells it).</summary>
    public const string ImageNet1kName = "imagenet-1k";

    /// <summary>The label TensorFlow ports give output 0 of their 1001 classes.</summary>
    public const string Background = "background";

    private static readonly Lazy<IReadOnlyList<string>> ImageNet = new(ReadImageNet);

    /// <summary>
    /// The 1000 ImageNet-1k (ILSVRC-2012) class names in the order of the classifier outputs of torchvision's and
    /// timm's weights (sorted WordNet ids), one short name per class.
    /// </summary>
    public static IReadOnlyList<string> ImageNet1k => ImageNet.Value;

    /// <summary>
    /// The names of <paramref name="numClasses"/> outputs: <paramref name="stored"/> (class names saved with the
    /// weights) when it has one per class; otherwise ImageNet-1k's for 1000 classes, or background then ImageNet-1k's
    /// for TensorFlow's 1001, when <paramref name="labelSet"/> is ImageNet-1k or unknown (null); otherwise
    /// <c>class 0</c>, <c>class 1</c>, …
    /// </summary>
    public static IReadOnlyList<string> Resolve(int numClasses, IReadOnlyList<string>? stored = null, string? labelSet = null)
    {
        ArgumentOutOfRangeException.ThrowIfNegative(numClasses);
        if (stored is not null && stored.Count == numClasses) return stored;
        bool imageNet = labelSet is null || string.Equals(labelSet, ImageNet1kName, StringComparison.OrdinalIgnoreCase);
        if (imageNet && numClasses == 1000) return ImageNet1k;
        if (imageNet && numClasses == 1001) return [Background, .. ImageNet1k];
        return [.. Enumerable.Range(0, numClasses).Select(i => $"class {i}")];
    }

    private static string[] ReadImageNet()
    {
        using var stream = Assembly.GetExecutingAssembly().GetManifestResourceStream("Incept.Inference.imagenet-1k.txt")
            ?? throw new InvalidOperationException("The ImageNet-1k class names are missing from the Incept assembly.");
        using var reader = new StreamReader(stream);
        var names = reader.ReadToEnd().Split('\n', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries);
        if (names.Length != 1000)
            throw new InvalidOperationException($"The embedded ImageNet-1k class names have {names.Length} entries instead of 1000.");
        return names;
    }
}
