using System.Text;
using static TorchSharp.torch;

namespace Incept.Weights;

/// <summary>
/// Reads TorchSharp's own weight format (<c>Module.save</c>, and Python's <c>exportsd.py</c>): a LEB128 entry
/// count, then per entry a length-prefixed UTF-8 key, the element type, the number of dimensions, each
/// dimension (all LEB128) and the raw little-endian data. Everything is validated against the file size.
/// </summary>
public static class TorchSharpDat
{
    /// <summary>Whether <paramref name="path"/> looks like a TorchSharp weight file: its first key decodes as text.</summary>
    public static bool LooksLike(string path)
    {
        try
        {
            using var reader = new BinaryReader(File.OpenRead(path), Encoding.UTF8);
            long count = ReadLeb128(reader);
            if (count <= 0 || count > 1_000_000) return false;
            long keyLength = ReadLeb128(reader);
            if (keyLength <= 0 || keyLength > 4096 || keyLength > reader.BaseStream.Length) return false;
            var key = reader.ReadBytes((int)keyLength);
            return key.All(b => b >= 0x20) && Encoding.UTF8.GetString(key).Length > 0;
        }
        catch (EndOfStreamException)
        {
            return false;
        }
    }

    /// <summary>Reads every tensor of a TorchSharp <c>.dat</c> file.</summary>
    public static Dictionary<string, Tensor> Read(string path)
    {
        ArgumentNullException.ThrowIfNull(path);
        using var stream = File.OpenRead(path);
        using var reader = new BinaryReader(stream, Encoding.UTF8);
        string Bad(string what) => $"'{path}' is not a valid TorchSharp weight file: {what}.";
        var tensors = new Dictionary<string, Tensor>();
        try
        {
            long count = ReadLeb128(reader);
            for (long i = 0; i < count; i++)
            {
                long keyLength = ReadLeb128(reader);
                if (keyLength < 0 || keyLength > stream.Length - stream.Position) throw new CheckpointFormatException(Bad($"entry {i} has a key longer than the file"));
                var key = Encoding.UTF8.GetString(reader.ReadBytes((int)keyLength));
                var type = (ScalarType)ReadLeb128(reader);
                int size = type switch
                {
                    ScalarType.Byte or ScalarType.Int8 or ScalarType.Bool => 1,
                    ScalarType.Int16 or ScalarType.Float16 or ScalarType.BFloat16 => 2,
                    ScalarType.Int32 or ScalarType.Float32 => 4,
                    ScalarType.Int64 or ScalarType.Float64 => 8,
                    _ => throw new CheckpointFormatException(Bad($"entry '{key}' has unsupported element type {(int)type}")),
                };
                long ndim = ReadLeb128(reader);
                if (ndim is < 0 or > 16) throw new CheckpointFormatException(Bad($"entry '{key}' claims {ndim} dimensions"));
                var shape = new long[ndim];
                for (int d = 0; d < ndim; d++) shape[d] = ReadLeb128(reader);
                long bytes = shape.Aggregate(1L, (a, s) => checked(a * s)) * size;
                if (bytes > stream.Length - stream.Position)
                    throw new CheckpointFormatException(Bad($"entry '{key}' needs {bytes} bytes but only {stream.Length - stream.Position} remain (truncated file?)"));
                var t = empty(shape, type);
                if (bytes > 0) t.bytes = reader.ReadBytes((int)bytes);
                tensors[key] = t;
            }
        }
        catch (Exception e) when (e is EndOfStreamException or OverflowException or InvalidDataException)
        {
            foreach (var t in tensors.Values) t.Dispose();
            throw new CheckpointFormatException(Bad("it ends in the middle of an entry"), e);
        }
        catch
        {
            foreach (var t in tensors.Values) t.Dispose();
            throw;
        }

        return tensors;
    }

    private static long ReadLeb128(BinaryReader reader)
    {
        long value = 0;
        for (int shift = 0; shift < 64; shift += 7)
        {
            byte b = reader.ReadByte();
            value |= (long)(b & 0x7f) << shift;
            if (b < 0x80) return value;
        }

        throw new InvalidDataException("LEB128 number longer than 64 bits");
    }
}
