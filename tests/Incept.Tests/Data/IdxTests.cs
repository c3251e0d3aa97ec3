using System.Buffers.Binary;
using System.IO.Compression;
using Incept.Data;

namespace Incept.Tests.Data;

/// <summary>IDX parsing on the real Fashion-MNIST test set and on hand-made good and broken files.</summary>
public class IdxTests
{
    private static bool InCi => Environment.GetEnvironmentVariable("CI") == "true";

    [SkippableFact]
    public void The_Fashion_MNIST_test_split_has_10000_images_of_28_by_28_with_1000_per_class()
    {
        Skip.If(!InCi && !Directory.Exists(FashionMnist.DefaultDirectory), "Debian's dataset-fashion-mnist is not installed (bash .ci/run installs it).");
        var data = FashionMnist.Load(train: false);

        Assert.Equal(10000, data.Count);
        Assert.Equal((28, 28), (data.Height, data.Width));
        Assert.Equal("Ankle boot", data.ClassNames[9]);
        var histogram = new int[10];
        for (int i = 0; i < data.Count; i++) histogram[data.GetLabel(i)]++;
        Assert.All(histogram, n => Assert.Equal(1000, n));

        // The first test image is an ankle boot (label 9), a bright shape on a black border.
        var first = data.Get(0);
        Assert.Equal(9, first.Label);
        Assert.Equal((28, 28, 1), (first.Image.Height, first.Image.Width, first.Image.Channels));
        Assert.Equal(0, first.Image[0, 0, 0]);
        Assert.True(first.Image.Pixels.ToArray().Max() > 200);
    }

    [Fact]
    public void A_missing_default_folder_says_to_install_the_package_or_pass_data()
    {
        using var temp = new TempFolder();
        var e = Assert.Throws<DatasetNotFoundException>(() => FashionMnist.Load(Path.Combine(temp.Path, "absent")));
        Assert.Contains("--data DIR", e.Message, StringComparison.Ordinal);
        Assert.Contains("dataset-fashion-mnist", e.Message, StringComparison.Ordinal);

        var missingFile = Assert.Throws<DatasetNotFoundException>(() => FashionMnist.Load(temp.Path, train: false));
        Assert.Contains("t10k-images-idx3-ubyte", missingFile.Message, StringComparison.Ordinal);
    }

    [Theory]
    [InlineData(false)]
    [InlineData(true)]
    public void Plain_and_gzip_files_read_the_same_values(bool gzip)
    {
        using var temp = new TempFolder();
        var path = temp.File("a.idx");
        Write(path, Idx(0x0C, [2, 3], [.. Enumerable.Range(-2, 6).SelectMany(BigEndian)]), gzip);

        var array = IdxReader.Read(path);

        Assert.Equal(IdxDataType.Int32, array.DataType);
        Assert.Equal([2, 3], array.Shape);
        Assert.Equal([-2f, -1, 0, 1, 2, 3], array.ToSingles());
    }

    [Fact]
    public void A_small_Fashion_MNIST_folder_loads_images_in_row_order()
    {
        using var temp = new TempFolder();
        byte[] pixels = [.. Enumerable.Range(0, 2 * 2 * 3).Select(i => (byte)i)];
        Write(temp.File("t10k-images-idx3-ubyte"), Idx(0x08, [2, 2, 3], pixels), gzip: false);
        Write(temp.File("t10k-labels-idx1-ubyte.gz"), Idx(0x08, [2], [7, 1]), gzip: true);

        var data = FashionMnist.Load(temp.Path, train: false);

        Assert.Equal(2, data.Count);
        var second = data.Get(1);
        Assert.Equal(1, second.Label);
        Assert.Equal((2, 3), (second.Image.Height, second.Image.Width));
        Assert.Equal(6 + 1 * 3 + 2, second.Image[1, 2, 0]);
    }

    public static TheoryData<string, byte[], string> BrokenFiles => new()
    {
        { "empty", [], "fewer than the 4-byte magic number" },
        { "bad magic", [0x50, 0x4B, 0x03, 0x04, 0, 0, 0, 1, 0], "not with two zero bytes" },
        { "unknown type", Idx(0x07, [1], [0]), "unknown IDX element type 0x07" },
        { "no dimensions", Idx(0x08, [], []), "declares 0 dimensions" },
        { "short header", [0, 0, 8, 3, 0, 0, 0, 2, 0, 0], "declares 3 dimensions but ends after 1" },
        { "truncated data", Idx(0x08, [10, 28, 28], new byte[100]), "is truncated: its header declares 10 x 28 x 28 UInt8 values (7840 bytes) but only 100 bytes follow" },
        { "trailing bytes", Idx(0x08, [2], [1, 2, 3]), "has bytes after the 2 UInt8 values" },
        { "negative size", Idx(0x08, [-1], []), "negative size -1" },
    };

    [Theory]
    [MemberData(nameof(BrokenFiles))]
    public void A_broken_file_gives_an_error_naming_the_file_and_the_problem(string name, byte[] content, string expected)
    {
        using var temp = new TempFolder();
        foreach (var gzip in new[] { false, true })
        {
            var path = temp.File($"{name.Replace(' ', '-')}-{gzip}.idx");
            Write(path, content, gzip);
            var e = Assert.Throws<DataFormatException>(() => IdxReader.Read(path));
            Assert.Equal(path, e.FilePath);
            Assert.Contains(path, e.Message, StringComparison.Ordinal);
            Assert.Contains(expected, e.Message, StringComparison.Ordinal);
        }
    }

    [Fact]
    public void A_damaged_gzip_stream_is_reported_as_corrupt_or_truncated()
    {
        using var temp = new TempFolder();
        var whole = Gzip(Idx(0x08, [64, 28, 28], [.. Enumerable.Range(0, 64 * 28 * 28).Select(i => (byte)(i * 7))]));

        var cut = temp.File("cut.gz");
        File.WriteAllBytes(cut, whole[..(whole.Length / 2)]);
        var e = Assert.Throws<DataFormatException>(() => IdxReader.Read(cut));
        Assert.Matches("corrupt gzip|is truncated", e.Message);

        var flipped = temp.File("flipped.gz");
        var bad = (byte[])whole.Clone();
        for (int i = 20; i < 60; i++) bad[i] ^= 0xFF;
        File.WriteAllBytes(flipped, bad);
        e = Assert.Throws<DataFormatException>(() => IdxReader.Read(flipped));
        Assert.Contains(flipped, e.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void Images_and_labels_of_different_counts_are_rejected()
    {
        using var temp = new TempFolder();
        Write(temp.File("train-images-idx3-ubyte"), Idx(0x08, [3, 2, 2], new byte[12]), gzip: false);
        Write(temp.File("train-labels-idx1-ubyte"), Idx(0x08, [2], [0, 1]), gzip: false);
        var e = Assert.Throws<DataFormatException>(() => FashionMnist.Load(temp.Path));
        Assert.Contains("has 2 labels but", e.Message, StringComparison.Ordinal);

        Write(temp.File("train-labels-idx1-ubyte"), Idx(0x08, [3], [0, 10, 1]), gzip: false);
        e = Assert.Throws<DataFormatException>(() => FashionMnist.Load(temp.Path));
        Assert.Contains("sample 1 the label 10", e.Message, StringComparison.Ordinal);
    }

    internal static byte[] Idx(byte type, int[] shape, byte[] data)
    {
        var header = new List<byte> { 0, 0, type, (byte)shape.Length };
        foreach (var d in shape) header.AddRange(BigEndian(d));
        return [.. header, .. data];
    }

    private static byte[] BigEndian(int value)
    {
        var b = new byte[4];
        BinaryPrimitives.WriteInt32BigEndian(b, value);
        return b;
    }

    private static byte[] Gzip(byte[] content)
    {
        using var buffer = new MemoryStream();
        using (var gz = new GZipStream(buffer, CompressionLevel.Fastest, leaveOpen: true)) gz.Write(content);
        return buffer.ToArray();
    }

    private static void Write(string path, byte[] content, bool gzip) => File.WriteAllBytes(path, gzip ? Gzip(content) : content);
}
