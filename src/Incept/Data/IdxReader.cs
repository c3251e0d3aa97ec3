using System.Buffers.Binary;
using System.IO.Compression;

namespace Incept.Data;

/// <summary>Element type of an IDX file, as its magic number's third byte encodes it.</summary>
#pragma warning disable CA1028, CA1720 // The values are the format's byte type codes; the names say which numeric type each is.
public enum IdxDataType : byte
{
    /// <summary>Unsigned 8-bit integer (code 0x08), as in MNIST and Fashion-MNIST.</summary>
    UInt8 = 0x08,

    /// <summary>Signed 8-bit integer (code 0x09).</summary>
    Int8 = 0x09,

    /// <summary>Big-endian signed 16-bit integer (code 0x0B).</summary>
    Int16 = 0x0B,

    /// <summary>Big-endian signed 32-bit integer (code 0x0C).</summary>
    Int32 = 0x0C,

    /// <summary>Big-endian IEEE 754 single (code 0x0D).</summary>
    Float32 = 0x0D,

    /// <summary>Big-endian IEEE 754 double (code 0x0E).</summary>
    Float64 = 0x0E,
}
#pragma warning restore CA1028, CA1720

/// <summary>The contents of one IDX file: element type, dimensions and the raw big-endian values.</summary>
public sealed class IdxArray
{
    private readonly byte[] _data;
    private readonly int[] _shape;

    internal IdxArray(IdxDataType dataType, int[] shape, byte[] data)
    {
        DataType = dataType;
        _shape = shape;
        _data = data;
    }

    /// <summary>The element type.</summary>
    public IdxDataType DataType { get; }

    /// <summary>The dimensions, outermost first (for images: count, rows, columns).</summary>
    public IReadOnlyList<int> Shape => _shape;

    /// <summary>Number of elements: the product of <see cref="Shape"/>.</summary>
    public long Length => _data.Length / IdxReader.ElementSize(DataType);

    /// <summary>The values as stored (big-endian for multi-byte types); the array shares this memory.</summary>
    public ReadOnlySpan<byte> RawData => _data;

    /// <summary>The values of a <see cref="IdxDataType.UInt8"/> file, without copying.</summary>
    /// <exception cref="InvalidOperationException">The file holds another type.</exception>
    public byte[] AsBytes() => DataType == IdxDataType.UInt8
        ? _data
        : throw new InvalidOperationException($"The IDX data are {DataType}, not UInt8; use {nameof(ToSingles)}.");

    /// <summary>The values converted to float32, whatever the stored type.</summary>
    public float[] ToSingles()
    {
        int size = IdxReader.ElementSize(DataType);
        var result = new float[_data.Length / size];
        var span = _data.AsSpan();
        for (int i = 0; i < result.Length; i++)
        {
            var e = span.Slice(i * size, size);
            result[i] = DataType switch
            {
                IdxDataType.UInt8 => e[0],
                IdxDataType.Int8 => (sbyte)e[0],
                IdxDataType.Int16 => BinaryPrimitives.ReadInt16BigEndian(e),
                IdxDataType.Int32 => BinaryPrimitives.ReadInt32BigEndian(e),
                IdxDataType.Float32 => BinaryPrimitives.ReadSingleBigEndian(e),
                _ => (float)BinaryPrimitives.ReadDoubleBigEndian(e),
            };
        }
        return result;
    }
}

/// <summary>
/// Reads IDX files (the MNIST format: a 4-byte magic number 0x0000TTNN giving the element type TT and the
/// number of dimensions NN, NN big-endian 32-bit sizes, then the values), plain or gzip-compressed.
/// </summary>
public static class IdxReader
{
    private const int MaxDimensions = 16;

    /// <summary>
    /// Reads the IDX file at <paramref name="path"/>; gzip compression is detected from the content, not the name.
    /// </summary>
    /// <exception cref="DatasetNotFoundException">The file does not exist.</exception>
    /// <exception cref="DataFormatException">The file is not IDX, or is corrupt, truncated or has trailing bytes.</exception>
    public static IdxArray Read(string path)
    {
        ArgumentNullException.ThrowIfNull(path);
        if (!File.Exists(path))
            throw new DatasetNotFoundException($"IDX file '{path}' does not exist; check the path.");
        using var file = File.OpenRead(path);
        return Read(file, path);
    }

    /// <summary>
    /// Reads an IDX file from <paramref name="stream"/>, plain or gzip-compressed; <paramref name="sourceName"/>
    /// names it in error messages.
    /// </summary>
    /// <exception cref="DataFormatException">The content is not IDX, or is corrupt, truncated or has trailing bytes.</exception>
    public static IdxArray Read(Stream stream, string sourceName)
    {
        ArgumentNullException.ThrowIfNull(stream);
        ArgumentNullException.ThrowIfNull(sourceName);
        if (!stream.CanSeek)
        {
            var copy = new MemoryStream();
            stream.CopyTo(copy);
            copy.Position = 0;
            stream = copy;
        }
        long start = stream.Position;
        Span<byte> peek = stackalloc byte[2];
        int peeked = stream.ReadAtLeast(peek, 2, throwOnEndOfStream: false);
        stream.Position = start;
        bool gzip = peeked == 2 && peek[0] == 0x1F && peek[1] == 0x8B;
        try
        {
            if (!gzip) return ReadPlain(stream, sourceName, compressed: false);
            using var inflated = new GZipStream(stream, CompressionMode.Decompress, leaveOpen: true);
            return ReadPlain(inflated, sourceName, compressed: true);
        }
        catch (InvalidDataException e)
        {
            throw new DataFormatException(sourceName, $"'{sourceName}' is a corrupt gzip file ({e.Message}); download or reinstall it.", e);
        }
    }

    internal static int ElementSize(IdxDataType type) => type switch
    {
        IdxDataType.UInt8 or IdxDataType.Int8 => 1,
        IdxDataType.Int16 => 2,
        IdxDataType.Int32 or IdxDataType.Float32 => 4,
        _ => 8,
    };

    private static IdxArray ReadPlain(Stream stream, string source, bool compressed)
    {
        string what = compressed ? "after decompression, it" : "it";
        Span<byte> magic = stackalloc byte[4];
        int got = stream.ReadAtLeast(magic, 4, throwOnEndOfStream: false);
        if (got < 4)
            throw new DataFormatException(source, $"'{source}' is not an IDX file: {what} holds {got} bytes, fewer than the 4-byte magic number; download or reinstall it.");
        if (magic[0] != 0 || magic[1] != 0)
            throw new DataFormatException(source, $"'{source}' is not an IDX file: {what} starts with 0x{Convert.ToHexString(magic)}, not with two zero bytes; pass an IDX file such as t10k-images-idx3-ubyte.gz.");
        var type = (IdxDataType)magic[2];
        if (!Enum.IsDefined(type))
            throw new DataFormatException(source, $"'{source}' has an unknown IDX element type 0x{magic[2]:X2} (known: 0x08, 0x09, 0x0B, 0x0C, 0x0D, 0x0E); the file is corrupt or not IDX.");
        int rank = magic[3];
        if (rank is 0 or > MaxDimensions)
            throw new DataFormatException(source, $"'{source}' declares {rank} dimensions; an IDX file has 1 to {MaxDimensions}, so the file is corrupt or not IDX.");

        var header = new byte[4 * rank];
        got = stream.ReadAtLeast(header, header.Length, throwOnEndOfStream: false);
        if (got < header.Length)
            throw new DataFormatException(source, $"'{source}' is truncated: its header declares {rank} dimensions but ends after {got / 4}; download or reinstall it.");
        var shape = new int[rank];
        long count = 1;
        for (int d = 0; d < rank; d++)
        {
            int size = BinaryPrimitives.ReadInt32BigEndian(header.AsSpan(4 * d));
            if (size < 0)
                throw new DataFormatException(source, $"'{source}' declares a negative size {size} for dimension {d}; the file is corrupt.");
            shape[d] = size;
            count *= size;
            if (count * ElementSize(type) > Array.MaxLength)
                throw new DataFormatException(source, $"'{source}' declares {string.Join(" x ", shape.Take(d + 1))} {type} values, more than one array can hold; the file is corrupt or too large to load at once.");
        }

        long bytes = count * ElementSize(type);
        var data = new byte[bytes];
        got = stream.ReadAtLeast(data, data.Length, throwOnEndOfStream: false);
        if (got < data.Length)
            throw new DataFormatException(source, $"'{source}' is truncated: its header declares {string.Join(" x ", shape)} {type} values ({bytes} bytes) but only {got} bytes follow; download or reinstall it.");
        Span<byte> extra = stackalloc byte[1];
        if (stream.Read(extra) != 0)
            throw new DataFormatException(source, $"'{source}' has bytes after the {string.Join(" x ", shape)} {type} values its header declares; the file is corrupt or not IDX.");
        return new IdxArray(type, shape, data);
    }
}
