using System.Buffers.Binary;
using System.Globalization;
using System.Numerics;
using System.Text;

namespace Incept.Weights.Pickle;

/// <summary>
/// A global that the unpickler may call through REDUCE, NEWOBJ, INST or OBJ: an allow-listed constructor
/// or rebuild function implemented here in C#. Nothing else is ever called.
/// </summary>
internal sealed class PickleCallable(string name, Func<object?[], object?> call)
{
    /// <summary>The dotted Python name, for messages.</summary>
    public string Name { get; } = name;

    public object? Call(object?[] args) => call(args);

    public override string ToString() => Name;
}

/// <summary>Bad arguments to an allow-listed callable; the reader adds the file name and position.</summary>
internal sealed class PickleDataException : Exception
{
    public PickleDataException(string message) : base(message) { }

    public PickleDataException(string message, Exception inner) : base(message, inner) { }

    public PickleDataException() { }
}

/// <summary>
/// A restricted unpickler for the opcodes of pickle protocols 0–5 that describe data. Globals go through
/// <c>resolveGlobal</c>, which returns an inert value or an allow-listed <see cref="PickleCallable"/> and
/// throws for anything else; persistent ids go through <c>persistentLoad</c>. Python objects become
/// .NET values: None → null, bool, int → long (or <see cref="BigInteger"/> beyond 64 bits), float → double,
/// str → string, bytes → byte[], tuple → object?[], list and set → List&lt;object?&gt;, dict →
/// Dictionary&lt;object, object?&gt; (insertion order kept).
/// </summary>
internal sealed class PickleReader
{
    private const int HighestProtocol = 5;

    private readonly byte[] _data;
    private readonly string _name;
    private readonly Func<string, string, object> _resolveGlobal;
    private readonly Func<object?, object?> _persistentLoad;
    private readonly List<object?> _stack = [];
    private readonly List<int> _marks = [];
    private readonly Dictionary<long, object?> _memo = [];
    private int _pos;
    private int _opStart;

    public PickleReader(byte[] data, string name, Func<string, string, object> resolveGlobal, Func<object?, object?> persistentLoad)
    {
        _data = data;
        _name = name;
        _resolveGlobal = resolveGlobal;
        _persistentLoad = persistentLoad;
    }

    /// <summary>Runs the pickle up to STOP and returns the object it built.</summary>
    public object? Load()
    {
        while (true)
        {
            if (_pos >= _data.Length) throw Damaged("it ends before the STOP opcode (truncated)");
            _opStart = _pos;
            byte op = _data[_pos++];
            switch (op)
            {
                case 0x80: // PROTO
                    int proto = ReadByte();
                    if (proto > HighestProtocol) throw Damaged($"it declares pickle protocol {proto}, newer than the highest known ({HighestProtocol})");
                    break;
                case 0x95: // FRAME: the whole pickle is in memory, so frame boundaries need no handling
                    ReadSpan(8);
                    break;
                case (byte)'.': // STOP
                    return Pop();

                case (byte)'(': _marks.Add(_stack.Count); break; // MARK
                case (byte)'0': Pop(); break; // POP
                case (byte)'1': PopMark(); break; // POP_MARK
                case (byte)'2': Push(Peek()); break; // DUP

                case (byte)'N': Push(null); break; // NONE
                case 0x88: Push(true); break; // NEWTRUE
                case 0x89: Push(false); break; // NEWFALSE
                case (byte)'J': Push((long)BinaryPrimitives.ReadInt32LittleEndian(ReadSpan(4))); break; // BININT
                case (byte)'K': Push((long)ReadByte()); break; // BININT1
                case (byte)'M': Push((long)BinaryPrimitives.ReadUInt16LittleEndian(ReadSpan(2))); break; // BININT2
                case 0x8a: PushLong(ReadByte()); break; // LONG1
                case 0x8b: PushLong(ReadLength(4)); break; // LONG4
                case (byte)'G': Push(BinaryPrimitives.ReadDoubleBigEndian(ReadSpan(8))); break; // BINFLOAT

                case (byte)'X': Push(ReadUtf8(ReadLength(4))); break; // BINUNICODE
                case 0x8c: Push(ReadUtf8(ReadByte())); break; // SHORT_BINUNICODE
                case 0x8d: Push(ReadUtf8(ReadLength(8))); break; // BINUNICODE8
                case (byte)'T': Push(ReadUtf8(ReadLength(4))); break; // BINSTRING (a Python 2 str)
                case (byte)'U': Push(ReadUtf8(ReadByte())); break; // SHORT_BINSTRING
                case (byte)'B': Push(ReadSpan(ReadLength(4)).ToArray()); break; // BINBYTES
                case (byte)'C': Push(ReadSpan(ReadByte()).ToArray()); break; // SHORT_BINBYTES
                case 0x8e: Push(ReadSpan(ReadLength(8)).ToArray()); break; // BINBYTES8
                case 0x96: Push(ReadSpan(ReadLength(8)).ToArray()); break; // BYTEARRAY8

                case (byte)')': Push(Array.Empty<object?>()); break; // EMPTY_TUPLE
                case (byte)'t': Push(PopMark().ToArray()); break; // TUPLE
                case 0x85: Push(PopTuple(1)); break; // TUPLE1
                case 0x86: Push(PopTuple(2)); break; // TUPLE2
                case 0x87: Push(PopTuple(3)); break; // TUPLE3

                case (byte)']': Push(new List<object?>()); break; // EMPTY_LIST
                case (byte)'l': Push(PopMark()); break; // LIST
                case (byte)'a': // APPEND
                {
                    var item = Pop();
                    AsList(Peek(), "APPEND").Add(item);
                    break;
                }
                case (byte)'e': // APPENDS
                {
                    var items = PopMark();
                    AsList(Peek(), "APPENDS").AddRange(items);
                    break;
                }

                case (byte)'}': Push(new Dictionary<object, object?>()); break; // EMPTY_DICT
                case (byte)'d': // DICT
                {
                    var items = PopMark();
                    var dict = new Dictionary<object, object?>();
                    SetItems(dict, items);
                    Push(dict);
                    break;
                }
                case (byte)'s': // SETITEM
                {
                    var value = Pop();
                    var key = Pop();
                    SetItems(Peek(), [key, value]);
                    break;
                }
                case (byte)'u': // SETITEMS
                {
                    var items = PopMark();
                    SetItems(Peek(), items);
                    break;
                }

                case 0x8f: Push(new List<object?>()); break; // EMPTY_SET (kept as a list)
                case 0x90: // ADDITEMS
                {
                    var items = PopMark();
                    AsList(Peek(), "ADDITEMS").AddRange(items);
                    break;
                }
                case 0x91: Push(PopMark()); break; // FROZENSET (kept as a list)

                case (byte)'q': Memoize(ReadByte()); break; // BINPUT
                case (byte)'r': Memoize(BinaryPrimitives.ReadUInt32LittleEndian(ReadSpan(4))); break; // LONG_BINPUT
                case 0x94: Memoize(_memo.Count); break; // MEMOIZE
                case (byte)'p': Memoize(ReadDecimalLine()); break; // PUT
                case (byte)'h': Push(Recall(ReadByte())); break; // BINGET
                case (byte)'j': Push(Recall(BinaryPrimitives.ReadUInt32LittleEndian(ReadSpan(4)))); break; // LONG_BINGET
                case (byte)'g': Push(Recall(ReadDecimalLine())); break; // GET

                case (byte)'c': // GLOBAL
                {
                    var module = ReadLine();
                    var name = ReadLine();
                    Push(_resolveGlobal(module, name));
                    break;
                }
                case 0x93: // STACK_GLOBAL
                {
                    var name = Pop() as string ?? throw Damaged("STACK_GLOBAL's name is not a string");
                    var module = Pop() as string ?? throw Damaged("STACK_GLOBAL's module is not a string");
                    Push(_resolveGlobal(module, name));
                    break;
                }
                case (byte)'i': // INST: a global called with the items above the mark
                {
                    var callable = _resolveGlobal(ReadLine(), ReadLine());
                    Push(Call(callable, PopMark().ToArray()));
                    break;
                }
                case (byte)'o': // OBJ: the first item above the mark called with the rest
                {
                    var items = PopMark();
                    if (items.Count == 0) throw Damaged("OBJ has nothing to call");
                    Push(Call(items[0], items.Skip(1).ToArray()));
                    break;
                }
                case (byte)'R': // REDUCE
                {
                    var args = Pop() as object?[] ?? throw Damaged("REDUCE's arguments are not a tuple");
                    Push(Call(Pop(), args));
                    break;
                }
                case 0x81: // NEWOBJ
                {
                    var args = Pop() as object?[] ?? throw Damaged("NEWOBJ's arguments are not a tuple");
                    Push(Call(Pop(), args));
                    break;
                }
                case 0x92: // NEWOBJ_EX
                {
                    var kwargs = Pop();
                    var args = Pop() as object?[] ?? throw Damaged("NEWOBJ_EX's arguments are not a tuple");
                    if (kwargs is not Dictionary<object, object?> { Count: 0 }) throw Damaged("NEWOBJ_EX passes keyword arguments, which no allowed global takes");
                    Push(Call(Pop(), args));
                    break;
                }
                case (byte)'b': // BUILD
                {
                    var state = Pop();
                    Build(Peek(), state);
                    break;
                }

                case (byte)'Q': Push(PersistentLoad(Pop())); break; // BINPERSID
                case (byte)'P': Push(PersistentLoad(ReadLine())); break; // PERSID

                default:
                    throw new CheckpointFormatException(
                        $"'{_name}' has a data.pkl that uses pickle opcode 0x{op:x2} ({Describe(op)}) at byte {_opStart}, which torch.save does not write; re-save the checkpoint with torch.save.");
            }
        }
    }

    private static string Describe(byte op) => op switch
    {
        (byte)'I' => "INT",
        (byte)'L' => "LONG",
        (byte)'F' => "FLOAT",
        (byte)'S' => "STRING",
        (byte)'V' => "UNICODE",
        0x82 or 0x83 or 0x84 => "EXT: a copyreg extension code",
        0x97 => "NEXT_BUFFER: an out-of-band buffer",
        0x98 => "READONLY_BUFFER",
        _ => "not a known pickle opcode",
    };

    private CheckpointFormatException Damaged(string what) =>
        new($"'{_name}' has a damaged data.pkl: {what} at byte {_opStart}; the file is corrupt or was not written by torch.save.");

    private object? Call(object? callable, object?[] args)
    {
        if (callable is not PickleCallable f)
            throw Damaged($"it calls {(callable is null ? "None" : callable.ToString())}, which cannot be called");
        try
        {
            return f.Call(args);
        }
        catch (PickleDataException e)
        {
            throw Damaged($"{f.Name} {e.Message}");
        }
    }

    private object? PersistentLoad(object? pid)
    {
        try
        {
            return _persistentLoad(pid);
        }
        catch (PickleDataException e)
        {
            throw Damaged(e.Message);
        }
    }

    private void Build(object? target, object? state)
    {
        // An OrderedDict carries its attributes (a state dict's _metadata) as BUILD state: not weights, dropped.
        if (target is Dictionary<object, object?>) return;
        if (target is PythonObject obj && state is Dictionary<object, object?> attributes)
        {
            foreach (var (key, value) in attributes) obj.Attributes[key] = value;
            return;
        }

        throw Damaged($"BUILD sets the state of {Kind(target)}, which Incept does not restore");
    }

    private void SetItems(object? target, List<object?> items)
    {
        if (target is not Dictionary<object, object?> dict) throw Damaged($"it sets items on {Kind(target)}, not a dict");
        if (items.Count % 2 != 0) throw Damaged("a dict has a key without a value");
        for (int i = 0; i < items.Count; i += 2)
        {
            var key = items[i] switch
            {
                null => throw Damaged("a dict key is None, which Incept does not support"),
                PendingTensor => throw Damaged("a tensor is used as a dict key, which Incept does not support"),
                var k => k,
            };
            dict[key] = items[i + 1];
        }
    }

    private List<object?> AsList(object? target, string op) =>
        target as List<object?> ?? throw Damaged($"{op} adds to {Kind(target)}, not a list or set");

    private static string Kind(object? o) => o switch
    {
        null => "None",
        object?[] => "a tuple",
        PickleCallable c => c.Name,
        _ => $"a {o.GetType().Name}",
    };

    private void Push(object? o) => _stack.Add(o);

    /// <summary>Where the items above the innermost MARK begin; as in Python, opcodes cannot reach below it.</summary>
    private int FrameStart => _marks.Count > 0 ? _marks[^1] : 0;

    private object? Peek() => _stack.Count > FrameStart ? _stack[^1] : throw Damaged("the stack is empty");

    private object? Pop()
    {
        if (_stack.Count <= FrameStart) throw Damaged("the stack is empty");
        var o = _stack[^1];
        _stack.RemoveAt(_stack.Count - 1);
        return o;
    }

    private object?[] PopTuple(int n)
    {
        var items = new object?[n];
        for (int i = n - 1; i >= 0; i--) items[i] = Pop();
        return items;
    }

    private List<object?> PopMark()
    {
        if (_marks.Count == 0) throw Damaged("an opcode needs a MARK that is not there");
        int start = _marks[^1];
        _marks.RemoveAt(_marks.Count - 1);
        var items = _stack.GetRange(start, _stack.Count - start);
        _stack.RemoveRange(start, _stack.Count - start);
        return items;
    }

    private void Memoize(long index)
    {
        if (index < 0) throw Damaged("a memo index is negative");
        _memo[index] = Peek();
    }

    private object? Recall(long index) =>
        _memo.TryGetValue(index, out var o) ? o : throw Damaged($"it recalls memo entry {index}, which was never stored");

    private byte ReadByte() => ReadSpan(1)[0];

    private ReadOnlySpan<byte> ReadSpan(long n)
    {
        if (n < 0 || n > _data.Length - _pos) throw Damaged("it ends in the middle of an opcode (truncated)");
        var span = _data.AsSpan(_pos, (int)n);
        _pos += (int)n;
        return span;
    }

    /// <summary>Reads a little-endian length of <paramref name="width"/> bytes (4 or 8) that must fit in what is left.</summary>
    private long ReadLength(int width)
    {
        long n = width == 4
            ? BinaryPrimitives.ReadInt32LittleEndian(ReadSpan(4))
            : BinaryPrimitives.ReadInt64LittleEndian(ReadSpan(8));
        if (n < 0 || n > _data.Length - _pos) throw Damaged($"a length of {n} bytes runs past the end of the pickle");
        return n;
    }

    private string ReadUtf8(long n) => Encoding.UTF8.GetString(ReadSpan(n));

    /// <summary>Pushes a little-endian two's-complement integer of <paramref name="n"/> bytes: a long when it fits.</summary>
    private void PushLong(long n)
    {
        var value = new BigInteger(ReadSpan(n), isUnsigned: false, isBigEndian: false);
        if (value >= long.MinValue && value <= long.MaxValue) Push((long)value);
        else Push(value);
    }

    private string ReadLine()
    {
        int end = Array.IndexOf(_data, (byte)'\n', _pos);
        if (end < 0) throw Damaged("a text argument has no end of line (truncated)");
        var s = Encoding.UTF8.GetString(_data, _pos, end - _pos);
        _pos = end + 1;
        return s;
    }

    private long ReadDecimalLine()
    {
        var line = ReadLine();
        return long.TryParse(line, NumberStyles.Integer, CultureInfo.InvariantCulture, out var v) ? v : throw Damaged($"'{line}' is not a memo index");
    }
}
