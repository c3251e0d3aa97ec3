namespace Incept.Data;

/// <summary>
/// An 8-bit image as data sets store it: rows of pixels with interleaved channels (height × width × channels,
/// "HWC"), one channel for grayscale or three for RGB.
/// </summary>
public sealed class ByteImage
{
    private readonly byte[] _pixels;

    /// <summary>Wraps <paramref name="pixels"/> (not copied), laid out height × width × channels.</summary>
    public ByteImage(int height, int width, int channels, byte[] pixels)
    {
        ArgumentNullException.ThrowIfNull(pixels);
        ArgumentOutOfRangeException.ThrowIfLessThan(height, 1);
        ArgumentOutOfRangeException.ThrowIfLessThan(width, 1);
        if (channels is not (1 or 3))
            throw new ArgumentOutOfRangeException(nameof(channels), channels, "An image has 1 (grayscale) or 3 (RGB) channels.");
        if (pixels.Length != (long)height * width * channels)
            throw new ArgumentException($"A {height}x{width}x{channels} image needs {(long)height * width * channels} bytes, not {pixels.Length}.", nameof(pixels));
        Height = height;
        Width = width;
        Channels = channels;
        _pixels = pixels;
    }

    /// <summary>Rows.</summary>
    public int Height { get; }

    /// <summary>Columns.</summary>
    public int Width { get; }

    /// <summary>1 for grayscale, 3 for RGB.</summary>
    public int Channels { get; }

    /// <summary>The pixels, height × width × channels; the image shares this memory.</summary>
    public Span<byte> Pixels => _pixels;

    /// <summary>The value of channel <paramref name="c"/> at row <paramref name="y"/>, column <paramref name="x"/>.</summary>
    public byte this[int y, int x, int c] => _pixels[((y * Width) + x) * Channels + c];

    /// <summary>Converts to a float image, channels first, with values divided by 255 into [0, 1].</summary>
    public FloatImage ToFloat()
    {
        var data = new float[_pixels.Length];
        int plane = Height * Width;
        for (int c = 0; c < Channels; c++)
        {
            for (int p = 0; p < plane; p++)
                data[c * plane + p] = _pixels[p * Channels + c] / 255f;
        }
        return new FloatImage(Channels, Height, Width, data);
    }
}
