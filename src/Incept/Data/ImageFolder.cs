namespace Incept.Data;

/// <summary>
/// Images in a folder with one subfolder per class, as torchvision's <c>ImageFolder</c> reads them: class names
/// are the subfolder names sorted by code point, so label indices match torchvision's; each class folder is
/// searched recursively for files whose extension (any case) is in <see cref="Extensions"/>, folders in sorted
/// order and files sorted within each. Images are decoded on each <see cref="Get"/> into RGB (see
/// <see cref="ImageDecoder"/>).
/// </summary>
public sealed class ImageFolder : IImageDataset
{
    private static readonly string[] KnownExtensions = [".jpg", ".jpeg", ".png", ".bmp", ".webp"];

    private readonly string[] _classes;
    private readonly string[] _paths;
    private readonly int[] _labels;

    private ImageFolder(string root, string[] classes, string[] paths, int[] labels, AlphaMode alpha)
    {
        Root = root;
        _classes = classes;
        _paths = paths;
        _labels = labels;
        Alpha = alpha;
    }

    /// <summary>File extensions that are read as images.</summary>
    public static IReadOnlyList<string> Extensions => KnownExtensions;

    /// <summary>The folder whose subfolders are the classes.</summary>
    public string Root { get; }

    /// <summary>How decoding treats alpha channels.</summary>
    public AlphaMode Alpha { get; }

    /// <inheritdoc/>
    public IReadOnlyList<string> ClassNames => _classes;

    /// <inheritdoc/>
    public int Count => _paths.Length;

    /// <summary>The image files, in sample order.</summary>
    public IReadOnlyList<string> Paths => _paths;

    /// <summary>
    /// Scans <paramref name="root"/>: every subfolder is a class (hidden ones included, as in torchvision) and
    /// must hold at least one image.
    /// </summary>
    /// <exception cref="DatasetNotFoundException">The folder does not exist, has no subfolders, or a class folder has no image.</exception>
    public static ImageFolder Open(string root, AlphaMode alpha = AlphaMode.Drop)
    {
        ArgumentNullException.ThrowIfNull(root);
        if (!Directory.Exists(root))
            throw new DatasetNotFoundException($"Image folder '{root}' does not exist; pass a folder with one subfolder of images per class.");
        var classes = Directory.GetDirectories(root).Select(Path.GetFileName).Select(n => n!).Order(StringComparer.Ordinal).ToArray();
        if (classes.Length == 0)
            throw new DatasetNotFoundException($"Image folder '{root}' has no subfolders; put each class's images in a subfolder named after the class.");

        var paths = new List<string>();
        var labels = new List<int>();
        var empty = new List<string>();
        for (int label = 0; label < classes.Length; label++)
        {
            int before = paths.Count;
            var classDir = Path.Combine(root, classes[label]);
            foreach (var dir in new[] { classDir }.Concat(Directory.EnumerateDirectories(classDir, "*", Recursive)).Order(StringComparer.Ordinal))
            {
                foreach (var file in Directory.EnumerateFiles(dir, "*", TopOnly).Order(StringComparer.Ordinal))
                {
                    if (!KnownExtensions.Contains(Path.GetExtension(file).ToLowerInvariant())) continue;
                    paths.Add(file);
                    labels.Add(label);
                }
            }
            if (paths.Count == before) empty.Add(classes[label]);
        }
        if (empty.Count > 0)
            throw new DatasetNotFoundException($"Image folder '{root}' has no {string.Join("/", KnownExtensions)} file for the classes {string.Join(", ", empty)}; add images or remove those subfolders.");
        return new ImageFolder(root, classes, [.. paths], [.. labels], alpha);
    }

    /// <inheritdoc/>
    /// <exception cref="DataFormatException">The file cannot be decoded; the message names it.</exception>
    public LabeledImage Get(int index) => new(ImageDecoder.DecodeRgb(_paths[index], Alpha), _labels[index]);

    /// <inheritdoc/>
    public int GetLabel(int index) => _labels[index];

    private static readonly EnumerationOptions Recursive = new() { RecurseSubdirectories = true, AttributesToSkip = 0 };
    private static readonly EnumerationOptions TopOnly = new() { RecurseSubdirectories = false, AttributesToSkip = 0 };
}
