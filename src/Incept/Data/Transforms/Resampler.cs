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
}
