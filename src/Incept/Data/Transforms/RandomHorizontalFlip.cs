namespace Incept.Data.Transforms;

/// <summary>Mirrors the image left to right with probability <see cref="Probability"/>.</summary>
public sealed class RandomHorizontalFlip : IImageTransform
{
    /// <summary>Creates the transform; torchvision's default probability is one half.</summary>
    public RandomHorizontalFlip(double probability = 0.5)
    {
        if (!(probability >= 0 && probability <= 1))
            throw new ArgumentOutOfRangeException(nameof(probability), probability, "A probability is between 0 and 1.");
        Probability = probability;
    }

    /// <summary>Chance of flipping.</summary>
    public double Probability { get; }

    /// <inheritdoc/>
    public FloatImage Apply(FloatImage image, Random random)
    {
        ArgumentNullException.ThrowIfNull(random);
        return random.NextDouble() < Probability ? Flip(image) : image;
    }

    /// <summary>Returns <paramref name="image"/> mirrored left to right.</summary>
    public static FloatImage Flip(FloatImage image)
    {
        ArgumentNullException.ThrowIfNull(image);
        var result = new FloatImage(image.Channels, image.Height, image.Width);
        var src = image.Array;
        var dst = result.Array;
        int w = image.Width;
        for (int row = 0; row < image.Channels * image.Height; row++)
        {
            int o = row * w;
            for (int x = 0; x < w; x++) dst[o + x] = src[o + w - 1 - x];
        }
        return result;
    }
}
