using SkiaSharp;

namespace Incept.Data;

/// <summary>What decoding does with an image's alpha channel when it produces RGB.</summary>
public enum AlphaMode
{
    /// <summary>
    /// Keep the stored (unpremultiplied) colour and drop alpha, as PIL's <c>convert("RGB")</c> does, and so
    /// torchvision's and timm's image loaders: the default, so that pixels match the Python pipelines.
    /// </summary>
    Drop,

    /// <summary>Composite on black: each colour is multiplied by alpha / 255 (a transparent pixel becomes black).</summary>
    CompositeOnBlack,
}

/// <summary>
/// Decodes JPEG, PNG, BMP, WebP (and the other formats Skia reads: GIF's first frame, ICO, WBMP) into 8-bit RGB
/// with SkiaSharp. Grayscale becomes three equal channels; alpha is handled per <see cref="AlphaMode"/>; colour
/// profiles and EXIF orientation are not applied, as PIL does not apply them either.
/// </summary>
public static class ImageDecoder
{
    /// <summary>Decodes the file at <paramref name="path"/> into an RGB image.</summary>
    /// <exception cref="DatasetNotFoundException">The file does not exist.</exception>
    /// <exception cref="DataFormatException">The file is not a readable image, or is truncated.</exception>
    public static ByteImage DecodeRgb(string path, AlphaMode alpha = AlphaMode.Drop)
    {
        ArgumentNullException.ThrowIfNull(path);
        byte[] bytes;
        try
        {
            bytes = File.ReadAllBytes(path);
        }
        catch (Exception e) when (e is FileNotFoundException or DirectoryNotFoundException)
        {
            throw new DatasetNotFoundException($"Image '{path}' does not exist; check the path or rescan the folder.", e);
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            throw new DataFormatException(path, $"Image '{path}' could not be read ({e.Message}); check its permissions or remove it.", e);
        }
        return DecodeRgb(bytes, path, alpha);
    }

    /// <summary>
    /// Decodes an encoded image held in memory into an RGB image; <paramref name="sourceName"/> names it in
    /// error messages.
    /// </summary>
    /// <exception cref="DataFormatException">The bytes are not a readable image, or are truncated.</exception>
    public static ByteImage DecodeRgb(ReadOnlySpan<byte> encoded, string sourceName, AlphaMode alpha = AlphaMode.Drop)
    {
        ArgumentNullException.ThrowIfNull(sourceName);
        using var data = SKData.CreateCopy(encoded);
        // The codec takes the stream over; disposing it here afterwards does nothing.
        using var stream = new SKMemoryStream(data);
        using var codec = SKCodec.Create(stream, out var created);
        if (codec is null)
            throw new DataFormatException(sourceName, $"Image '{sourceName}' could not be decoded ({Describe(created)}); replace it with a valid JPEG, PNG, BMP or WebP file or remove it.");

        int width = codec.Info.Width, height = codec.Info.Height;
        if (width <= 0 || height <= 0 || (long)width * height * 4 > Array.MaxLength)
            throw new DataFormatException(sourceName, $"Image '{sourceName}' declares a size of {width} x {height} pixels, which cannot be decoded; the file is corrupt or too large.");
        var info = new SKImageInfo(width, height, SKColorType.Rgba8888, SKAlphaType.Unpremul);
        var result = codec.GetPixels(info, out byte[] rgba);
        if (result != SKCodecResult.Success)
            throw new DataFormatException(sourceName, $"Image '{sourceName}' could not be decoded ({Describe(result)}); replace it with a valid JPEG, PNG, BMP or WebP file or remove it.");

        var rgb = new byte[width * height * 3];
        int pixels = width * height;
        if (alpha == AlphaMode.Drop || codec.Info.AlphaType == SKAlphaType.Opaque)
        {
            for (int p = 0; p < pixels; p++)
            {
                rgb[3 * p] = rgba[4 * p];
                rgb[3 * p + 1] = rgba[4 * p + 1];
                rgb[3 * p + 2] = rgba[4 * p + 2];
            }
        }
        else
        {
            for (int p = 0; p < pixels; p++)
            {
                int a = rgba[4 * p + 3];
                for (int c = 0; c < 3; c++)
                    rgb[3 * p + c] = (byte)((rgba[4 * p + c] * a + 127) / 255);
            }
        }
        return new ByteImage(height, width, 3, rgb);
    }

    private static string Describe(SKCodecResult result) => result switch
    {
        SKCodecResult.IncompleteInput or SKCodecResult.ErrorInInput => "the data are truncated or corrupt",
        SKCodecResult.InvalidInput or SKCodecResult.Unimplemented => "the format is not a supported image format",
        _ => $"Skia reports {result}",
    };
}
