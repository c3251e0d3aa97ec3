using System.IO.Compression;
using System.Text;
using Incept.Weights.Pickle;
using static TorchSharp.torch;

namespace Incept.Weights;

/// <summary>
/// The object tree of one PyTorch checkpoint with its tensors on the CPU. Python values appear as .NET
/// values: None → <see langword="null"/>, bool → <see cref="bool"/>, int → <see cref="long"/> (or
/// <see cref="System.Numerics.BigInteger"/> beyond 64 bits), float → <see cref="double"/>, str →
/// <see cref="string"/>, bytes → <c>byte[]</c>, tuple and <c>torch.Size</c> → <c>object?[]</c>, list and
/// set → <c>List&lt;object?&gt;</c>, dict and OrderedDict → <c>Dictionary&lt;object, object?&gt;</c> in
/// insertion order (object attributes such as a state dict's <c>_metadata</c> are dropped), tensor and
/// parameter → <see cref="Tensor"/>, <c>torch.device</c> → its string (<c>"cuda:0"</c>), a dtype →
/// <see cref="ScalarType"/>.
/// </summary>
public sealed class PyTorchCheckpointFile : IDisposable
{
    internal PyTorchCheckpointFile(object? root, IReadOnlyList<Tensor> tensors)
    {
        Root = root;
        Tensors = tensors;
    }

    /// <summary>The object that was passed to <c>torch.save</c>.</summary>
    public object? Root { get; }

    /// <summary>Every distinct tensor in <see cref="Root"/>, each contiguous and owning its memory, in pickle order.</summary>
    public IReadOnlyList<Tensor> Tensors { get; }

    /// <summary>Disposes every tensor.</summary>
    public void Dispose()
    {
        foreach (var t in Tensors) t.Dispose();
    }
}

/// <summary>
/// Reads checkpoints written by <c>torch.save</c> since PyTorch 1.6 (a zip archive holding a pickle and raw
/// storages) without Python and without running anything: a restricted unpickler accepts only containers,
/// numbers, strings, tensors, storages and a short allow-list of PyTorch globals, and refuses every other
/// global by name. The pickle and every storage record are validated before any tensor is created.
/// </summary>
public static class PyTorchCheckpoint
{
    /// <summary>The dictionary entries that commonly wrap a state dict, tried in this order.</summary>
    public static IReadOnlyList<string> WrapperKeys { get; } = ["state_dict", "model", "module", "model_state_dict"];

    private const string DataParallelPrefix = "module.";
    private const int MaxDepth = 1000;

    // The legacy format begins with a pickled magic number: PROTO 2, LONG1 of 10 bytes 0x1950a86a20f9469cfc6c.
    private static readonly byte[] LegacyMagic = [0x80, 0x02, 0x8a, 0x0a, 0x6c, 0xfc, 0x9c, 0x46, 0xf9, 0x20, 0x6a, 0xa8, 0x50, 0x19];

    /// <summary>Reads the whole checkpoint at <paramref name="path"/>; throws <see cref="CheckpointFormatException"/> naming what is wrong.</summary>
    public static PyTorchCheckpointFile Read(string path)
    {
        using var stream = Open(path);
        return Read(stream, path);
    }

    /// <summary>Reads a checkpoint from a seekable <paramref name="stream"/>; <paramref name="name"/> names it in errors.</summary>
    public static PyTorchCheckpointFile Read(Stream stream, string name = "PyTorch checkpoint")
    {
        ArgumentNullException.ThrowIfNull(stream);
        ArgumentNullException.ThrowIfNull(name);
        CheckSignature(stream, name);
        ZipArchive zip;
        try
        {
            zip = new ZipArchive(stream, ZipArchiveMode.Read, leaveOpen: true);
        }
        catch (InvalidDataException e)
        {
            throw Damaged(name, e);
        }

        using (zip)
        {
            var (prefix, pickle) = FindPickle(zip, name);
            CheckByteOrder(zip, prefix, name);
            var storages = new Dictionary<string, StorageRef>();
            var reader = new PickleReader(ReadRecord(pickle, name), name,
                (module, global) => TorchGlobals.Resolve(module, global, name),
                pid => LoadStorage(pid, zip, prefix, storages, name));
            var root = reader.Load();
            return Materialize(root, zip, name);
        }
    }

    /// <summary>
    /// Reads the state dict in <paramref name="path"/> as flat <c>name → tensor</c>. A checkpoint that wraps it
    /// (<c>{"state_dict": …, "epoch": 3}</c>) is unwrapped through the first of <see cref="WrapperKeys"/> that
    /// holds tensors; a <c>module.</c> prefix (DataParallel) is stripped when every key has it; entries that
    /// are not tensors are ignored. The caller owns the tensors.
    /// </summary>
    public static Dictionary<string, Tensor> ReadStateDict(string path) => ReadStateDict(path, entry: null);

    /// <summary>
    /// Reads the state dict held under the top-level entry <paramref name="entry"/> of <paramref name="path"/>
    /// (for example <c>"model_ema"</c>), or found as <see cref="ReadStateDict(string)"/> does when it is
    /// <see langword="null"/>.
    /// </summary>
    public static Dictionary<string, Tensor> ReadStateDict(string path, string? entry)
    {
        var file = Read(path);
        try
        {
            var dict = entry is null ? FindStateDict(file.Root, path) : Entry(file.Root, entry, path);
            var result = new Dictionary<string, Tensor>();
            var kept = new HashSet<Tensor>(ReferenceEqualityComparer.Instance);
            foreach (var (key, value) in dict)
            {
                if (key is not string name || value is not Tensor tensor) continue;
                // A tensor stored under two names (tied weights) gets a second handle, so each can be disposed.
                result[name] = kept.Add(tensor) ? tensor : tensor.alias();
            }

            if (result.Count > 0 && result.Keys.All(k => k.StartsWith(DataParallelPrefix, StringComparison.Ordinal)))
                result = result.ToDictionary(kv => kv.Key[DataParallelPrefix.Length..], kv => kv.Value);
            foreach (var t in file.Tensors)
                if (!kept.Contains(t)) t.Dispose();
            return result;
        }
        catch
        {
            file.Dispose();
            throw;
        }
    }

    private static FileStream Open(string path)
    {
        ArgumentNullException.ThrowIfNull(path);
        if (!File.Exists(path)) throw new InceptException($"Weights file '{path}' does not exist. Check the path.");
        return new FileStream(path, FileMode.Open, FileAccess.Read, FileShare.Read);
    }

    private static CheckpointFormatException Damaged(string name, Exception e) =>
        new($"'{name}' is a damaged zip archive ({e.Message.TrimEnd('.')}); it is truncated or corrupt, so download or save it again.", e);

    /// <summary>Tells the zip format apart from the legacy and bare-pickle formats and from other files.</summary>
    private static void CheckSignature(Stream stream, string name)
    {
        if (!stream.CanSeek) throw new ArgumentException("The stream must be seekable.", nameof(stream));
        long start = stream.Position;
        var head = new byte[LegacyMagic.Length];
        int n = stream.ReadAtLeast(head, head.Length, throwOnEndOfStream: false);
        stream.Position = start;
        if (n >= 4 && head[0] == 'P' && head[1] == 'K' && head[2] is 3 or 5 && head[3] is 4 or 6) return;
        if (n == head.Length && head.AsSpan().SequenceEqual(LegacyMagic))
            throw new CheckpointFormatException(
                $"'{name}' was saved in PyTorch's legacy format (before 1.6), which Incept does not read; re-save it with PyTorch 1.6 or newer: torch.save(torch.load('old.pth'), 'new.pth').");
        if (n >= 2 && head[0] == 0x80 && head[1] is >= 2 and <= 5)
            throw new CheckpointFormatException(
                $"'{name}' is a bare Python pickle, not a torch.save checkpoint; save the state dict with torch.save from PyTorch 1.6 or newer.");
        throw new CheckpointFormatException(
            $"'{name}' is not a PyTorch checkpoint: it is neither a zip archive written by torch.save nor a legacy pickle; check the file and its download.");
    }

    /// <summary>Finds <c>&lt;archive&gt;/data.pkl</c> and returns the archive's folder name with it.</summary>
    private static (string Prefix, ZipArchiveEntry Pickle) FindPickle(ZipArchive zip, string name)
    {
        var pickle = zip.Entries.FirstOrDefault(e => e.FullName.EndsWith("/data.pkl", StringComparison.Ordinal) && e.FullName.Count(c => c == '/') == 1);
        if (pickle is null)
            throw new CheckpointFormatException($"'{name}' is a zip archive but not a PyTorch checkpoint: it holds no <archive>/data.pkl; save the weights with torch.save.");
        var prefix = pickle.FullName[..^"data.pkl".Length];
        if (zip.GetEntry(prefix + "constants.pkl") is not null)
            throw new CheckpointFormatException($"'{name}' is a TorchScript archive (torch.jit.save), which holds code; save the model's state_dict() with torch.save instead.");
        return (prefix, pickle);
    }

    private static void CheckByteOrder(ZipArchive zip, string prefix, string name)
    {
        if (zip.GetEntry(prefix + "byteorder") is not { } entry) return;
        var order = Encoding.ASCII.GetString(ReadRecord(entry, name)).Trim();
        if (order != "little")
            throw new CheckpointFormatException($"'{name}' stores its tensors in {order}-endian byte order; re-save it on a little-endian machine.");
    }

    private static byte[] ReadRecord(ZipArchiveEntry entry, string name)
    {
        if (entry.Length > Array.MaxLength)
            throw new CheckpointFormatException($"'{name}' has a record '{entry.FullName}' of {entry.Length} bytes, more than Incept reads into one array (2 GiB).");
        try
        {
            var bytes = new byte[entry.Length];
            using var s = entry.Open();
            s.ReadExactly(bytes);
            return bytes;
        }
        catch (Exception e) when (e is InvalidDataException or EndOfStreamException or IOException)
        {
            throw Damaged(name, e);
        }
    }

    /// <summary>Resolves a persistent id <c>('storage', storage_type, key, location, numel)</c> to its record, checking its size.</summary>
    private static StorageRef LoadStorage(object? pid, ZipArchive zip, string prefix, Dictionary<string, StorageRef> storages, string name)
    {
        if (pid is not object?[] { Length: 5 } id || id[0] is not "storage")
            throw new PickleDataException("a persistent id is not a ('storage', type, key, location, size) tuple");
        if (id[1] is not StorageType type) throw new PickleDataException($"storage type {id[1]} is not a known torch storage class");
        if (id[2] is not string key || id[3] is not string || id[4] is not long numel || numel < 0)
            throw new PickleDataException("a persistent id has a malformed key, location or size");
        if (storages.TryGetValue(key, out var known))
        {
            if (known.Type != type || known.Numel != numel)
                throw new PickleDataException($"storage '{key}' is described twice with different types or sizes");
            return known;
        }

        var record = prefix + "data/" + key;
        var entry = zip.GetEntry(record)
            ?? throw new CheckpointFormatException($"'{name}' lacks the storage record '{record}' that its data.pkl refers to; the file is incomplete, so download or save it again.");
        long expected = checked(numel * type.ElementSize);
        if (entry.Length != expected)
            throw new CheckpointFormatException(
                $"'{name}' has a storage record '{record}' of {entry.Length} bytes, but a {type.Name} of {numel} elements needs {expected}; the file is corrupt, so download or save it again.");
        var storage = new StorageRef(key, type, numel, record);
        storages[key] = storage;
        return storage;
    }

    /// <summary>Reads each storage once and turns every pending tensor in the tree into a contiguous tensor of its own.</summary>
    private static PyTorchCheckpointFile Materialize(object? root, ZipArchive zip, string name)
    {
        var pending = new List<PendingTensor>();
        var seen = new HashSet<PendingTensor>(ReferenceEqualityComparer.Instance);
        Walk(root, name, p => { if (seen.Add(p)) pending.Add(p); return null; });
        var made = new Dictionary<PendingTensor, Tensor>(ReferenceEqualityComparer.Instance);
        try
        {
            foreach (var group in pending.GroupBy(p => p.Storage))
            {
                var views = group.ToList();
                var storage = empty([group.Key.Numel], group.Key.Type.DType);
                try
                {
                    var bytes = ReadRecord(zip.GetEntry(group.Key.RecordName)!, name);
                    if (bytes.Length > 0) storage.bytes = bytes;
                    foreach (var view in views)
                    {
                        if (views.Count == 1 && view.IsWholeStorage)
                        {
                            made[view] = storage.reshape(view.Size);
                            continue;
                        }

                        using var strided = storage.as_strided(view.Size, view.Stride, view.Offset);
                        var copy = empty(view.Size, group.Key.Type.DType);
                        copy.copy_(strided);
                        made[view] = copy;
                    }
                }
                finally
                {
                    storage.Dispose();
                }
            }
        }
        catch
        {
            foreach (var t in made.Values) t.Dispose();
            throw;
        }

        var result = Walk(root, name, p => made[p]);
        return new PyTorchCheckpointFile(result, pending.Select(p => made[p]).ToList());
    }

    /// <summary>
    /// Visits every pending tensor in the tree, replacing it in its container by what <paramref name="replace"/>
    /// returns when that is not null; returns the (possibly replaced) root. Shared and cyclic containers are
    /// visited once; nesting deeper than <see cref="MaxDepth"/> is refused rather than overflowing the stack.
    /// </summary>
    private static object? Walk(object? root, string name, Func<PendingTensor, object?> replace)
    {
        var visited = new HashSet<object>(ReferenceEqualityComparer.Instance);
        object? Visit(object? node, int depth)
        {
            if (depth > MaxDepth)
                throw new CheckpointFormatException($"'{name}' nests containers more than {MaxDepth} levels deep, which no state dict does; the file is corrupt or hostile.");
            switch (node)
            {
                case PendingTensor p:
                    return replace(p) ?? p;
                case Dictionary<object, object?> dict when visited.Add(dict):
                    foreach (var key in dict.Keys.ToList()) dict[key] = Visit(dict[key], depth + 1);
                    return dict;
                case List<object?> list when visited.Add(list):
                    for (int i = 0; i < list.Count; i++) list[i] = Visit(list[i], depth + 1);
                    return list;
                case object?[] tuple when visited.Add(tuple):
                    for (int i = 0; i < tuple.Length; i++) tuple[i] = Visit(tuple[i], depth + 1);
                    return tuple;
                default:
                    return node;
            }
        }

        return Visit(root, 0);
    }

    private static bool HoldsTensors(Dictionary<object, object?> dict) => dict.Any(kv => kv.Key is string && kv.Value is Tensor);

    /// <summary>Finds the state dict in a checkpoint tree: a wrapped one first, then the root itself, then one nested deeper.</summary>
    private static Dictionary<object, object?> FindStateDict(object? root, string name)
    {
        if (root is not Dictionary<object, object?> top)
            throw new CheckpointFormatException($"'{name}' holds {Describe(root)}, not a state dict; save model.state_dict() with torch.save.");
        Dictionary<object, object?>? Search(Dictionary<object, object?> dict, int depth)
        {
            foreach (var key in WrapperKeys)
                if (dict.TryGetValue(key, out var inner) && inner is Dictionary<object, object?> d && HoldsTensors(d)) return d;
            if (HoldsTensors(dict)) return dict;
            if (depth == 0) return null;
            foreach (var key in WrapperKeys)
                if (dict.TryGetValue(key, out var inner) && inner is Dictionary<object, object?> d && Search(d, depth - 1) is { } found) return found;
            return null;
        }

        return Search(top, depth: 2) ?? throw new CheckpointFormatException(
            $"'{name}' holds no state dict: none of its top-level entries ({KeyList(top)}) is a dict of tensors under {string.Join(", ", WrapperKeys)}; name the entry that holds the weights.");
    }

    private static Dictionary<object, object?> Entry(object? root, string entry, string name)
    {
        if (root is Dictionary<object, object?> top && top.TryGetValue(entry, out var inner) && inner is Dictionary<object, object?> dict && HoldsTensors(dict))
            return dict;
        var keys = root is Dictionary<object, object?> d ? KeyList(d) : Describe(root);
        throw new CheckpointFormatException($"'{name}' has no entry '{entry}' that holds tensors; its top level is {keys}.");
    }

    private static string KeyList(Dictionary<object, object?> dict) =>
        dict.Count == 0 ? "an empty dict" : string.Join(", ", dict.Keys.Take(10).Select(k => $"{k}")) + (dict.Count > 10 ? $", … ({dict.Count - 10} more)" : "");

    private static string Describe(object? o) => o switch
    {
        null => "None",
        Tensor => "a single tensor",
        List<object?> => "a list",
        object?[] => "a tuple",
        _ => $"a {o.GetType().Name}",
    };
}
