using static TorchSharp.torch;

namespace Incept.Weights;

/// <summary>A state dict read from a file, with the file's string metadata (safetensors only).</summary>
public sealed class CheckpointFile : IDisposable
{
    internal CheckpointFile(string path, Dictionary<string, Tensor> tensors, Dictionary<string, string> metadata)
    {
        Path = path;
        Tensors = tensors;
        Metadata = metadata;
    }

    /// <summary>Where it was read from.</summary>
    public string Path { get; }

    /// <summary>The tensors by key.</summary>
    public Dictionary<string, Tensor> Tensors { get; }

    /// <summary>String metadata (empty for PyTorch files).</summary>
    public Dictionary<string, string> Metadata { get; }

    /// <summary>
    /// Reads a safetensors, PyTorch (zip) or TorchSharp (.dat) checkpoint, unwrapping nested dicts (<c>state_dict</c>,
    /// <c>model</c>) and DataParallel's <c>module.</c> prefix. The format is recognised from the content,
    /// not the file name.
    /// </summary>
    public static CheckpointFile Read(string path)
    {
        ArgumentNullException.ThrowIfNull(path);
        if (!File.Exists(path))
            throw new InceptException(Directory.Exists(path) ? $"'{path}' is a folder, not a weights file." : $"Weights file '{path}' does not exist. Check the path.");
        var head = new byte[16];
        int n;
        using (var f = File.OpenRead(path)) n = f.Read(head, 0, head.Length);
        if (n >= 2 && head[0] == (byte)'P' && head[1] == (byte)'K')
            return new CheckpointFile(path, StripModulePrefix(PyTorchCheckpoint.ReadStateDict(path)), []);
        if (n >= 2 && head[0] == 0x80 && head[1] <= 5)
            throw new CheckpointFormatException($"'{path}' is a legacy (pre-1.6) PyTorch file that Incept does not read. Re-save it with PyTorch 1.6 or newer: torch.save(torch.load('{System.IO.Path.GetFileName(path)}'), 'new.pth').");
        if (n >= 9 && head[8] == (byte)'{')
        {
            var st = SafeTensors.Read(path);
            return new CheckpointFile(path, StripModulePrefix(st.Tensors), st.Metadata);
        }

        if (TorchSharpDat.LooksLike(path))
            return new CheckpointFile(path, StripModulePrefix(TorchSharpDat.Read(path)), []);

        throw new CheckpointFormatException($"'{path}' is neither a safetensors file, a PyTorch checkpoint nor a TorchSharp weight file. Incept reads .safetensors, PyTorch .pth/.pt and TorchSharp .dat files; convert other formats first.");
    }

    /// <summary>Disposes every tensor.</summary>
    public void Dispose()
    {
        foreach (var t in Tensors.Values) t.Dispose();
    }

    private static Dictionary<string, Tensor> StripModulePrefix(Dictionary<string, Tensor> tensors)
    {
        const string Prefix = "module.";
        if (tensors.Count == 0 || !tensors.Keys.All(k => k.StartsWith(Prefix, StringComparison.Ordinal))) return tensors;
        return tensors.ToDictionary(kv => kv.Key[Prefix.Length..], kv => kv.Value);
    }
}
