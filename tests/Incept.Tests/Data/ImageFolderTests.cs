using Incept.Data;
using SkiaSharp;

namespace Incept.Tests.Data;

/// <summary>ImageFolder with images written by SkiaSharp (and one BMP by hand), plus the validation split.</summary>
public class ImageFolderTests
{
    private static readonly SKColor[] Colors =
    [
        new(255, 0, 0), new(0, 255, 0), new(0, 0, 255),
        new(10, 20, 30), new(200, 150, 100), new(255, 255, 255),
    ];

    [Fact]
    public void Classes_are_sorted_subfolders_and_every_format_decodes_to_RGB()
    {
        using var temp = new TempFolder();
        // Classes sort by code point, as Python's sorted(): upper case first.
        WriteRgb(temp.File("ant/a.png"), SKEncodedImageFormat.Png);
        WriteFlat(temp.File("ant/b.JPG"), new SKColor(90, 160, 220), SKEncodedImageFormat.Jpeg);
        WriteGray(temp.File("bird/gray.png"));
        WriteRgba(temp.File("bird/sub/rgba.png"));
        WriteBmp(temp.File("Zebra/z.bmp"));
        WriteWebpLossless(temp.File("Zebra/w.webp"));
        File.WriteAllText(temp.File("Zebra/notes.txt"), "not an image");

        var folder = ImageFolder.Open(temp.Path);

        Assert.Equal(["Zebra", "ant", "bird"], folder.ClassNames);
        Assert.Equal(["Zebra/w.webp", "Zebra/z.bmp", "ant/a.png", "ant/b.JPG", "bird/gray.png", "bird/sub/rgba.png"],
            folder.Paths.Select(p => Path.GetRelativePath(temp.Path, p)));
        Assert.Equal([0, 0, 1, 1, 2, 2], Enumerable.Range(0, folder.Count).Select(folder.GetLabel));

        var webp = folder.Get(0);
        AssertPixels(webp.Image, Colors);
        var bmp = folder.Get(1).Image;
        Assert.Equal((2, 2, 3), (bmp.Height, bmp.Width, bmp.Channels));
        Assert.Equal([1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12], bmp.Pixels.ToArray()); // top row first, RGB order
        AssertPixels(folder.Get(2).Image, Colors);
        var jpeg = folder.Get(3).Image;
        Assert.Equal((5, 7), (jpeg.Height, jpeg.Width));
        Assert.InRange(jpeg[2, 3, 0], 87, 93);
        Assert.InRange(jpeg[2, 3, 1], 157, 163);
        Assert.InRange(jpeg[2, 3, 2], 217, 223);
        var gray = folder.Get(4).Image;
        Assert.Equal(3, gray.Channels);
        Assert.Equal([0, 0, 0, 77, 77, 77, 255, 255, 255], gray.Pixels.ToArray());
        var rgba = folder.Get(5).Image;
        Assert.Equal([200, 100, 50, 40, 80, 120], rgba.Pixels.ToArray()); // alpha dropped, colour kept
    }

    [Fact]
    public void Compositing_on_black_multiplies_colour_by_alpha()
    {
        using var temp = new TempFolder();
        var path = temp.File("c/rgba.png");
        WriteRgba(path);
        var image = ImageDecoder.DecodeRgb(path, AlphaMode.CompositeOnBlack);
        // Pixel 0: alpha 128 -> round(200 * 128 / 255) = 100, 50, 25; pixel 1: alpha 255 -> unchanged.
        Assert.Equal([100, 50, 25, 40, 80, 120], image.Pixels.ToArray());
    }

    [Fact]
    public void An_unreadable_file_gives_an_error_naming_it()
    {
        using var temp = new TempFolder();
        WriteRgb(temp.File("a/good.png"), SKEncodedImageFormat.Png);
        File.WriteAllBytes(temp.File("a/garbage.png"), [.. Enumerable.Range(0, 300).Select(i => (byte)(i * 13))]);
        var png = File.ReadAllBytes(temp.File("a/good.png"));
        File.WriteAllBytes(temp.File("a/truncated.png"), png[..(png.Length / 2)]);
        var folder = ImageFolder.Open(temp.Path);

        foreach (var name in new[] { "garbage.png", "truncated.png" })
        {
            int index = folder.Paths.ToList().FindIndex(p => p.EndsWith(name, StringComparison.Ordinal));
            var e = Assert.Throws<DataFormatException>(() => folder.Get(index));
            Assert.Equal(folder.Paths[index], e.FilePath);
            Assert.Contains($"Image '{folder.Paths[index]}' could not be decoded", e.Message, StringComparison.Ordinal);
        }
    }

    [Fact]
    public void A_class_folder_without_images_or_a_missing_root_is_reported()
    {
        using var temp = new TempFolder();
        WriteRgb(temp.File("a/x.png"), SKEncodedImageFormat.Png);
        File.WriteAllText(temp.File("b/readme.txt"), "");
        var e = Assert.Throws<DatasetNotFoundException>(() => ImageFolder.Open(temp.Path));
        Assert.Contains("for the classes b;", e.Message, StringComparison.Ordinal);

        Assert.Throws<DatasetNotFoundException>(() => ImageFolder.Open(Path.Combine(temp.Path, "none")));
    }

    [Fact]
    public void A_stratified_split_keeps_class_balance_and_depends_only_on_the_seed()
    {
        // 60 samples: class 0 has 10, class 1 has 20, class 2 has 30.
        var data = new SyntheticDataset(60, 2, 2, i => i < 10 ? 0 : i < 30 ? 1 : 2, 3);

        var split = DatasetSplit.Create(data, 0.2, seed: 5);
        var again = DatasetSplit.Create(data, 0.2, seed: 5);
        var other = DatasetSplit.Create(data, 0.2, seed: 6);

        Assert.Equal([2, 4, 6], Histogram(split.Validation));
        Assert.Equal([8, 16, 24], Histogram(split.Train));
        Assert.Equal(Enumerable.Range(0, 60), split.Train.Indices.Concat(split.Validation.Indices).Order());
        Assert.Equal(split.Validation.Indices, again.Validation.Indices);
        Assert.NotEqual(split.Validation.Indices, other.Validation.Indices);
        Assert.True(split.Validation.Indices.SequenceEqual(split.Validation.Indices.Order()));

        var plain = DatasetSplit.Create(data, 0.25, seed: 5, stratified: false);
        Assert.Equal(15, plain.Validation.Count);
        Assert.Equal(data.Get(plain.Validation.Indices[0]).Image.Pixels.ToArray(), plain.Validation.Get(0).Image.Pixels.ToArray());
    }

    private static int[] Histogram(Subset d)
    {
        var h = new int[d.ClassNames.Count];
        for (int i = 0; i < d.Count; i++) h[d.GetLabel(i)]++;
        return h;
    }

    private static void AssertPixels(ByteImage image, SKColor[] colors)
    {
        Assert.Equal((2, 3, 3), (image.Height, image.Width, image.Channels));
        for (int i = 0; i < colors.Length; i++)
            Assert.Equal((colors[i].Red, colors[i].Green, colors[i].Blue), (image[i / 3, i % 3, 0], image[i / 3, i % 3, 1], image[i / 3, i % 3, 2]));
    }

    private static SKBitmap RgbBitmap()
    {
        var bitmap = new SKBitmap(new SKImageInfo(3, 2, SKColorType.Rgba8888, SKAlphaType.Opaque));
        for (int i = 0; i < Colors.Length; i++) bitmap.SetPixel(i % 3, i / 3, Colors[i]);
        return bitmap;
    }

    private static void WriteRgb(string path, SKEncodedImageFormat format)
    {
        using var bitmap = RgbBitmap();
        Save(bitmap, path, format);
    }

    private static void WriteFlat(string path, SKColor color, SKEncodedImageFormat format)
    {
        using var bitmap = new SKBitmap(new SKImageInfo(7, 5, SKColorType.Rgba8888, SKAlphaType.Opaque));
        bitmap.Erase(color);
        Save(bitmap, path, format);
    }

    private static void WriteGray(string path)
    {
        using var bitmap = new SKBitmap(new SKImageInfo(3, 1, SKColorType.Gray8, SKAlphaType.Opaque));
        byte[] levels = [0, 77, 255];
        for (int x = 0; x < 3; x++) bitmap.SetPixel(x, 0, new SKColor(levels[x], levels[x], levels[x]));
        Save(bitmap, path, SKEncodedImageFormat.Png);
    }

    private static void WriteRgba(string path)
    {
        using var bitmap = new SKBitmap(new SKImageInfo(2, 1, SKColorType.Rgba8888, SKAlphaType.Unpremul));
        byte[] raw = [200, 100, 50, 128, 40, 80, 120, 255];
        System.Runtime.InteropServices.Marshal.Copy(raw, 0, bitmap.GetPixels(), raw.Length);
        Save(bitmap, path, SKEncodedImageFormat.Png);
    }

    private static void WriteWebpLossless(string path)
    {
        using var bitmap = RgbBitmap();
        using var pixmap = bitmap.PeekPixels();
        using var data = pixmap.Encode(new SKWebpEncoderOptions(SKWebpEncoderCompression.Lossless, 100))!;
        File.WriteAllBytes(path, data.ToArray());
    }

    /// <summary>A 2 × 2, 24-bit BMP whose pixels are RGB (1,2,3) (4,5,6) / (7,8,9) (10,11,12), top row first.</summary>
    private static void WriteBmp(string path)
    {
        // Rows are stored bottom-up, each pixel B, G, R, each row padded to 4 bytes.
        byte[] rows =
        [
            9, 8, 7, 12, 11, 10, 0, 0,
            3, 2, 1, 6, 5, 4, 0, 0,
        ];
        using var s = new MemoryStream();
        using var w = new BinaryWriter(s);
        w.Write((byte)'B'); w.Write((byte)'M'); w.Write(54 + rows.Length); w.Write(0); w.Write(54);
        w.Write(40); w.Write(2); w.Write(2); w.Write((short)1); w.Write((short)24); w.Write(0); w.Write(rows.Length);
        w.Write(2835); w.Write(2835); w.Write(0); w.Write(0);
        w.Write(rows);
        w.Flush();
        File.WriteAllBytes(path, s.ToArray());
    }

    private static void Save(SKBitmap bitmap, string path, SKEncodedImageFormat format)
    {
        using var image = SKImage.FromBitmap(bitmap);
        using var data = image.Encode(format, 100);
        File.WriteAllBytes(path, data.ToArray());
    }
}
