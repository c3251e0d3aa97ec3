namespace Incept.Data;

/// <summary>A training set and its test set, with the normalisation they are trained with.</summary>
/// <param name="Name">What the data is (<c>fashion-mnist</c>, a folder path).</param>
/// <param name="Train">Training images.</param>
/// <param name="Test">Test images.</param>
/// <param name="Mean">Per-channel mean of the training pixels in [0, 1] (one value for grayscale data).</param>
/// <param name="Std">Per-channel standard deviation of the training pixels in [0, 1].</param>
/// <param name="ImageSize">Native side of the images when they all share it (28 for Fashion-MNIST), else null.</param>
public sealed record DataSource(string Name, IImageDataset Train, IImageDataset Test, float[] Mean, float[] Std, int? ImageSize);

/// <summary>Resolves the <c>--data</c> argument: a named data set or a folder in one of the supported layouts.</summary>
public static class DataSources
{
    /// <summary>The default data set: Fashion-MNIST from Debian's <c>dataset-fashion-mnist</c> package.</summary>
    public const string FashionMnistName = "fashion-mnist";

    private static readonly string[] TestFolderNames = ["test", "val", "validation"];

    /// <summary>
    /// Opens <paramref name="data"/>: <c>fashion-mnist</c> (Debian's package), or a folder holding Fashion-MNIST/MNIST
    /// IDX files, CIFAR-10 binary batches, or an ImageFolder tree with <c>train/</c> and <c>test/</c> (or <c>val/</c>)
    /// subfolders of class folders.
    /// </summary>
    public static DataSource Open(string data)
    {
        ArgumentNullException.ThrowIfNull(data);
        if (string.Equals(data, FashionMnistName, StringComparison.OrdinalIgnoreCase))
            return FashionMnistSource(null, FashionMnistName);
        if (!Directory.Exists(data))
            throw new DatasetNotFoundException($"Data '{data}' is neither '{FashionMnistName}' nor an existing folder. Pass --data {FashionMnistName} or a folder of IDX files, CIFAR-10 batches, or train/ and test/ image folders.");
        bool Has(string pattern) => Directory.GetFiles(data, pattern).Length > 0;
        if (Has("train-images-idx3-ubyte*")) return FashionMnistSource(data, data);
        if (Has("data_batch_*.bin") || Directory.Exists(Path.Combine(data, "cifar-10-batches-bin")))
            return new DataSource(data, Cifar10.Load(data, train: true), Cifar10.Load(data, train: false),
                [0.4914f, 0.4822f, 0.4465f], [0.2470f, 0.2435f, 0.2616f], 32);
        var train = Path.Combine(data, "train");
        var test = TestFolderNames.Select(n => Path.Combine(data, n)).FirstOrDefault(Directory.Exists);
        if (Directory.Exists(train) && test is not null)
        {
            var trainSet = ImageFolder.Open(train);
            var testSet = ImageFolder.Open(test);
            if (!trainSet.ClassNames.SequenceEqual(testSet.ClassNames))
                throw new DataFormatException(test, $"The class folders of '{train}' and '{test}' differ; both need the same class subfolders.");
            return new DataSource(data, trainSet, testSet, [0.485f, 0.456f, 0.406f], [0.229f, 0.224f, 0.225f], null);
        }

        throw new DatasetNotFoundException($"'{data}' holds no data Incept recognises. Use a folder of IDX files (train-images-idx3-ubyte…), CIFAR-10 binary batches (data_batch_1.bin…), or train/ and test/ folders with one subfolder per class.");
    }

    private static DataSource FashionMnistSource(string? directory, string name)
        => new(name, FashionMnist.Load(directory, train: true), FashionMnist.Load(directory, train: false), [0.2860f], [0.3530f], 28);
}
