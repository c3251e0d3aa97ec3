using TorchSharp;
using static TorchSharp.torch;

namespace Incept.Training;

/// <summary>
/// Test-time augmentation: the views of each image an evaluation averages before scoring it.
/// </summary>
/// <remarks>
/// With <see cref="HorizontalFlip"/> each image is scored as the mean of the class probabilities of the image and of
/// its mirror image; the metrics and the loss see the logarithm of that mean (a valid logit vector, whose
/// cross-entropy is the negative log of the averaged probability). It suits data whose training already flips
/// images, as the Incept pipelines do; it doubles the cost of evaluation.
/// </remarks>
public enum TestTimeAugmentation
{
    /// <summary>Each image once, as it is.</summary>
    None,

    /// <summary>The image and its horizontal mirror, class probabilities averaged.</summary>
    HorizontalFlip,
}

/// <summary>Parsing of <see cref="TestTimeAugmentation"/> names (<c>none</c>, <c>flip</c>) for command lines and configs.</summary>
public static class TestTimeAugmentationNames
{
    /// <summary>The names <see cref="Parse"/> accepts.</summary>
    public static IReadOnlyList<string> Names { get; } = ["none", "flip"];

    /// <summary>The augmentation called <paramref name="name"/> (<c>none</c> or <c>flip</c>, case-insensitive).</summary>
    /// <exception cref="TrainingSettingException">The name is not one of <see cref="Names"/>.</exception>
    public static TestTimeAugmentation Parse(string name) => name?.Trim().ToLowerInvariant() switch
    {
        "none" => TestTimeAugmentation.None,
        "flip" or "hflip" or "horizontal_flip" => TestTimeAugmentation.HorizontalFlip,
        _ => throw new TrainingSettingException("tta", $"Unknown test-time augmentation '{name}'; use none or flip."),
    };

    /// <summary>The short name of <paramref name="tta"/> (<c>none</c>, <c>flip</c>).</summary>
    public static string Name(this TestTimeAugmentation tta) => tta == TestTimeAugmentation.HorizontalFlip ? "flip" : "none";
}

/// <summary>Applying a <see cref="TestTimeAugmentation"/>, for training evaluations and predictions alike.</summary>
public static class TestTimeAugmentationExtensions
{
    /// <summary>
    /// The logits <paramref name="logitsOf"/> gives <paramref name="images"/> under <paramref name="tta"/>: as they are, or,
    /// for <see cref="TestTimeAugmentation.HorizontalFlip"/>, the logarithm of the mean of the class probabilities of the
    /// images and of their mirror images.
    /// </summary>
    public static Tensor Logits(this TestTimeAugmentation tta, Func<Tensor, Tensor> logitsOf, Tensor images)
    {
        ArgumentNullException.ThrowIfNull(logitsOf);
        ArgumentNullException.ThrowIfNull(images);
        if (tta == TestTimeAugmentation.None) return logitsOf(images);
        using var scope = NewDisposeScope();
        using var ln2 = Math.Log(2).ToScalar();
        var plain = logitsOf(images).log_softmax(1);
        var mirrored = logitsOf(images.flip(-1)).log_softmax(1);
        return stack([plain, mirrored]).logsumexp(0).sub_(ln2).MoveToOuterDisposeScope();
    }
}
