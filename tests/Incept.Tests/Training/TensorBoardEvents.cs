using System.Buffers.Binary;
using System.Text;

namespace Incept.Tests.Training;

/// <summary>
/// Reads the scalars of a TensorBoard event file, checking the TFRecord framing (masked CRC-32C of the
/// length and of each serialised Event), so tests can check what a training run logged.
/// </summary>
internal static class TensorBoardEvents
{
    /// <summary>Reads back the (tag, step, value) scalars of an event file, checking every CRC (for tests and tools).</summary>
    public static IReadOnlyList<(string Tag, long Step, float Value)> ReadScalars(string path)
    {
        var data = File.ReadAllBytes(path);
        var result = new List<(string, long, float)>();
        int at = 0;
        while (at < data.Length)
        {
            if (data.Length - at < 12) throw new InvalidDataException("truncated record header");
            ulong length = BinaryPrimitives.ReadUInt64LittleEndian(data.AsSpan(at));
            if (BinaryPrimitives.ReadUInt32LittleEndian(data.AsSpan(at + 8)) != Masked(Crc32C.Compute(data.AsSpan(at, 8))))
                throw new InvalidDataException("bad length CRC");
            var payload = data.AsSpan(at + 12, (int)length);
            if (BinaryPrimitives.ReadUInt32LittleEndian(data.AsSpan(at + 12 + (int)length)) != Masked(Crc32C.Compute(payload)))
                throw new InvalidDataException("bad data CRC");
            ParseEvent(payload, result);
            at += 12 + (int)length + 4;
        }

        return result;
    }

    private static uint Masked(uint crc) => unchecked(((crc >> 15) | (crc << 17)) + 0xa282ead8u);

    private static ulong ReadVarint(ReadOnlySpan<byte> s, ref int at)
    {
        ulong v = 0;
        for (int shift = 0; ; shift += 7)
        {
            byte b = s[at++];
            v |= (ulong)(b & 0x7f) << shift;
            if (b < 0x80) return v;
        }
    }

    private static void ParseEvent(ReadOnlySpan<byte> e, List<(string, long, float)> result)
    {
        long step = 0;
        int at = 0;
        var values = new List<(string, float)>();
        while (at < e.Length)
        {
            ulong key = ReadVarint(e, ref at);
            switch (key)
            {
                case 0x09: at += 8; break;
                case 0x10: step = (long)ReadVarint(e, ref at); break;
                case 0x1a:
                {
                    int len = (int)ReadVarint(e, ref at);
                    at += len;
                    break;
                }

                case 0x2a:
                {
                    int len = (int)ReadVarint(e, ref at);
                    var summary = e.Slice(at, len);
                    at += len;
                    int s = 0;
                    while (s < summary.Length)
                    {
                        ReadVarint(summary, ref s); // value = 1
                        int vlen = (int)ReadVarint(summary, ref s);
                        var value = summary.Slice(s, vlen);
                        s += vlen;
                        string tag = "";
                        float simple = 0;
                        int p = 0;
                        while (p < value.Length)
                        {
                            ulong k = ReadVarint(value, ref p);
                            if (k == 0x0a)
                            {
                                int tlen = (int)ReadVarint(value, ref p);
                                tag = Encoding.UTF8.GetString(value.Slice(p, tlen));
                                p += tlen;
                            }
                            else if (k == 0x15)
                            {
                                simple = BinaryPrimitives.ReadSingleLittleEndian(value[p..]);
                                p += 4;
                            }
                            else throw new InvalidDataException($"unexpected field {k} in Summary.Value");
                        }

                        values.Add((tag, simple));
                    }

                    break;
                }

                default: throw new InvalidDataException($"unexpected field {key} in Event");
            }
        }

        foreach (var (tag, v) in values) result.Add((tag, step, v));
    }
}

/// <summary>CRC-32C (Castagnoli), as TFRecord framing uses.</summary>
internal static class Crc32C
{
    private static readonly uint[] Table = BuildTable();

    public static uint Compute(ReadOnlySpan<byte> data)
    {
        uint crc = 0xFFFFFFFFu;
        foreach (byte b in data) crc = Table[(crc ^ b) & 0xFF] ^ (crc >> 8);
        return ~crc;
    }

    private static uint[] BuildTable()
    {
        var table = new uint[256];
        for (uint i = 0; i < 256; i++)
        {
            uint c = i;
            for (int k = 0; k < 8; k++) c = (c & 1) != 0 ? 0x82F63B78u ^ (c >> 1) : c >> 1;
            table[i] = c;
        }

        return table;
    }
}
