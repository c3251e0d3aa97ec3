using System.Buffers.Binary;
using System.Text;
using System.Text.Json;
using System.Text.Json.Nodes;
using static TorchSharp.torch;

namespace Incept.Weights;

/// <summary>The tensors and string metadata of one safetensors file.</summary>
public sealed class SafeTensorsFile : IDisposable
{
    internal SafeTensorsFile(Dictionary<string, Tensor> tensors, Dictionary<string, string> metadata)
    {
        Tensors = tensors;
        Metadata = metadata;
    }

    /// <summary>Tensors by key, in file order.</summary>
    public Dictionary<string, Tensor> Tensors { get; }

    /// <summary>The <c>__metadata__</c> strings.</summary>
    public Dictionary<string, string> Metadata { get; }

    /// <summary>Disposes every tensor.</summary>
    public void Dispose()
    {
        foreach (var t in Tensors.Values) t.Dispose();
    }
}

/// <summary>
/// Reads and writes the safetensors format: a little-endian u64 header length, a JSON header, then raw
/// little-endian tensor data. Everything is validated before any tensor is created.
/// </summary>
public static class SafeTensors
{
    private const long MaxHeader = 100L * 1024 * 1024;

    private static readonly Dictionary<string, (ScalarType Type, int Size)> DTypes = new()
    {
        ["F32"] = (ScalarType.Float32, 4), ["F64"] = (ScalarType.Float64, 8), ["F16"] = (ScalarType.Float16, 2),
        ["BF16"] = (ScalarType.BFloat16, 2), ["I64"] = (ScalarType.Int64, 8), ["I32"] = (ScalarType.Int32, 4),
        ["I16"] = (ScalarType.Int16, 2), ["I8"] = (ScalarType.Int8, 1), ["U8"] = (ScalarType.Byte, 1), ["BOOL"] = (ScalarType.Bool, 1),
    };

    /// <summary>Reads <paramref name="path"/>; throws <see cref="CheckpointFormatException"/> naming what is wrong.</summary>
    public static SafeTensorsFile Read(string path)
    {
        if (!File.Exists(path)) throw new InceptException($"Weights file '{path}' does not exist. Check the path.");
        return Read(File.ReadAllBytes(path), path);
    }

    /// <summary>Reads a safetensors image held in memory; <paramref name="name"/> names it in errors.</summary>
    public static SafeTensorsFile Read(byte[] bytes, string name = "safetensors data")
    {
        ArgumentNullException.ThrowIfNull(bytes);
        string Bad(string what) => $"'{name}' is not a valid safetensors file: {what}.";
        if (bytes.Length < 8) throw new CheckpointFormatException(Bad($"it has {bytes.Length} bytes, fewer than the 8-byte header length"));
        ulong n = BinaryPrimitives.ReadUInt64LittleEndian(bytes);
        if (n > (ulong)Math.Min(MaxHeader, bytes.Length - 8))
            throw new CheckpointFormatException(Bad($"the header claims {n} bytes but the file has {bytes.Length - 8} after the length (truncated or not safetensors)"));
        JsonObject header;
        try
        {
            header = JsonNode.Parse(Encoding.UTF8.GetString(bytes, 8, (int)n)) as JsonObject
                ?? throw new CheckpointFormatException(Bad("the header is not a JSON object"));
        }
        catch (JsonException e)
        {
            throw new CheckpointFormatException(Bad($"the header is not valid JSON ({e.Message})"), e);
        }

        long dataStart = 8 + (long)n, dataLength = bytes.Length - dataStart;
        var metadata = new Dictionary<string, string>();
        var entries = new List<(string Key, ScalarType Type, long[] Shape, long Begin, long End)>();
        foreach (var (key, node) in header)
        {
            if (key == "__metadata__")
            {
                if (node is not JsonObject meta) throw new CheckpointFormatException(Bad("__metadata__ is not an object"));
                foreach (var (mk, mv) in meta)
                    metadata[mk] = mv is JsonValue v && v.TryGetValue<string>(out var s) ? s : throw new CheckpointFormatException(Bad($"metadata '{mk}' is not a string"));
                continue;
            }

            if (node is not JsonObject o || o["dtype"] is not JsonValue dt || !dt.TryGetValue<string>(out var dtype)
                || o["shape"] is not JsonArray shapeArr || o["data_offsets"] is not JsonArray offs || offs.Count != 2)
                throw new CheckpointFormatException(Bad($"entry '{key}' lacks dtype, shape or data_offsets"));
            if (!DTypes.TryGetValue(dtype, out var info))
                throw new CheckpointFormatException(Bad($"entry '{key}' has unsupported dtype {dtype}"));
            long[] shape;
            long begin, end;
            try
            {
                shape = shapeArr.Select(x => x!.GetValue<long>()).ToArray();
                begin = offs[0]!.GetValue<long>();
                end = offs[1]!.GetValue<long>();
            }
            catch (Exception e) when (e is InvalidOperationException or FormatException or NullReferenceException)
            {
                throw new CheckpointFormatException(Bad($"entry '{key}' has a malformed shape or offsets"), e);
            }

            if (shape.Any(d => d < 0)) throw new CheckpointFormatException(Bad($"entry '{key}' has a negative dimension"));
            long numel = shape.Aggregate(1L, (a, d) => checked(a * d));
            if (begin < 0 || end < begin || end > dataLength)
                throw new CheckpointFormatException(Bad($"entry '{key}' points at bytes {begin}–{end} but the data section has {dataLength} (truncated file?)"));
            if (end - begin != numel * info.Size)
                throw new CheckpointFormatException(Bad($"entry '{key}' holds {end - begin} bytes but {dtype} [{string.Join(", ", shape)}] needs {numel * info.Size}"));
            entries.Add((key, info.Type, shape, begin, end));
        }

        var tensors = new Dictionary<string, Tensor>();
        foreach (var (key, type, shape, begin, end) in entries)
        {
            var t = empty(shape, type);
            var span = bytes.AsSpan((int)(dataStart + begin), (int)(end - begin));
            if (span.Length > 0) t.bytes = span;
            tensors[key] = t;
        }

        return new SafeTensorsFile(tensors, metadata);
    }

    /// <summary>
    /// Writes <paramref name="tensors"/> (moved to CPU, contiguous) with <paramref name="metadata"/> to
    /// <paramref name="path"/> through a temporary file, so that a failure never leaves a partial file.
    /// </summary>
    public static void Write(string path, IEnumerable<KeyValuePair<string, Tensor>> tensors, IReadOnlyDictionary<string, string>? metadata = null)
    {
        ArgumentNullException.ThrowIfNull(tensors);
        var header = new JsonObject();
        if (metadata is { Count: > 0 })
        {
            var meta = new JsonObject();
            foreach (var (k, v) in metadata) meta[k] = v;
            header["__metadata__"] = meta;
        }

        var blobs = new List<byte[]>();
        long offset = 0;
        foreach (var (key, tensor) in tensors)
        {
            using var cpu = tensor.detach().cpu().contiguous();
            var code = DTypes.FirstOrDefault(d => d.Value.Type == cpu.dtype).Key
                ?? throw new InceptException($"Tensor '{key}' has dtype {cpu.dtype}, which safetensors files here do not store.");
            var data = cpu.bytes.ToArray();
            header[key] = new JsonObject
            {
                ["dtype"] = code,
                ["shape"] = new JsonArray(cpu.shape.Select(d => (JsonNode)d).ToArray()),
                ["data_offsets"] = new JsonArray(offset, offset + data.Length),
            };
            offset += data.Length;
            blobs.Add(data);
        }

        var json = Encoding.UTF8.GetBytes(header.ToJsonString());
        int pad = (8 - json.Length % 8) % 8;
        AtomicFile.Write(path, stream =>
        {
            Span<byte> len = stackalloc byte[8];
            BinaryPrimitives.WriteUInt64LittleEndian(len, (ulong)(json.Length + pad));
            stream.Write(len);
            stream.Write(json);
            for (int i = 0; i < pad; i++) stream.WriteByte((byte)' ');
            foreach (var b in blobs) stream.Write(b);
        });
    }
}
