namespace Incept.Data.Transforms;

/// <summary>
/// Resizes float images with separable convolution filters, as Pillow's <c>Image.resize</c> does (and
/// torchvision's tensor resize with <c>antialias=True</c>): output pixel i of n samples the input around
/// centre (i + 0.5) × in / n with the filter stretched by in / n when shrinking, so downscaling averages
/// every input pixel instead of skipping some (antialiasing); taps outside the image are dropped and the
/// remaining weights renormalised. Without antialiasing the filter is never stretched, which for bilinear
/// equals PyTorch's <c>interpolate(mode="bilinear", align_corners=False)</c>. Values are not clamped, so
/// bicubic may overshoot the input range slightly, as with float tensors in torchvision.
/// </summary>
public static class Resampler
{
    /// <summary>Resizes the whole image to <paramref name="height"/> × <paramref name="width"/>.</summary>
    public static FloatImage Resize(FloatImage image, int height, int width, Interpolation interpolation, bool antialias = true)
    {
        ArgumentNullException.ThrowIfNull(image);
        return ResizeRegion(image, 0, 0, image.Height, image.Width, height, width, interpolation, antialias);
    }

    /// <summary>
    /// Cuts the region of <paramref name="regionHeight"/> × <paramref name="regionWidth"/> pixels at
    /// (<paramref name="top"/>, <paramref name="left"/>) and resizes it to <paramref name="height"/> × <paramref name="width"/>
    /// (pixels outside the region are not used, as when cropping first).
    /// </summary>
    public static FloatImage ResizeRegion(FloatImage image, int top, int left, int regionHeight, int regionWidth,
        int height, int width, Interpolation interpolation, bool antialias = true)
    {
        ArgumentNullException.ThrowIfNull(image);
        ArgumentOutOfRangeException.ThrowIfLessThan(height, 1);
        ArgumentOutOfRangeException.ThrowIfLessThan(width, 1);
        if (top < 0 || left < 0 || regionHeight < 1 || regionWidth < 1 || top + regionHeight > image.Height || left + regionWidth > image.Width)
            throw new ArgumentOutOfRangeException(nameof(top), $"Region {regionHeight}x{regionWidth} at ({top}, {left}) is not inside the {image.Height}x{image.Width} image.");

        var cols = Taps.Compute(regionWidth, width, interpolation, antialias);
        var rows = Taps.Compute(regionHeight, height, interpolation, antialias);
        int channels = image.Channels;
        var src = image.Array;

        // Horizontal pass over the region's rows: channels x regionHeight x width.
        var mid = new float[channels * regionHeight * width];
        for (int c = 0; c < channels; c++)
        {
            for (int y = 0; y < regionHeight; y++)
            {
                int srcRow = (c * image.Height + top + y) * image.Width + left;
                int dstRow = (c * regionHeight + y) * width;
                for (int x = 0; x < width; x++)
                {
                    double sum = 0;
                    int start = cols.Start[x], count = cols.Count[x], w0 = x * cols.Stride;
                    for (int k = 0; k < count; k++)
                        sum += cols.Weights[w0 + k] * src[srcRow + start + k];
                    mid[dstRow + x] = (float)sum;
                }
            }
        }

        // Vertical pass: channels x height x width.
        // Rows are accumulated whole, so that memory is read in order.
        var dst = new float[channels * height * width];
        var acc = new double[width];
        for (int c = 0; c < channels; c++)
        {
            for (int y = 0; y < height; y++)
            {
                int start = rows.Start[y], count = rows.Count[y], w0 = y * rows.Stride;
                Array.Clear(acc);
                for (int k = 0; k < count; k++)
                {
                    double weight = rows.Weights[w0 + k];
                    var row = mid.AsSpan((c * regionHeight + start + k) * width, width);
                    for (int x = 0; x < width; x++) acc[x] += weight * row[x];
                }
                var dstRow = dst.AsSpan((c * height + y) * width, width);
                for (int x = 0; x < width; x++) dstRow[x] = (float)acc[x];
            }
        }
        return new FloatImage(channels, height, width, dst);
    }

    /// <summary>
    /// Resizes as Pillow's <c>Image.resize</c> does on 8-bit images, which is what torchvision's and timm's evaluation
    /// loaders run: the values are taken as 8-bit levels (v × 255, rounded; exact for images just converted from
    /// bytes), the antialiased filter's weights are rounded to 22-bit fixed point, and the horizontal and then the
    /// vertical pass each round and clip their result to 0–255. The result is the same levels Pillow produces, divided
    /// by 255; compared with <see cref="Resize"/> it removes the up-to-one-level rounding differences and clips
    /// bicubic overshoot as Pillow does.
    /// </summary>
    public static FloatImage ResizeEightBit(FloatImage image, int height, int width, Interpolation interpolation)
    {
        ArgumentNullException.ThrowIfNull(image);
        ArgumentOutOfRangeException.ThrowIfLessThan(height, 1);
        ArgumentOutOfRangeException.ThrowIfLessThan(width, 1);
        if (interpolation is not (Interpolation.Bilinear or Interpolation.Bicubic))
            throw new ArgumentOutOfRangeException(nameof(interpolation), interpolation, "The 8-bit resize filters bilinearly or bicubically; nearest-neighbour resizing involves no rounding, use Resize.");
        int channels = image.Channels, inH = image.Height, inW = image.Width;
        var src = image.Array;
        var levels = new byte[src.Length];
        for (int i = 0; i < src.Length; i++) levels[i] = (byte)Math.Clamp((int)MathF.Round(src[i] * 255f), 0, 255);

        var rows = FixedPointTaps.Compute(inH, height, interpolation);
        // Only the input rows the vertical pass reads go through the horizontal pass.
        int first = height == inH ? 0 : rows.Start[0];
        int last = height == inH ? inH : rows.Start[height - 1] + rows.Count[height - 1];
        int midH = last - first;
        var mid = levels;
        if (width != inW)
        {
            var cols = FixedPointTaps.Compute(inW, width, interpolation);
            mid = new byte[channels * midH * width];
            for (int c = 0; c < channels; c++)
            {
                for (int y = 0; y < midH; y++)
                {
                    int srcRow = (c * inH + first + y) * inW;
                    int dstRow = (c * midH + y) * width;
                    for (int x = 0; x < width; x++)
                    {
                        int sum = FixedPointTaps.Half, start = cols.Start[x], w0 = x * cols.Stride;
                        for (int k = 0; k < cols.Count[x]; k++) sum += levels[srcRow + start + k] * cols.Weights[w0 + k];
                        mid[dstRow + x] = FixedPointTaps.Clip(sum);
                    }
                }
            }
        }
        else
        {
            first = 0;
            midH = inH;
        }

        var dst = new float[channels * height * width];
        if (height == inH)
        {
            for (int i = 0; i < dst.Length; i++) dst[i] = mid[i] / 255f;
            return new FloatImage(channels, height, width, dst);
        }

        var acc = new int[width];
        for (int c = 0; c < channels; c++)
        {
            for (int y = 0; y < height; y++)
            {
                int start = rows.Start[y] - first, w0 = y * rows.Stride;
                Array.Fill(acc, FixedPointTaps.Half);
                for (int k = 0; k < rows.Count[y]; k++)
                {
                    int weight = rows.Weights[w0 + k];
                    var row = mid.AsSpan((c * midH + start + k) * width, width);
                    for (int x = 0; x < width; x++) acc[x] += row[x] * weight;
                }
                int dstRow = (c * height + y) * width;
                for (int x = 0; x < width; x++) dst[dstRow + x] = FixedPointTaps.Clip(acc[x]) / 255f;
            }
        }
        return new FloatImage(channels, height, width, dst);
    }

    /// <summary>The filter kernel for <paramref name="interpolation"/> at distance <paramref name="x"/>, in input pixels.</summary>
    internal static double Kernel(Interpolation interpolation, double x)
    {
        x = Math.Abs(x);
        switch (interpolation)
        {
            case Interpolation.Bilinear:
                return x < 1 ? 1 - x : 0;
            case Interpolation.Bicubic:
                const double a = -0.5;
                if (x < 1) return ((a + 2) * x - (a + 3)) * x * x + 1;
                if (x < 2) return (((x - 5) * x + 8) * x - 4) * a;
                return 0;
            default:
                return x < 0.5 ? 1 : 0;
        }
    }

    /// <summary>For each output pixel along one axis: the first input pixel, how many follow, and their weights.</summary>
    internal sealed class Taps
    {
        private Taps(int[] start, int[] count, double[] weights, int stride)
        {
            Start = start;
            Count = count;
            Weights = weights;
            Stride = stride;
        }

        public int[] Start { get; }

        public int[] Count { get; }

        /// <summary>Weights of output pixel i at [i × Stride, i × Stride + Count[i]).</summary>
        public double[] Weights { get; }

        public int Stride { get; }

        public static Taps Compute(int inSize, int outSize, Interpolation interpolation, bool antialias)
        {
            double scale = (double)inSize / outSize;
            var start = new int[outSize];
            var count = new int[outSize];
            if (interpolation == Interpolation.Nearest)
            {
                var ones = new double[outSize];
                for (int i = 0; i < outSize; i++)
                {
                    start[i] = Math.Min((int)Math.Floor((i + 0.5) * scale), inSize - 1);
                    count[i] = 1;
                    ones[i] = 1;
                }
                return new Taps(start, count, ones, 1);
            }

            double support = interpolation == Interpolation.Bicubic ? 2 : 1;
            double filterScale = antialias ? Math.Max(scale, 1) : 1;
            double reach = support * filterScale;
            int stride = (int)Math.Ceiling(reach) * 2 + 1;
            var weights = new double[outSize * stride];
            for (int i = 0; i < outSize; i++)
            {
                double center = (i + 0.5) * scale;
                int xmin = Math.Max((int)Math.Floor(center - reach + 0.5), 0);
                int xmax = Math.Min((int)Math.Floor(center + reach + 0.5), inSize);
                double total = 0;
                for (int x = xmin; x < xmax; x++)
                {
                    double w = Kernel(interpolation, (x - center + 0.5) / filterScale);
                    weights[i * stride + x - xmin] = w;
                    total += w;
                }
                if (total != 0)
                {
                    for (int x = xmin; x < xmax; x++) weights[i * stride + x - xmin] /= total;
                }
                start[i] = xmin;
                count[i] = xmax - xmin;
            }
            return new Taps(start, count, weights, stride);
        }
    }

    /// <summary>
    /// Pillow's antialiased filter weights for 8-bit images along one axis: computed in double as Pillow computes them
    /// (the same floating-point operations in the same order), normalised, then rounded half away from zero to
    /// <see cref="PrecisionBits"/>-bit fixed point.
    /// </summary>
    internal sealed class FixedPointTaps
    {
        /// <summary>Fraction bits of the fixed-point weights: 32 − 8 − 2, leaving room for 8-bit values and the sum.</summary>
        public const int PrecisionBits = 22;

        /// <summary>The rounding offset a sum starts from, one half in fixed point.</summary>
        public const int Half = 1 << (PrecisionBits - 1);

        private FixedPointTaps(int[] start, int[] count, int[] weights, int stride)
        {
            Start = start;
            Count = count;
            Weights = weights;
            Stride = stride;
        }

        public int[] Start { get; }

        public int[] Count { get; }

        /// <summary>Weights of output pixel i at [i × Stride, i × Stride + Count[i]).</summary>
        public int[] Weights { get; }

        public int Stride { get; }

        /// <summary>A fixed-point sum as an 8-bit level: shifted down, clipped to 0–255.</summary>
        public static byte Clip(int sum) => sum <= 0 ? (byte)0 : sum >= 255 << PrecisionBits ? (byte)255 : (byte)(sum >> PrecisionBits);

        public static FixedPointTaps Compute(int inSize, int outSize, Interpolation interpolation)
        {
            double scale = (double)inSize / outSize;
            double filterScale = Math.Max(scale, 1.0);
            double support = (interpolation == Interpolation.Bicubic ? 2.0 : 1.0) * filterScale;
            int stride = (int)Math.Ceiling(support) * 2 + 1;
            double inverse = 1.0 / filterScale;
            var start = new int[outSize];
            var count = new int[outSize];
            var weights = new int[outSize * stride];
            var w = new double[stride];
            for (int i = 0; i < outSize; i++)
            {
                double center = (i + 0.5) * scale;
                // C casts truncate toward zero; a negative start is clamped to 0 either way.
                int xmin = Math.Max((int)(center - support + 0.5), 0);
                int xmax = Math.Min((int)(center + support + 0.5), inSize) - xmin;
                double total = 0;
                for (int x = 0; x < xmax; x++) total += w[x] = Kernel(interpolation, (x + xmin - center + 0.5) * inverse);
                for (int x = 0; x < xmax; x++)
                {
                    double v = total != 0 ? w[x] / total : w[x];
                    weights[i * stride + x] = v < 0 ? (int)(-0.5 + v * (1 << PrecisionBits)) : (int)(0.5 + v * (1 << PrecisionBits));
                }
                start[i] = xmin;
                count[i] = xmax;
            }
            return new FixedPointTaps(start, count, weights, stride);
        }
    }
}
