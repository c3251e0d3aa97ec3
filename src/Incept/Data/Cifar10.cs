namespace Incept.Data;

/// <summary>
/// CIFAR-10 (Krizhevsky, 2009) in its binary distribution: files of 3073-byte records, each a label byte
/// followed by a 32 × 32 image stored as three planes (1024 red, 1024 green, 1024 blue bytes, rows in order).
/// Training uses <c>data_batch_1.bin</c> to <c>data_batch_5.bin</c> (50000 images), testing <c>test_batch.bin</c> (10000).
/// </summary>
public sealed class Cifar10 : IImageDataset
{
    /// <summary>Image side in pixels.</summary>
    public const int ImageSize = 32;

    /// <summary>Bytes per record: one label and 3 × 32 × 32 pixels.</summary>
    public const int RecordSize = 1 + 3 * ImageSize * ImageSize;

    /// <summary>The folder name inside the official binary archive.</summary>
    public const string ArchiveFolder = "cifar-10-batches-bin";

    private const int Plane = ImageSize * ImageSize;

    private static readonly string[] Names =
        ["airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship", "truck"];

    private static readonly string[] TrainFiles =
        ["data_batch_1.bin", "data_batch_2.bin", "data_batch_3.bin", "data_batch_4.bin", "data_batch_5.bin"];

    private readonly byte[][] _files;
    private readonly int[] _starts;

    private Cifar10(byte[][] files)
    {
        _files = files;
        _starts = new int[files.Length + 1];
        for (int f = 0; f < files.Length; f++)
            _starts[f + 1] = _starts[f] + files[f].Length / RecordSize;
    }

    /// <summary>The ten class names, in label order.</summary>
    public static IReadOnlyList<string> Classes => Names;

    /// <inheritdoc/>
    public IReadOnlyList<string> ClassNames => Names;

    /// <inheritdoc/>
    public int Count => _starts[^1];

    /// <summary>
    /// Loads the training (five data batches) or test split from <paramref name="directory"/>, the extracted
    /// <c>cifar-10-batches-bin</c> folder or the folder that contains it.
    /// </summary>
    /// <exception cref="DatasetNotFoundException">The folder or a batch file is missing.</exception>
    /// <exception cref="DataFormatException">A batch file is not a whole number of valid records.</exception>
    public static Cifar10 Load(string directory, bool train = true)
    {
        ArgumentNullException.ThrowIfNull(directory);
        if (!Directory.Exists(directory))
            throw new DatasetNotFoundException($"CIFAR-10 folder '{directory}' does not exist; pass the extracted '{ArchiveFolder}' folder of the CIFAR-10 binary version.");
        var nested = Path.Combine(directory, ArchiveFolder);
        if (!File.Exists(Path.Combine(directory, "test_batch.bin")) && Directory.Exists(nested))
            directory = nested;
        string[] names = train ? TrainFiles : ["test_batch.bin"];
        var paths = names.Select(n => Path.Combine(directory, n)).ToArray();
        var missing = paths.Where(p => !File.Exists(p)).Select(Path.GetFileName).ToArray();
        if (missing.Length > 0)
            throw new DatasetNotFoundException($"CIFAR-10 folder '{directory}' lacks {string.Join(", ", missing)}; pass the extracted '{ArchiveFolder}' folder of the CIFAR-10 binary version.");
        return FromFiles(paths);
    }

    /// <summary>Reads the given batch files, in order, as one data set.</summary>
    /// <exception cref="DatasetNotFoundException">A file is missing.</exception>
    /// <exception cref="DataFormatException">A file is empty, not a whole number of records, or has a label outside 0–9.</exception>
    public static Cifar10 FromFiles(IEnumerable<string> paths)
    {
        ArgumentNullException.ThrowIfNull(paths);
        var files = new List<byte[]>();
        foreach (var path in paths)
        {
            if (!File.Exists(path))
                throw new DatasetNotFoundException($"CIFAR-10 batch file '{path}' does not exist; check the path.");
            var bytes = File.ReadAllBytes(path);
            Validate(path, bytes);
            files.Add(bytes);
        }
        if (files.Count == 0)
            throw new ArgumentException("Pass at least one CIFAR-10 batch file.", nameof(paths));
        return new Cifar10([.. files]);
    }

    /// <inheritdoc/>
    public LabeledImage Get(int index)
    {
        var (file, offset) = Locate(index);
        var record = _files[file].AsSpan(offset, RecordSize);
        var pixels = new byte[3 * Plane];
        for (int p = 0; p < Plane; p++)
        {
            pixels[3 * p] = record[1 + p];
            pixels[3 * p + 1] = record[1 + Plane + p];
            pixels[3 * p + 2] = record[1 + 2 * Plane + p];
        }
        return new LabeledImage(new ByteImage(ImageSize, ImageSize, 3, pixels), record[0]);
    }

    /// <inheritdoc/>
    public int GetLabel(int index)
    {
        var (file, offset) = Locate(index);
        return _files[file][offset];
    }

    private (int File, int Offset) Locate(int index)
    {
        ArgumentOutOfRangeException.ThrowIfNegative(index);
        ArgumentOutOfRangeException.ThrowIfGreaterThanOrEqual(index, Count);
        int file = Array.BinarySearch(_starts, index);
        if (file < 0) file = ~file - 1;
        return (file, (index - _starts[file]) * RecordSize);
    }

    private static void Validate(string path, byte[] bytes)
    {
        if (bytes.Length == 0 || bytes.Length % RecordSize != 0)
            throw new DataFormatException(path, $"'{path}' holds {bytes.Length} bytes, not a whole number of {RecordSize}-byte CIFAR-10 records; the file is truncated or not a CIFAR-10 binary batch (CIFAR-100's records are 3074 bytes).");
        for (int r = 0, offset = 0; offset < bytes.Length; r++, offset += RecordSize)
        {
            if (bytes[offset] >= Names.Length)
                throw new DataFormatException(path, $"'{path}' gives record {r} the label {bytes[offset]}, outside CIFAR-10's classes 0 to 9; the file is corrupt or not a CIFAR-10 binary batch.");
        }
    }
}
