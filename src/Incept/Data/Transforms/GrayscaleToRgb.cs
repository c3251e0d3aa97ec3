namespace Incept.Data.Transforms;

/// <summary>Repeats a single grayscale channel three times; images that already have three channels pass through.</summary>
public sealed class GrayscaleToRgb : IImageTransform
{
    /// <inheritdoc/>
    public FloatImage Apply(FloatImage image, Random random)
    {
        ArgumentNullException.ThrowIfNull(image);
        if (image.Channels != 1) return image;
        int plane = image.Height * image.Width;
        var data = new float[3 * plane];
        for (int c = 0; c < 3; c++) Array.Copy(image.Array, 0, data, c * plane, plane);
        return new FloatImage(3, image.Height, image.Width, data);
    }
}
