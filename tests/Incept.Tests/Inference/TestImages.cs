using System.Runtime.InteropServices;
using SkiaSharp;

namespace Incept.Tests.Inference;

/// <summary>
/// Synthetic photographs written with SkiaSharp: smooth shading, fine texture, noise, and hard-edged patches of
/// saturated colour (black, white, primaries), so that resampling filters meet both gentle gradients and the
/// clipped edges where bicubic overshoots. With <c>mirror</c> the same picture is written flipped left to right.
/// </summary>
internal static class TestImages
{
    public static string Write(string path, int width, int height, bool gray, int seed, SKEncodedImageFormat format = SKEncodedImageFormat.Png, int quality = 100,
        bool mirror = false)
    {
        var random = new Random(seed);
        int channels = gray ? 1 : 3;
        var pixels = new byte[width * height * channels];
        double fx = 0.02 + 0.05 * random.NextDouble(), fy = 0.02 + 0.05 * random.NextDouble();
        var patches = Enumerable.Range(0, 6).Select(_ => (
            X: random.Next(width), Y: random.Next(height), W: 5 + random.Next(width / 4), H: 5 + random.Next(height / 4),
            Colour: new[] { (byte)(random.Next(2) * 255), (byte)(random.Next(2) * 255), (byte)(random.Next(2) * 255) })).ToArray();
        for (int y = 0; y < height; y++)
        {
            for (int x = 0; x < width; x++)
            {
                var patch = patches.FirstOrDefault(p => x >= p.X && x < p.X + p.W && y >= p.Y && y < p.Y + p.H);
                for (int c = 0; c < channels; c++)
                {
                    double v = patch.Colour is { } colour
                        ? colour[c]
                        : 128 + 90 * Math.Sin(x * fx + 2 * c + seed) * Math.Cos(y * fy - c) + 25 * Math.Sin(x * 0.9 + y * 1.3) + random.Next(-12, 13);
                    pixels[(y * width + x) * channels + c] = (byte)Math.Clamp(Math.Round(v), 0, 255);
                }
            }
        }

        var info = new SKImageInfo(width, height, gray ? SKColorType.Gray8 : SKColorType.Rgba8888, SKAlphaType.Opaque);
        using var bitmap = new SKBitmap(info);
        var row = new byte[info.RowBytes];
        for (int y = 0; y < height; y++)
        {
            for (int x = 0; x < width; x++)
            {
                int source = y * width + (mirror ? width - 1 - x : x);
                if (gray)
                {
                    row[x] = pixels[source];
                    continue;
                }
                for (int c = 0; c < 3; c++) row[4 * x + c] = pixels[source * 3 + c];
                row[4 * x + 3] = 255;
            }
            Marshal.Copy(row, 0, bitmap.GetPixels() + y * info.RowBytes, row.Length);
        }

        using var image = SKImage.FromBitmap(bitmap);
        using var data = image.Encode(format, quality);
        File.WriteAllBytes(path, data.ToArray());
        return path;
    }
}
