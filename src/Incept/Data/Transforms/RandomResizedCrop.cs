namespace Incept.Data.Transforms;

/// <summary>A crop rectangle in pixels.</summary>
/// <param name="Top">First row.</param>
/// <param name="Left">First column.</param>
/// <param name="Height">Rows.</param>
/// <param name="Width">Columns.</param>
public readonly record struct CropBox(int Top, int Left, int Height, int Width);

/// <summary>
/// The Inception training crop (Szegedy et al., 2015), with torchvision's <c>RandomResizedCrop</c> algorithm:
/// up to ten times, draw an area fraction uniformly in [<see cref="MinScale"/>, <see cref="MaxScale"/>] and a
/// log-uniform aspect ratio in [<see cref="MinRatio"/>, <see cref="MaxRatio"/>], round the width and height, and
/// take the first rectangle that fits at a uniformly drawn position; if none fits, fall back to the largest
/// centred crop whose aspect ratio lies in the range. The crop is then resized to <see cref="Size"/> squared.
/// </summary>
public sealed class RandomResizedCrop : IImageTransform
{
    /// <summary>Creates the transform; the defaults are torchvision's (area 8–100 %, aspect ratio 3/4–4/3).</summary>
    public RandomResizedCrop(int size, Interpolation interpolation = Interpolation.Bilinear,
        double minScale = 0.08, double maxScale = 1.0, double minRatio = 3.0 / 4.0, double maxRatio = 4.0 / 3.0)
    {
        ArgumentOutOfRangeException.ThrowIfLessThan(size, 1);
        if (!(minScale > 0 && minScale <= maxScale))
            throw new ArgumentOutOfRangeException(nameof(minScale), minScale, "Need 0 < minScale <= maxScale.");
        if (!(minRatio > 0 && minRatio <= maxRatio))
            throw new ArgumentOutOfRangeException(nameof(minRatio), minRatio, "Need 0 < minRatio <= maxRatio.");
        Size = size;
        Interpolation = interpolation;
        MinScale = minScale;
        MaxScale = maxScale;
        MinRatio = minRatio;
        MaxRatio = maxRatio;
    }

    /// <summary>Output side in pixels.</summary>
    public int Size { get; }

    /// <summary>The filter of the resize.</summary>
    public Interpolation Interpolation { get; }

    /// <summary>Smallest fraction of the image area.</summary>
    public double MinScale { get; }

    /// <summary>Largest fraction of the image area.</summary>
    public double MaxScale { get; }

    /// <summary>Smallest width / height ratio.</summary>
    public double MinRatio { get; }

    /// <summary>Largest width / height ratio.</summary>
    public double MaxRatio { get; }

    /// <inheritdoc/>
    public FloatImage Apply(FloatImage image, Random random)
    {
        ArgumentNullException.ThrowIfNull(image);
        var box = SampleBox(image.Height, image.Width, random);
        return Resampler.ResizeRegion(image, box.Top, box.Left, box.Height, box.Width, Size, Size, Interpolation);
    }

    /// <summary>Draws the crop rectangle for an image of <paramref name="height"/> × <paramref name="width"/>.</summary>
    public CropBox SampleBox(int height, int width, Random random)
    {
        ArgumentNullException.ThrowIfNull(random);
        double area = (double)height * width;
        double logMin = Math.Log(MinRatio), logMax = Math.Log(MaxRatio);
        for (int attempt = 0; attempt < 10; attempt++)
        {
            double targetArea = area * Uniform(random, MinScale, MaxScale);
            double ratio = Math.Exp(Uniform(random, logMin, logMax));
            int w = (int)Math.Round(Math.Sqrt(targetArea * ratio), MidpointRounding.ToEven);
            int h = (int)Math.Round(Math.Sqrt(targetArea / ratio), MidpointRounding.ToEven);
            if (w > 0 && w <= width && h > 0 && h <= height)
                return new CropBox(random.Next(height - h + 1), random.Next(width - w + 1), h, w);
        }

        double inRatio = (double)width / height;
        int fw, fh;
        if (inRatio < MinRatio)
        {
            fw = width;
            fh = (int)Math.Round(fw / MinRatio, MidpointRounding.ToEven);
        }
        else if (inRatio > MaxRatio)
        {
            fh = height;
            fw = (int)Math.Round(fh * MaxRatio, MidpointRounding.ToEven);
        }
        else
        {
            fw = width;
            fh = height;
        }
        return new CropBox((height - fh) / 2, (width - fw) / 2, fh, fw);
    }

    private static double Uniform(Random random, double low, double high) => low + (high - low) * random.NextDouble();
}
