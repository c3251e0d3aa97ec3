namespace Incept.Data;

/// <summary>Expands the image paths a user names (files and folders) into the list of files to read.</summary>
public static class ImageFiles
{
    private static readonly EnumerationOptions Recursive = new() { RecurseSubdirectories = true, AttributesToSkip = FileAttributes.Hidden | FileAttributes.System };

    /// <summary>
    /// Each path in order: a file as it is (whatever its extension, so that a file that is not an image is
    /// reported when it is decoded), a folder as the files under it, recursively, whose extension is one of
    /// <see cref="ImageFolder.Extensions"/>, sorted by code point. Hidden files and folders are skipped.
    /// </summary>
    /// <exception cref="DatasetNotFoundException">A path does not exist, or no image is found at all.</exception>
    public static IReadOnlyList<string> Expand(IEnumerable<string> paths)
    {
        ArgumentNullException.ThrowIfNull(paths);
        var files = new List<string>();
        var named = 0;
        foreach (var path in paths)
        {
            named++;
            if (File.Exists(path))
            {
                files.Add(path);
            }
            else if (Directory.Exists(path))
            {
                files.AddRange(Directory.EnumerateFiles(path, "*", Recursive)
                    .Where(f => ImageFolder.Extensions.Contains(Path.GetExtension(f).ToLowerInvariant()))
                    .Order(StringComparer.Ordinal));
            }
            else
            {
                throw new DatasetNotFoundException($"'{path}' is neither an image file nor a folder; check the path.");
            }
        }
        if (named == 0)
            throw new DatasetNotFoundException("No image was given; name image files or folders of images.");
        if (files.Count == 0)
            throw new DatasetNotFoundException($"No {string.Join("/", ImageFolder.Extensions)} file was found in the folders given; point to a folder that holds images.");
        return files;
    }
}
