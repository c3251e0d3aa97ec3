using System.Buffers.Binary;
using System.Globalization;

namespace Incept.Runtime;

/// <summary>
/// Where a loaded 64-bit little-endian ELF shared library keeps the addresses of the functions it imports: the global
/// offset table's slots that its dynamic relocations (<c>R_X86_64_JUMP_SLOT</c> for calls through the PLT,
/// <c>R_X86_64_GLOB_DAT</c> for taken addresses) name. Rewriting a slot redirects that library's own calls and nothing
/// else in the process.
/// </summary>
internal static class ElfImportSlots
{
    private const uint SectionRela = 4;
    private const uint SectionDynSym = 11;
    private const uint RelocationGlobalData = 6;
    private const uint RelocationJumpSlot = 7;
    private const uint ProgramLoad = 1;

    /// <summary>
    /// The slots of <paramref name="symbols"/> in the library file <paramref name="path"/>, as offsets from the
    /// library's load address, with the symbol each one imports; empty when the file is not a 64-bit little-endian ELF
    /// file for x86-64.
    /// </summary>
    public static IReadOnlyList<(string Symbol, long Offset)> Find(string path, IReadOnlySet<string> symbols)
    {
        ArgumentNullException.ThrowIfNull(symbols);
        byte[] file = File.ReadAllBytes(path);
        var found = new List<(string, long)>();
        if (file.Length < 64 || file[0] != 0x7F || file[1] != (byte)'E' || file[2] != (byte)'L' || file[3] != (byte)'F'
            || file[4] != 2 || file[5] != 1 || U16(file, 18) != 62)
            return found;

        long sectionTable = (long)U64(file, 0x28);
        int sectionSize = U16(file, 0x3A), sections = U16(file, 0x3C);
        if (sectionTable <= 0 || sectionSize < 64 || sectionTable + ((long)sectionSize * sections) > file.Length) return found;
        long Header(int i) => sectionTable + ((long)i * sectionSize);

        for (int s = 0; s < sections; s++)
        {
            long header = Header(s);
            if (U32(file, header + 4) != SectionRela) continue;
            int symbolSection = (int)U32(file, header + 0x28);
            if (symbolSection <= 0 || symbolSection >= sections || U32(file, Header(symbolSection) + 4) != SectionDynSym) continue;
            long symbolTable = (long)U64(file, Header(symbolSection) + 0x18);
            int stringSection = (int)U32(file, Header(symbolSection) + 0x28);
            if (stringSection <= 0 || stringSection >= sections) continue;
            long strings = (long)U64(file, Header(stringSection) + 0x18);
            long start = (long)U64(file, header + 0x18), size = (long)U64(file, header + 0x20);
            if (start < 0 || start + size > file.Length) continue;
            for (long r = start; r + 24 <= start + size; r += 24)
            {
                ulong info = U64(file, r + 8);
                uint type = (uint)info, symbol = (uint)(info >> 32);
                if (type is not (RelocationJumpSlot or RelocationGlobalData) || symbol == 0) continue;
                long nameAt = strings + U32(file, symbolTable + (symbol * 24L));
                string name = CString(file, nameAt);
                if (symbols.Contains(name)) found.Add((name, (long)U64(file, r)));
            }
        }

        return found;
    }

    /// <summary>
    /// The virtual address of the library's first loadable segment (its program headers' first <c>PT_LOAD</c>, rounded
    /// down to a page): subtracted from where that segment is mapped, it gives the load bias the slots' offsets add to.
    /// </summary>
    public static long FirstLoadAddress(string path)
    {
        using var stream = File.OpenRead(path);
        var head = new byte[64];
        stream.ReadExactly(head);
        long table = (long)U64(head, 0x20);
        int entrySize = U16(head, 0x36), entries = U16(head, 0x38);
        var headers = new byte[entrySize * entries];
        stream.Position = table;
        stream.ReadExactly(headers);
        for (int i = 0; i < entries; i++)
        {
            long at = (long)i * entrySize;
            if (U32(headers, at) == ProgramLoad) return (long)(U64(headers, at + 0x10) & ~0xFFFUL) - (long)(U64(headers, at + 8) & ~0xFFFUL);
        }

        return 0;
    }

    /// <summary>One mapping of <c>/proc/self/maps</c>: its address range, permissions, file offset and path.</summary>
    public readonly record struct Mapping(ulong Start, ulong End, string Permissions, ulong Offset, string Path);

    /// <summary>The process's mappings, as <c>/proc/self/maps</c> lists them.</summary>
    public static IReadOnlyList<Mapping> Mappings()
    {
        var list = new List<Mapping>();
        foreach (string line in File.ReadLines("/proc/self/maps"))
        {
            var parts = line.Split(' ', 6, StringSplitOptions.RemoveEmptyEntries);
            if (parts.Length < 5) continue;
            var range = parts[0].Split('-');
            list.Add(new Mapping(ulong.Parse(range[0], NumberStyles.HexNumber, CultureInfo.InvariantCulture),
                ulong.Parse(range[1], NumberStyles.HexNumber, CultureInfo.InvariantCulture), parts[1],
                ulong.Parse(parts[2], NumberStyles.HexNumber, CultureInfo.InvariantCulture), parts.Length == 6 ? parts[5].Trim() : ""));
        }

        return list;
    }

    private static ushort U16(byte[] b, long at) => BinaryPrimitives.ReadUInt16LittleEndian(b.AsSpan((int)at, 2));

    private static uint U32(byte[] b, long at) => BinaryPrimitives.ReadUInt32LittleEndian(b.AsSpan((int)at, 4));

    private static ulong U64(byte[] b, long at) => BinaryPrimitives.ReadUInt64LittleEndian(b.AsSpan((int)at, 8));

    private static string CString(byte[] b, long at)
    {
        int end = Array.IndexOf(b, (byte)0, (int)at);
        return System.Text.Encoding.ASCII.GetString(b, (int)at, (end < 0 ? b.Length : end) - (int)at);
    }
}
