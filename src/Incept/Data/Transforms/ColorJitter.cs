namespace Incept.Data.Transforms;

/// <summary>
/// Photometric distortion as torchvision's <c>ColorJitter</c> on float images in [0, 1]: draws a random order
/// of the four adjustments, then a factor for each enabled one — brightness, contrast and saturation uniform
/// in [max(0, 1 − x), 1 + x], hue uniform in [−x, x] — and applies them in that order. Brightness scales the
/// values; contrast blends with the mean grey level of the image; saturation blends with the grey image
/// (luma 0.2989 R + 0.587 G + 0.114 B); hue rotates the HSV hue by the factor (in turns). Every result is
/// clamped to [0, 1]. On one-channel images saturation and hue do nothing.
/// </summary>
public sealed class ColorJitter : IImageTransform
{
    /// <summary>Creates the transform; a zero disables that adjustment.</summary>
    public ColorJitter(double brightness = 0, double contrast = 0, double saturation = 0, double hue = 0)
    {
        ArgumentOutOfRangeException.ThrowIfNegative(brightness);
        ArgumentOutOfRangeException.ThrowIfNegative(contrast);
        ArgumentOutOfRangeException.ThrowIfNegative(saturation);
        if (!(hue >= 0 && hue <= 0.5))
            throw new ArgumentOutOfRangeException(nameof(hue), hue, "The hue range is between 0 and 0.5 (turns).");
        Brightness = brightness;
        Contrast = contrast;
        Saturation = saturation;
        Hue = hue;
    }

    /// <summary>Brightness factor range half-width.</summary>
    public double Brightness { get; }

    /// <summary>Contrast factor range half-width.</summary>
    public double Contrast { get; }

    /// <summary>Saturation factor range half-width.</summary>
    public double Saturation { get; }

    /// <summary>Hue shift range half-width, in turns (at most 0.5).</summary>
    public double Hue { get; }

    /// <inheritdoc/>
    public FloatImage Apply(FloatImage image, Random random)
    {
        ArgumentNullException.ThrowIfNull(image);
        ArgumentNullException.ThrowIfNull(random);
        int[] order = [0, 1, 2, 3];
        DatasetSplit.Shuffle(order, random);
        double? b = Brightness > 0 ? Factor(random, Brightness) : null;
        double? c = Contrast > 0 ? Factor(random, Contrast) : null;
        double? s = Saturation > 0 ? Factor(random, Saturation) : null;
        double? h = Hue > 0 ? -Hue + 2 * Hue * random.NextDouble() : null;
        if (b is null && c is null && s is null && h is null) return image;

        var data = image.Data.ToArray();
        var result = new FloatImage(image.Channels, image.Height, image.Width, data);
        foreach (var step in order)
        {
            switch (step)
            {
                case 0 when b is double f: AdjustBrightness(result, (float)f); break;
                case 1 when c is double f: AdjustContrast(result, (float)f); break;
                case 2 when s is double f: AdjustSaturation(result, (float)f); break;
                case 3 when h is double f: AdjustHue(result, (float)f); break;
            }
        }
        return result;
    }

    /// <summary>Multiplies every value by <paramref name="factor"/>, in place, clamped to [0, 1].</summary>
    public static void AdjustBrightness(FloatImage image, float factor)
    {
        ArgumentNullException.ThrowIfNull(image);
        var d = image.Data;
        for (int i = 0; i < d.Length; i++) d[i] = Clamp(factor * d[i]);
    }

    /// <summary>Blends with the image's mean grey level, in place: factor × x + (1 − factor) × mean, clamped.</summary>
    public static void AdjustContrast(FloatImage image, float factor)
    {
        ArgumentNullException.ThrowIfNull(image);
        var gray = Grayscale(image);
        double sum = 0;
        foreach (var g in gray) sum += g;
        float mean = (float)(sum / gray.Length);
        var d = image.Data;
        for (int i = 0; i < d.Length; i++) d[i] = Clamp(factor * d[i] + (1 - factor) * mean);
    }

    /// <summary>Blends each pixel with its grey level, in place: factor × x + (1 − factor) × grey, clamped.</summary>
    public static void AdjustSaturation(FloatImage image, float factor)
    {
        ArgumentNullException.ThrowIfNull(image);
        if (image.Channels != 3) return;
        var gray = Grayscale(image);
        var d = image.Data;
        int plane = gray.Length;
        for (int c = 0; c < 3; c++)
        {
            for (int p = 0; p < plane; p++)
                d[c * plane + p] = Clamp(factor * d[c * plane + p] + (1 - factor) * gray[p]);
        }
    }

    /// <summary>Rotates the hue by <paramref name="shift"/> turns, in place, through HSV as torchvision computes it.</summary>
    public static void AdjustHue(FloatImage image, float shift)
    {
        ArgumentNullException.ThrowIfNull(image);
        if (image.Channels != 3) return;
        var d = image.Data;
        int plane = image.Height * image.Width;
        for (int p = 0; p < plane; p++)
        {
            float r = d[p], g = d[plane + p], b = d[2 * plane + p];
            float max = Math.Max(r, Math.Max(g, b)), min = Math.Min(r, Math.Min(g, b));
            bool flat = max == min;
            float chroma = max - min;
            float sat = chroma / (flat ? 1f : max);
            float divisor = flat ? 1f : chroma;
            float rc = (max - r) / divisor, gc = (max - g) / divisor, bc = (max - b) / divisor;
            float hue = max == r ? bc - gc : max == g ? 2f + rc - bc : 4f + gc - rc;
            hue = Mod1(hue / 6f + 1f);
            hue = Mod1(hue + shift);

            float i6 = MathF.Floor(hue * 6f);
            float f = hue * 6f - i6;
            int sector = ((int)i6 % 6 + 6) % 6;
            float v = max;
            float pp = Clamp(v * (1f - sat));
            float q = Clamp(v * (1f - sat * f));
            float t = Clamp(v * (1f - sat * (1f - f)));
            (r, g, b) = sector switch
            {
                0 => (v, t, pp),
                1 => (q, v, pp),
                2 => (pp, v, t),
                3 => (pp, q, v),
                4 => (t, pp, v),
                _ => (v, pp, q),
            };
            d[p] = r;
            d[plane + p] = g;
            d[2 * plane + p] = b;
        }
    }

    private static float[] Grayscale(FloatImage image)
    {
        int plane = image.Height * image.Width;
        var d = image.Data;
        var gray = new float[plane];
        if (image.Channels == 1)
        {
            d[..plane].CopyTo(gray);
            return gray;
        }
        for (int p = 0; p < plane; p++)
            gray[p] = 0.2989f * d[p] + 0.587f * d[plane + p] + 0.114f * d[2 * plane + p];
        return gray;
    }

    private static double Factor(Random random, double x) => Math.Max(0, 1 - x) + (1 + x - Math.Max(0, 1 - x)) * random.NextDouble();

    private static float Clamp(float x) => Math.Clamp(x, 0f, 1f);

    private static float Mod1(float x) => x - MathF.Floor(x);
}
