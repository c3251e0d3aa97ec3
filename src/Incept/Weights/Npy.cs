using System.Buffers.Binary;
using System.Globalization;
using System.Text;
using System.Text.RegularExpressions;
using static TorchSharp.torch;

namespace Incept.Weights;

/// <summary>Reads and writes NumPy <c>.npy</c> arrays (float32, float64, int64; little-endian, C order).</summary>
public static partial class Npy
{
    private static readonly byte[] Magic = [0x93, (byte)'N', (byte)'U', (byte)'M', (byte)'P', (byte)'Y'];

    /// <summary>Reads <paramref name="path"/> into a CPU tensor.</summary>
    public static Tensor Read(string path)
    {
        if (!File.Exists(path)) throw new InceptException($"Array file '{path}' does not exist. Check the path.");
        return Read(File.ReadAllBytes(path), path);
    }

    /// <summary>Reads an .npy image held in memory; <paramref name="name"/> names it in errors.</summary>
    public static Tensor Read(byte[] bytes, string name = "npy data")
    {
        ArgumentNullException.ThrowIfNull(bytes);
        string Bad(string what) => $"'{name}' is not a valid .npy file: {what}.";
        if (bytes.Length < 10 || !bytes.AsSpan(0, 6).SequenceEqual(Magic)) throw new CheckpointFormatException(Bad("the magic string is missing"));
        int major = bytes[6];
        int headerLen, headerStart;
        if (major == 1) { headerLen = BinaryPrimitives.ReadUInt16LittleEndian(bytes.AsSpan(8)); headerStart = 10; }
        else if (major is 2 or 3 && bytes.Length >= 12) { headerLen = checked((int)BinaryPrimitives.ReadUInt32LittleEndian(bytes.AsSpan(8))); headerStart = 12; }
        else throw new CheckpointFormatException(Bad($"format version {major} is not supported"));
        if (headerStart + headerLen > bytes.Length) throw new CheckpointFormatException(Bad("the header is truncated"));
        var header = Encoding.Latin1.GetString(bytes, headerStart, headerLen);
        var descr = DescrRegex().Match(header);
        var fortran = FortranRegex().Match(header);
        var shapeMatch = ShapeRegex().Match(header);
        if (!descr.Success || !fortran.Success || !shapeMatch.Success) throw new CheckpointFormatException(Bad("the header lacks descr, fortran_order or shape"));
        if (fortran.Groups[1].Value == "True") throw new CheckpointFormatException(Bad("Fortran-ordered arrays are not supported; save it in C order (numpy.ascontiguousarray)"));
        var (type, size) = descr.Groups[1].Value switch
        {
            "<f4" => (ScalarType.Float32, 4),
            "<f8" => (ScalarType.Float64, 8),
            "<i8" => (ScalarType.Int64, 8),
            var d => throw new CheckpointFormatException(Bad($"dtype '{d}' is not supported (use float32, float64 or int64, little-endian)")),
        };
        var shape = shapeMatch.Groups[1].Value.Split(',', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries)
            .Select(s => long.Parse(s, CultureInfo.InvariantCulture)).ToArray();
        long numel = shape.Aggregate(1L, (a, d) => checked(a * d));
        int dataStart = headerStart + headerLen;
        if (bytes.Length - dataStart != numel * size)
            throw new CheckpointFormatException(Bad($"the shape [{string.Join(", ", shape)}] needs {numel * size} data bytes but the file has {bytes.Length - dataStart}"));
        var t = empty(shape, type);
        if (numel > 0) t.bytes = bytes.AsSpan(dataStart);
        return t;
    }

    /// <summary>Writes <paramref name="tensor"/> (float32, float64 or int64) to <paramref name="path"/> atomically.</summary>
    public static void Write(string path, Tensor tensor)
    {
        ArgumentNullException.ThrowIfNull(tensor);
        using var cpu = tensor.detach().cpu().contiguous();
        string descr = cpu.dtype switch
        {
            ScalarType.Float32 => "<f4",
            ScalarType.Float64 => "<f8",
            ScalarType.Int64 => "<i8",
            var d => throw new InceptException($"Cannot write a {d} tensor as .npy; convert it to float32, float64 or int64."),
        };
        string shape = cpu.shape.Length == 1 ? $"({cpu.shape[0]},)" : $"({string.Join(", ", cpu.shape)})";
        var dict = $"{{'descr': '{descr}', 'fortran_order': False, 'shape': {shape}, }}";
        int total = 10 + dict.Length + 1;
        int pad = (64 - total % 64) % 64;
        var header = dict + new string(' ', pad) + "\n";
        var data = cpu.bytes.ToArray();
        AtomicFile.Write(path, s =>
        {
            s.Write(Magic);
            s.WriteByte(1);
            s.WriteByte(0);
            Span<byte> len = stackalloc byte[2];
            BinaryPrimitives.WriteUInt16LittleEndian(len, (ushort)header.Length);
            s.Write(len);
            s.Write(Encoding.Latin1.GetBytes(header));
            s.Write(data);
        });
    }

    [GeneratedRegex(@"'descr'\s*:\s*'([^']*)'")]
    private static partial Regex DescrRegex();

    [GeneratedRegex(@"'fortran_order'\s*:\s*(True|False)")]
    private static partial Regex FortranRegex();

    [GeneratedRegex(@"'shape'\s*:\s*\(([^)]*)\)")]
    private static partial Regex ShapeRegex();
}
