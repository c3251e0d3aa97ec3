using Incept.Data;
using Incept.Weights;
using SkiaSharp;

namespace Incept.Analysis;

/// <summary>Draws a <see cref="HeatMap"/> in colour over the image it belongs to and writes it as a PNG.</summary>
public static class HeatMapOverlay
{
    /// <summary>
    /// The jet colour scale: dark blue (0) through blue, cyan, yellow and red to dark red (1), as red, green and blue
    /// in [0, 1]. Each channel is a clipped triangle, 1.5 − |4v − k| with k = 3, 2, 1.
    /// </summary>
    public static (float R, float G, float B) Jet(float value)
    {
        float v = Math.Clamp(float.IsNaN(value) ? 0 : value, 0, 1);
        static float Channel(float t) => Math.Clamp(1.5f - Math.Abs(t), 0, 1);
        return (Channel(4 * v - 3), Channel(4 * v - 2), Channel(4 * v - 1));
    }

    /// <summary>
    /// Blends the jet colours of <paramref name="map"/> over <paramref name="image"/> (three channels in [0, 1], the same
    /// size as the map): each pixel is (1 − alpha) · image + alpha · colour. Returns RGB bytes, row by row.
    /// </summary>
    public static byte[] Blend(FloatImage image, HeatMap map, double alpha)
    {
        ArgumentNullException.ThrowIfNull(image);
        ArgumentNullException.ThrowIfNull(map);
        if (!(alpha is >= 0 and <= 1))
            throw new InceptException($"The heat map's opacity must be between 0 and 1; got {alpha}.");
        if (image.Channels != 3 || image.Height != map.Height || image.Width != map.Width)
            throw new ArgumentException($"The image ({image.Channels}×{image.Height}×{image.Width}) must be RGB and of the map's size ({map.Height}×{map.Width}).", nameof(map));
        int plane = map.Height * map.Width;
        var rgb = new byte[3 * plane];
        var pixels = image.Data;
        var values = map.Values;
        float a = (float)alpha;
        for (int p = 0; p < plane; p++)
        {
            var (r, g, b) = Jet(values[p]);
            rgb[3 * p] = ToByte((1 - a) * pixels[p] + a * r);
            rgb[3 * p + 1] = ToByte((1 - a) * pixels[plane + p] + a * g);
            rgb[3 * p + 2] = ToByte((1 - a) * pixels[2 * plane + p] + a * b);
        }
        return rgb;
    }

    /// <summary>Writes the overlay of <see cref="Blend"/> to <paramref name="path"/> as a PNG, atomically.</summary>
    public static void WritePng(string path, FloatImage image, HeatMap map, double alpha)
    {
        ArgumentNullException.ThrowIfNull(path);
        var rgb = Blend(image, map, alpha);
        var info = new SKImageInfo(map.Width, map.Height, SKColorType.Rgba8888, SKAlphaType.Opaque);
        using var bitmap = new SKBitmap(info);
        var rgba = new byte[4 * map.Width * map.Height];
        for (int p = 0; p < rgb.Length / 3; p++)
        {
            rgba[4 * p] = rgb[3 * p];
            rgba[4 * p + 1] = rgb[3 * p + 1];
            rgba[4 * p + 2] = rgb[3 * p + 2];
            rgba[4 * p + 3] = 255;
        }
        var row = 4 * map.Width;
        for (int y = 0; y < map.Height; y++)
            System.Runtime.InteropServices.Marshal.Copy(rgba, y * row, bitmap.GetPixels() + y * bitmap.RowBytes, row);
        using var png = bitmap.Encode(SKEncodedImageFormat.Png, 100)
            ?? throw new InceptException($"SkiaSharp could not encode the {map.Width}×{map.Height} heat map as PNG.");
        AtomicFile.Write(path, stream => png.SaveTo(stream));
    }

    private static byte ToByte(float v) => (byte)Math.Clamp(MathF.Round(v * 255), 0, 255);
}
