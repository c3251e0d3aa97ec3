namespace Incept.Models;

/// <summary>
/// The settings every family takes. Defaults give the reference architecture with 1000 classes.
/// </summary>
public sealed record ModelConfig
{
    /// <summary>The smallest allowed <see cref="Width"/>.</summary>
    public const double MinWidth = 0.25;

    /// <summary>Classes of the main classifier; 0 builds the model without a classifier (features only).</summary>
    public int NumClasses { get; init; } = 1000;

    /// <summary>Channels of the input image.</summary>
    public int InChannels { get; init; } = 3;

    /// <summary>Dropout before the classifier; null takes the reference's value.</summary>
    public double? DropRate { get; init; }

    /// <summary>Whether to build the auxiliary heads (for families that have them).</summary>
    public bool AuxLogits { get; init; }

    /// <summary>
    /// Width multiplier, from 0.25 to 1 (the reference). Every convolution's output channels, and with them
    /// every concatenation, residual projection and the classifier's input, become the reference's times
    /// <see cref="Width"/>, rounded to a multiple of 8 (at least 8): see <see cref="Scaled"/>. Hidden
    /// fully connected layers (GoogLeNet's aux-head FC of 1024) scale the same way; output sizes do not:
    /// the classes and Inception-ResNet-v1's 512-d face embedding stay as they are.
    /// </summary>
    public double Width { get; init; } = 1.0;

    /// <summary>
    /// Builds a stem for 28–64 pixel images (Fashion-MNIST, CIFAR) instead of the reference's ImageNet stem:
    /// the stem's convolutions keep the resolution (stride 1, padded 3×3), its first max pool becomes an
    /// identity and its last reduction halves the grid, so a 28-pixel image reaches the first Inception stage
    /// at 14×14. Stem modules keep their names; each family documents its changes. Auxiliary heads pool
    /// adaptively so that they work on the small grid.
    /// </summary>
    public bool SmallInput { get; init; }

    /// <summary>
    /// The channels of a layer that has <paramref name="channels"/> in the reference, at this <see cref="Width"/>:
    /// <c>max(8, round(channels × Width / 8) × 8)</c> (round half to even), and exactly
    /// <paramref name="channels"/> at width 1.
    /// </summary>
    public long Scaled(long channels) => ScaleChannels(channels, Width);

    /// <summary>Checks the values and throws an <see cref="InceptException"/> naming the bad one.</summary>
    public void Validate()
    {
        if (NumClasses < 0) throw new InceptException($"The number of classes must be 0 or more; got {NumClasses}.");
        if (InChannels < 1) throw new InceptException($"The number of input channels must be at least 1; got {InChannels}.");
        if (AuxLogits && NumClasses == 0) throw new InceptException("Auxiliary heads need a classifier; set the number of classes above 0 or turn the aux heads off.");
        if (DropRate is < 0 or >= 1) throw new InceptException($"The dropout rate must be in [0, 1); got {DropRate}.");
        if (!(Width is >= MinWidth and <= 1.0))
            throw new InceptException($"The width multiplier must be between {MinWidth} and 1 (the reference); got {Width}.");
    }

    /// <summary>The one place where a reference width is scaled (see <see cref="Scaled"/>).</summary>
    internal static long ScaleChannels(long channels, double width)
        => width == 1.0 ? channels : Math.Max(8, (long)Math.Round(channels * width / 8) * 8);
}
