namespace Incept.Data;

/// <summary>
/// Fashion-MNIST (Xiao, Rasul and Vollgraf, 2017): 28 × 28 grayscale images of clothing in ten classes,
/// 60000 for training and 10000 for testing, read from the four IDX files of the original distribution.
/// </summary>
public sealed class FashionMnist : IImageDataset
{
    /// <summary>Where Debian's <c>dataset-fashion-mnist</c> package installs the files.</summary>
    public const string DefaultDirectory = "/usr/share/datasets/fashion-mnist";

    private static readonly string[] Names =
        ["T-shirt/top", "Trouser", "Pullover", "Dress", "Coat", "Sandal", "Shirt", "Sneaker", "Bag", "Ankle boot"];

    private readonly byte[] _pixels;
    private readonly byte[] _labels;

    private FashionMnist(byte[] pixels, byte[] labels, int height, int width, bool train, string directory)
    {
        _pixels = pixels;
        _labels = labels;
        Height = height;
        Width = width;
        IsTrain = train;
        Directory = directory;
    }

    /// <summary>The ten class names, in label order.</summary>
    public static IReadOnlyList<string> Classes => Names;

    /// <inheritdoc/>
    public IReadOnlyList<string> ClassNames => Names;

    /// <inheritdoc/>
    public int Count => _labels.Length;

    /// <summary>Image rows (28).</summary>
    public int Height { get; }

    /// <summary>Image columns (28).</summary>
    public int Width { get; }

    /// <summary>Whether this is the training split (<c>train-*</c> files) rather than the test split (<c>t10k-*</c>).</summary>
    public bool IsTrain { get; }

    /// <summary>The folder the files were read from.</summary>
    public string Directory { get; }

    /// <summary>
    /// Loads the training or test split from <paramref name="directory"/> (default <see cref="DefaultDirectory"/>),
    /// which holds <c>train-images-idx3-ubyte</c>, <c>train-labels-idx1-ubyte</c>, <c>t10k-images-idx3-ubyte</c> and
    /// <c>t10k-labels-idx1-ubyte</c>, each plain or with a <c>.gz</c> suffix.
    /// </summary>
    /// <exception cref="DatasetNotFoundException">The folder or one of the split's two files is missing.</exception>
    /// <exception cref="DataFormatException">A file is corrupt, or the images and labels do not match.</exception>
    public static FashionMnist Load(string? directory = null, bool train = true)
    {
        directory ??= DefaultDirectory;
        string prefix = train ? "train" : "t10k";
        string imagesPath = Find(directory, $"{prefix}-images-idx3-ubyte");
        string labelsPath = Find(directory, $"{prefix}-labels-idx1-ubyte");
        var images = IdxReader.Read(imagesPath);
        var labels = IdxReader.Read(labelsPath);

        if (images.DataType != IdxDataType.UInt8 || images.Shape.Count != 3)
            throw new DataFormatException(imagesPath, $"'{imagesPath}' holds {images.DataType} values of shape [{string.Join(", ", images.Shape)}], not the UInt8 images × rows × columns that Fashion-MNIST images are.");
        if (labels.DataType != IdxDataType.UInt8 || labels.Shape.Count != 1)
            throw new DataFormatException(labelsPath, $"'{labelsPath}' holds {labels.DataType} values of shape [{string.Join(", ", labels.Shape)}], not the one UInt8 label per image that Fashion-MNIST labels are.");
        if (images.Shape[0] != labels.Shape[0])
            throw new DataFormatException(labelsPath, $"'{labelsPath}' has {labels.Shape[0]} labels but '{imagesPath}' has {images.Shape[0]} images; the two files come from different data sets or one is damaged.");
        if (images.Shape[1] == 0 || images.Shape[2] == 0)
            throw new DataFormatException(imagesPath, $"'{imagesPath}' declares empty {images.Shape[1]} x {images.Shape[2]} images; the file is corrupt.");
        var labelBytes = labels.AsBytes();
        for (int i = 0; i < labelBytes.Length; i++)
        {
            if (labelBytes[i] >= Names.Length)
                throw new DataFormatException(labelsPath, $"'{labelsPath}' gives sample {i} the label {labelBytes[i]}, outside Fashion-MNIST's classes 0 to 9; the file is corrupt or not Fashion-MNIST.");
        }
        return new FashionMnist(images.AsBytes(), labelBytes, images.Shape[1], images.Shape[2], train, directory);
    }

    /// <inheritdoc/>
    public LabeledImage Get(int index)
    {
        ArgumentOutOfRangeException.ThrowIfNegative(index);
        ArgumentOutOfRangeException.ThrowIfGreaterThanOrEqual(index, Count);
        int size = Height * Width;
        var pixels = _pixels.AsSpan(index * size, size).ToArray();
        return new LabeledImage(new ByteImage(Height, Width, 1, pixels), _labels[index]);
    }

    /// <inheritdoc/>
    public int GetLabel(int index) => _labels[index];

    private static string Find(string directory, string stem)
    {
        if (!System.IO.Directory.Exists(directory))
            throw new DatasetNotFoundException(NotFound(directory, $"the folder '{directory}' does not exist"));
        foreach (var name in new[] { stem + ".gz", stem })
        {
            var path = Path.Combine(directory, name);
            if (File.Exists(path)) return path;
        }
        throw new DatasetNotFoundException(NotFound(directory, $"'{directory}' has neither {stem}.gz nor {stem}"));
    }

    private static string NotFound(string directory, string problem) => directory == DefaultDirectory
        ? $"Fashion-MNIST was not found: {problem}; install it with 'apt-get install dataset-fashion-mnist' or pass --data DIR with the folder that holds the IDX files."
        : $"Fashion-MNIST was not found: {problem}; pass --data DIR with the folder that holds the IDX files (Debian's dataset-fashion-mnist package installs them in {DefaultDirectory}).";
}
