namespace Incept.Data.Transforms;

/// <summary>
/// Pads the image with zeros by <see cref="Padding"/> pixels on every side, then cuts a random
/// <see cref="Size"/>×<see cref="Size"/> window: the usual augmentation for small images (CIFAR, Fashion-MNIST),
/// where a random-resized crop would throw away too much of a 28-pixel picture.
/// </summary>
public sealed class RandomCrop : IImageTransform
{
    /// <summary>Creates the transform.</summary>
    public RandomCrop(int size, int padding)
    {
        if (size < 1) throw new ArgumentOutOfRangeException(nameof(size), size, "The crop size must be positive.");
        if (padding < 0) throw new ArgumentOutOfRangeException(nameof(padding), padding, "The padding cannot be negative.");
        Size = size;
        Padding = padding;
    }

    /// <summary>Side of the output.</summary>
    public int Size { get; }

    /// <summary>Zero padding added on each side before cropping.</summary>
    public int Padding { get; }

    /// <inheritdoc/>
    public FloatImage Apply(FloatImage image, Random random)
    {
        ArgumentNullException.ThrowIfNull(image);
        ArgumentNullException.ThrowIfNull(random);
        int paddedH = image.Height + 2 * Padding, paddedW = image.Width + 2 * Padding;
        if (paddedH < Size || paddedW < Size)
            throw new InceptException($"A {Size}-pixel random crop needs an image of at least {Size - 2 * Padding} pixels; got {image.Height}×{image.Width}.");
        int top = random.Next(paddedH - Size + 1) - Padding;
        int left = random.Next(paddedW - Size + 1) - Padding;
        return Crop(image, top, left, Size);
    }

    /// <summary>The <paramref name="size"/>-square window at (<paramref name="top"/>, <paramref name="left"/>), zero outside the image.</summary>
    public static FloatImage Crop(FloatImage image, int top, int left, int size)
    {
        ArgumentNullException.ThrowIfNull(image);
        var result = new FloatImage(image.Channels, size, size);
        var src = image.Array;
        var dst = result.Array;
        for (int c = 0; c < image.Channels; c++)
        {
            for (int y = 0; y < size; y++)
            {
                int sy = top + y;
                if (sy < 0 || sy >= image.Height) continue;
                int x0 = Math.Max(0, -left), x1 = Math.Min(size, image.Width - left);
                if (x1 <= x0) continue;
                Array.Copy(src, (c * image.Height + sy) * image.Width + left + x0, dst, (c * size + y) * size + x0, x1 - x0);
            }
        }

        return result;
    }
}
