namespace Incept.Data.Transforms;

/// <summary>
/// Resizes with <see cref="Resampler"/>: either the shorter side to a length, keeping the aspect ratio (the
/// longer side becomes floor(length × long / short), as torchvision's <c>Resize(int)</c>), or to an exact size.
/// With <see cref="EightBit"/> it resamples as Pillow does on 8-bit images (<see cref="Resampler.ResizeEightBit"/>).
/// </summary>
public sealed class Resize : IImageTransform
{
    /// <summary>Resizes the shorter side to <paramref name="shorterSide"/>.</summary>
    public Resize(int shorterSide, Interpolation interpolation = Interpolation.Bilinear, bool antialias = true)
        : this(shorterSide, interpolation, antialias, eightBit: false) { }

    /// <summary>
    /// Resizes the shorter side to <paramref name="shorterSide"/>; with <paramref name="eightBit"/> (antialiased bilinear
    /// or bicubic only) in Pillow's 8-bit arithmetic, for inputs whose values are 8-bit levels divided by 255.
    /// </summary>
    public Resize(int shorterSide, Interpolation interpolation, bool antialias, bool eightBit)
    {
        ArgumentOutOfRangeException.ThrowIfLessThan(shorterSide, 1);
        if (eightBit && !(antialias && interpolation is (Interpolation.Bilinear or Interpolation.Bicubic)))
            throw new ArgumentException("The 8-bit (Pillow) resize is antialiased bilinear or bicubic.", nameof(eightBit));
        ShorterSide = shorterSide;
        Interpolation = interpolation;
        Antialias = antialias;
        EightBit = eightBit;
    }

    /// <summary>Resizes to exactly <paramref name="height"/> × <paramref name="width"/>.</summary>
    public Resize(int height, int width, Interpolation interpolation = Interpolation.Bilinear, bool antialias = true)
    {
        ArgumentOutOfRangeException.ThrowIfLessThan(height, 1);
        ArgumentOutOfRangeException.ThrowIfLessThan(width, 1);
        Height = height;
        Width = width;
        Interpolation = interpolation;
        Antialias = antialias;
    }

    /// <summary>Target length of the shorter side, or null for an exact size.</summary>
    public int? ShorterSide { get; }

    /// <summary>Exact target height, or null.</summary>
    public int? Height { get; }

    /// <summary>Exact target width, or null.</summary>
    public int? Width { get; }

    /// <summary>The filter.</summary>
    public Interpolation Interpolation { get; }

    /// <summary>Whether the filter is widened when shrinking.</summary>
    public bool Antialias { get; }

    /// <summary>Whether it resamples in Pillow's 8-bit fixed-point arithmetic, rounding and clipping each pass to 8-bit levels.</summary>
    public bool EightBit { get; }

    /// <inheritdoc/>
    public FloatImage Apply(FloatImage image, Random random)
    {
        ArgumentNullException.ThrowIfNull(image);
        var (h, w) = TargetSize(image.Height, image.Width);
        if (h == image.Height && w == image.Width) return image;
        return EightBit ? Resampler.ResizeEightBit(image, h, w, Interpolation) : Resampler.Resize(image, h, w, Interpolation, Antialias);
    }

    /// <summary>The output size for an input of <paramref name="height"/> × <paramref name="width"/>.</summary>
    public (int Height, int Width) TargetSize(int height, int width)
    {
        if (ShorterSide is not int s) return (Height!.Value, Width!.Value);
        return height <= width
            ? (s, Math.Max(1, (int)((long)s * width / height)))
            : (Math.Max(1, (int)((long)s * height / width)), s);
    }
}
