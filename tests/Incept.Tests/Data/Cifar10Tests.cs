using Incept.Data;

namespace Incept.Tests.Data;

/// <summary>CIFAR-10 binary batches: record layout, file order, validation.</summary>
public class Cifar10Tests
{
    /// <summary>A record whose pixel (plane c, row y, column x) is (c × 100 + y × 3 + x + seed) mod 256.</summary>
    private static byte[] Record(byte label, int seed)
    {
        var r = new byte[Cifar10.RecordSize];
        r[0] = label;
        for (int c = 0; c < 3; c++)
            for (int y = 0; y < 32; y++)
                for (int x = 0; x < 32; x++)
                    r[1 + c * 1024 + y * 32 + x] = (byte)((c * 100 + y * 3 + x + seed) % 256);
        return r;
    }

    [Fact]
    public void Records_become_RGB_images_with_planes_interleaved_and_files_concatenated()
    {
        using var temp = new TempFolder();
        var root = Path.Combine(temp.Path, Cifar10.ArchiveFolder);
        for (int f = 1; f <= 5; f++)
            File.WriteAllBytes(temp.File($"{Cifar10.ArchiveFolder}/data_batch_{f}.bin"), [.. Record((byte)f, f), .. Record(0, 10 + f)]);
        File.WriteAllBytes(temp.File($"{Cifar10.ArchiveFolder}/test_batch.bin"), Record(9, 0));

        var train = Cifar10.Load(temp.Path); // the folder that contains cifar-10-batches-bin works too
        var test = Cifar10.Load(root, train: false);

        Assert.Equal(10, train.Count);
        Assert.Equal([1, 0, 2, 0, 3, 0, 4, 0, 5, 0], Enumerable.Range(0, 10).Select(train.GetLabel));
        Assert.Equal("truck", test.ClassNames[test.Get(0).Label]);

        var sample = train.Get(5); // second record of data_batch_3.bin, seed 13
        Assert.Equal(0, sample.Label);
        Assert.Equal((32, 32, 3), (sample.Image.Height, sample.Image.Width, sample.Image.Channels));
        Assert.Equal((byte)((0 + 4 * 3 + 7 + 13) % 256), sample.Image[4, 7, 0]);
        Assert.Equal((byte)((100 + 4 * 3 + 7 + 13) % 256), sample.Image[4, 7, 1]);
        Assert.Equal((byte)((200 + 31 * 3 + 31 + 13) % 256), sample.Image[31, 31, 2]);
    }

    [Fact]
    public void A_file_that_is_not_whole_records_or_has_a_bad_label_is_rejected_by_name()
    {
        using var temp = new TempFolder();
        var cut = temp.File("cut.bin");
        File.WriteAllBytes(cut, [.. Record(1, 0), .. Record(2, 0)[..1000]]);
        var e = Assert.Throws<DataFormatException>(() => Cifar10.FromFiles([cut]));
        Assert.Contains($"'{cut}' holds 4073 bytes, not a whole number of 3073-byte", e.Message, StringComparison.Ordinal);

        var label = temp.File("label.bin");
        File.WriteAllBytes(label, [.. Record(1, 0), .. Record(12, 0)]);
        e = Assert.Throws<DataFormatException>(() => Cifar10.FromFiles([label]));
        Assert.Contains("record 1 the label 12", e.Message, StringComparison.Ordinal);

        var empty = temp.File("empty.bin");
        File.WriteAllBytes(empty, []);
        Assert.Throws<DataFormatException>(() => Cifar10.FromFiles([empty]));
    }

    [Fact]
    public void A_folder_without_the_batches_lists_the_missing_files()
    {
        using var temp = new TempFolder();
        File.WriteAllBytes(temp.File("data_batch_1.bin"), Record(0, 0));
        var e = Assert.Throws<DatasetNotFoundException>(() => Cifar10.Load(temp.Path));
        Assert.Contains("lacks data_batch_2.bin, data_batch_3.bin, data_batch_4.bin, data_batch_5.bin", e.Message, StringComparison.Ordinal);
    }
}
