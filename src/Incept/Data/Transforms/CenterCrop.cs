namespace Incept.Data.Transforms;

/// <summary>
/// Cuts the centre of the image, as torchvision's <c>CenterCrop</c>: the top-left corner is at
/// round((H − h) / 2), round((W − w) / 2) with halves rounded to even; a crop larger than the image pads it
/// with zeros, floor(excess / 2) before and the rest after. The crop is either a fixed size or a fraction of each side (TF-slim's <c>central_crop</c>).
/// </summary>
public sealed class CenterCrop : IImageTransform
{
    /// <summary>Crops a <paramref name="size"/> × <paramref name="size"/> square.</summary>
    public CenterCrop(int size) : this(size, size) { }

    /// <summary>Crops <paramref name="height"/> × <paramref name="width"/> pixels.</summary>
    public CenterCrop(int height, int width)
    {
        ArgumentOutOfRangeException.ThrowIfLessThan(height, 1);
        ArgumentOutOfRangeException.ThrowIfLessThan(width, 1);
        Height = height;
        Width = width;
    }

    private CenterCrop(double fraction)
    {
        if (!(fraction > 0 && fraction <= 1))
            throw new ArgumentOutOfRangeException(nameof(fraction), fraction, "The crop fraction must be in (0, 1].");
        Fraction = fraction;
    }

    /// <summary>
    /// Keeps the central <paramref name="fraction"/> of each side: round(fraction × H) × round(fraction × W), at
    /// least one pixel.
    /// </summary>
    public static CenterCrop OfFraction(double fraction) => new(fraction);

    /// <summary>Fixed crop height, or null for a fractional crop.</summary>
    public int? Height { get; }

    /// <summary>Fixed crop width, or null for a fractional crop.</summary>
    public int? Width { get; }

    /// <summary>Fraction of each side kept, or null for a fixed crop.</summary>
    public double? Fraction { get; }

    /// <inheritdoc/>
    public FloatImage Apply(FloatImage image, Random random)
    {
        ArgumentNullException.ThrowIfNull(image);
        int h, w;
        if (Fraction is double f)
        {
            h = Math.Max(1, (int)Math.Round(f * image.Height, MidpointRounding.ToEven));
            w = Math.Max(1, (int)Math.Round(f * image.Width, MidpointRounding.ToEven));
        }
        else
        {
            h = Height!.Value;
            w = Width!.Value;
        }
        if (h == image.Height && w == image.Width) return image;
        return Crop(image, Offset(image.Height, h), Offset(image.Width, w), h, w);
    }

    /// <summary>torchvision's offset: round half to even when cropping, floor(excess / 2) of padding before when padding.</summary>
    private static int Offset(int size, int crop) => crop > size
        ? -((crop - size) / 2)
        : (int)Math.Round((size - crop) / 2.0, MidpointRounding.ToEven);

    /// <summary>
    /// Cuts <paramref name="height"/> × <paramref name="width"/> pixels at (<paramref name="top"/>, <paramref name="left"/>);
    /// positions outside the image read as zero.
    /// </summary>
    public static FloatImage Crop(FloatImage image, int top, int left, int height, int width)
    {
        ArgumentNullException.ThrowIfNull(image);
        var result = new FloatImage(image.Channels, height, width);
        var src = image.Array;
        var dst = result.Array;
        int x0 = Math.Max(0, -left), x1 = Math.Min(width, image.Width - left);
        for (int c = 0; c < image.Channels; c++)
        {
            for (int y = 0; y < height; y++)
            {
                int sy = top + y;
                if (sy < 0 || sy >= image.Height || x1 <= x0) continue;
                Array.Copy(src, (c * image.Height + sy) * image.Width + left + x0, dst, (c * height + y) * width + x0, x1 - x0);
            }
        }
        return result;
    }
}
