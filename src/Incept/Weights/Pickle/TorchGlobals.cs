using static TorchSharp.torch;

namespace Incept.Weights.Pickle;

/// <summary>A <c>torch.*Storage</c> class named in a persistent id: the element type of a storage record.</summary>
internal sealed record StorageType(string Name, ScalarType DType, int ElementSize)
{
    public override string ToString() => $"torch.{Name}";
}

/// <summary>A tensor class (<c>torch.Tensor</c>, <c>torch.nn.Parameter</c>) named by <c>_rebuild_from_type_v2</c>.</summary>
internal sealed record TensorClass(string Name)
{
    public override string ToString() => Name;
}

/// <summary>One storage record of the archive, as a persistent id describes it; read only after the pickle is validated.</summary>
internal sealed record StorageRef(string Key, StorageType Type, long Numel, string RecordName);

/// <summary>A tensor view of a storage, as <c>_rebuild_tensor_v2</c> describes it, before any data is read.</summary>
internal sealed record PendingTensor(StorageRef Storage, long Offset, long[] Size, long[] Stride)
{
    public long Numel => Size.Aggregate(1L, (a, d) => checked(a * d));

    /// <summary>True when the view is the whole storage in C order, so the storage can become the tensor without a copy.</summary>
    public bool IsWholeStorage
    {
        get
        {
            if (Offset != 0 || Numel != Storage.Numel) return false;
            long expected = 1;
            for (int i = Size.Length - 1; i >= 0; i--)
            {
                if (Size[i] != 1 && Stride[i] != expected) return false;
                expected *= Size[i];
            }

            return true;
        }
    }
}

/// <summary>
/// An instance of an allow-listed plain Python class (<c>argparse.Namespace</c>): an inert bag of attributes that
/// training scripts save beside the weights. Its attributes are kept but never interpreted as weights.
/// </summary>
internal sealed class PythonObject(string typeName)
{
    public string TypeName { get; } = typeName;

    public Dictionary<object, object?> Attributes { get; } = [];

    public override string ToString() => TypeName;
}

/// <summary>
/// The allow-list of Python globals a PyTorch checkpoint may name. Each resolves to an inert value or to a
/// C# function that builds data; every other global is refused before anything else happens.
/// </summary>
internal static class TorchGlobals
{
    private static readonly Dictionary<string, StorageType> Storages = new[]
    {
        new StorageType("FloatStorage", ScalarType.Float32, 4), new StorageType("DoubleStorage", ScalarType.Float64, 8),
        new StorageType("HalfStorage", ScalarType.Float16, 2), new StorageType("BFloat16Storage", ScalarType.BFloat16, 2),
        new StorageType("LongStorage", ScalarType.Int64, 8), new StorageType("IntStorage", ScalarType.Int32, 4),
        new StorageType("ShortStorage", ScalarType.Int16, 2), new StorageType("CharStorage", ScalarType.Int8, 1),
        new StorageType("ByteStorage", ScalarType.Byte, 1), new StorageType("BoolStorage", ScalarType.Bool, 1),
        new StorageType("ComplexFloatStorage", ScalarType.ComplexFloat32, 8), new StorageType("ComplexDoubleStorage", ScalarType.ComplexFloat64, 16),
    }.ToDictionary(s => s.Name);

    private static readonly Dictionary<string, ScalarType> DTypes = new()
    {
        ["float32"] = ScalarType.Float32, ["float"] = ScalarType.Float32, ["float64"] = ScalarType.Float64, ["double"] = ScalarType.Float64,
        ["float16"] = ScalarType.Float16, ["half"] = ScalarType.Float16, ["bfloat16"] = ScalarType.BFloat16,
        ["int64"] = ScalarType.Int64, ["long"] = ScalarType.Int64, ["int32"] = ScalarType.Int32, ["int"] = ScalarType.Int32,
        ["int16"] = ScalarType.Int16, ["short"] = ScalarType.Int16, ["int8"] = ScalarType.Int8, ["uint8"] = ScalarType.Byte,
        ["bool"] = ScalarType.Bool, ["complex64"] = ScalarType.ComplexFloat32, ["complex128"] = ScalarType.ComplexFloat64,
    };

    private static readonly PickleCallable OrderedDict = new("collections.OrderedDict", NewOrderedDict);
    private static readonly PickleCallable RebuildTensorV2 = new("torch._utils._rebuild_tensor_v2", args => RebuildTensor(args, 6, 7));
    private static readonly PickleCallable RebuildTensorV1 = new("torch._utils._rebuild_tensor", args => RebuildTensor(args, 4, 4));
    private static readonly PickleCallable RebuildParameter = new("torch._utils._rebuild_parameter", args => Parameter(args, 3));
    private static readonly PickleCallable RebuildParameterWithState = new("torch._utils._rebuild_parameter_with_state", args => Parameter(args, 4));
    private static readonly PickleCallable RebuildFromType = new("torch._tensor._rebuild_from_type_v2", FromType);
    private static readonly PickleCallable Device = new("torch.device", NewDevice);
    private static readonly PickleCallable Size = new("torch.Size", NewSize);
    private static readonly PickleCallable Namespace = new("argparse.Namespace", NewNamespace);

    /// <summary>
    /// Resolves <paramref name="module"/>.<paramref name="name"/> or throws <see cref="CheckpointFormatException"/>
    /// naming the refused global; <paramref name="file"/> names the checkpoint in the message.
    /// </summary>
    public static object Resolve(string module, string name, string file)
    {
        object? resolved = (module, name) switch
        {
            ("collections", "OrderedDict") => OrderedDict,
            ("torch._utils", "_rebuild_tensor_v2") => RebuildTensorV2,
            ("torch._utils", "_rebuild_tensor") => RebuildTensorV1,
            ("torch._utils", "_rebuild_parameter") => RebuildParameter,
            ("torch._utils", "_rebuild_parameter_with_state") => RebuildParameterWithState,
            ("torch._tensor", "_rebuild_from_type_v2") => RebuildFromType,
            ("torch", "device") => Device,
            ("torch", "Size") => Size,
            ("argparse", "Namespace") => Namespace,
            ("torch", "Tensor") => new TensorClass("torch.Tensor"),
            ("torch.nn.parameter", "Parameter") => new TensorClass("torch.nn.parameter.Parameter"),
            ("torch", _) when Storages.TryGetValue(name, out var storage) => storage,
            ("torch", _) when DTypes.TryGetValue(name, out var dtype) => dtype,
            _ => null,
        };
        return resolved ?? throw new CheckpointFormatException(
            $"'{file}' asks to call {module}.{name} while loading; Incept loads only tensors and refuses to run code from a checkpoint.");
    }

    private static Dictionary<object, object?> NewOrderedDict(object?[] args)
    {
        var dict = new Dictionary<object, object?>();
        if (args.Length == 0) return dict;
        if (args.Length > 1 || args[0] is not (List<object?> or object?[])) throw new PickleDataException("takes no arguments or one list of pairs");
        foreach (var item in (IEnumerable<object?>)args[0]!)
        {
            if (item is not object?[] { Length: 2 } pair || pair[0] is null) throw new PickleDataException("was given an item that is not a (key, value) pair");
            dict[pair[0]!] = pair[1];
        }

        return dict;
    }

    /// <summary>
    /// <c>_rebuild_tensor_v2(storage, storage_offset, size, stride, requires_grad, backward_hooks[, metadata])</c>
    /// and the older <c>_rebuild_tensor(storage, storage_offset, size, stride)</c>. Gradients and hooks do not
    /// survive loading; the view must lie inside its storage.
    /// </summary>
    private static PendingTensor RebuildTensor(object?[] args, int minArgs, int maxArgs)
    {
        if (args.Length < minArgs || args.Length > maxArgs)
            throw new PickleDataException($"was given {args.Length} arguments instead of {(minArgs == maxArgs ? $"{minArgs}" : $"{minArgs} or {maxArgs}")}");
        if (args[0] is not StorageRef storage) throw new PickleDataException("was given no storage as its first argument");
        if (args[1] is not long offset || offset < 0) throw new PickleDataException("was given a storage offset that is not a non-negative integer");
        var size = Ints(args[2], "size");
        var stride = Ints(args[3], "stride");
        if (size.Length != stride.Length) throw new PickleDataException($"was given {size.Length} sizes but {stride.Length} strides");
        var pending = new PendingTensor(storage, offset, size, stride);
        long last;
        try
        {
            last = pending.Numel == 0 ? offset : offset + size.Select((d, i) => checked((d - 1) * stride[i])).Aggregate(0L, (a, b) => checked(a + b));
        }
        catch (OverflowException e)
        {
            throw new PickleDataException("was given sizes or strides whose product overflows", e);
        }

        if (pending.Numel > 0 && last >= storage.Numel)
            throw new PickleDataException($"describes a view [{string.Join(", ", size)}] (stride [{string.Join(", ", stride)}], offset {offset}) that reaches element {last} of storage '{storage.Key}', which has {storage.Numel}");
        return pending;
    }

    private static long[] Ints(object? o, string what)
    {
        if (o is not object?[] items || items.Any(i => i is not long v || v < 0))
            throw new PickleDataException($"was given a {what} that is not a tuple of non-negative integers");
        return items.Select(i => (long)i!).ToArray();
    }

    /// <summary><c>_rebuild_parameter(data, requires_grad, backward_hooks[, state])</c>: a parameter loads as its tensor.</summary>
    private static PendingTensor Parameter(object?[] args, int count)
    {
        if (args.Length != count) throw new PickleDataException($"was given {args.Length} arguments instead of {count}");
        return args[0] as PendingTensor ?? throw new PickleDataException("was given no tensor as its first argument");
    }

    /// <summary><c>_rebuild_from_type_v2(func, type, args, state)</c>: a tensor of a plain tensor class; extra state is dropped.</summary>
    private static object? FromType(object?[] args)
    {
        if (args.Length != 4) throw new PickleDataException($"was given {args.Length} arguments instead of 4");
        if (args[0] is not PickleCallable func || (func != RebuildTensorV2 && func != RebuildTensorV1 && func != RebuildParameter && func != RebuildParameterWithState))
            throw new PickleDataException("was asked to call something other than a tensor rebuild function");
        if (args[1] is not TensorClass) throw new PickleDataException("was asked for a tensor subclass other than torch.Tensor or torch.nn.Parameter");
        if (args[2] is not object?[] inner) throw new PickleDataException("was given arguments that are not a tuple");
        return func.Call(inner);
    }

    /// <summary>
    /// <c>argparse.Namespace()</c> as NEWOBJ creates it (no arguments); its attributes arrive through BUILD. The
    /// training scripts of timm and torchvision save their command-line arguments this way.
    /// </summary>
    private static PythonObject NewNamespace(object?[] args) =>
        args.Length == 0 ? new PythonObject("argparse.Namespace") : throw new PickleDataException("was given arguments; torch.save writes none");

    /// <summary><c>torch.device('cuda:0')</c> or <c>torch.device('cuda', 0)</c>, kept as its string form.</summary>
    private static string NewDevice(object?[] args) => args switch
    {
        [string type] => type,
        [string type, long index] => $"{type}:{index}",
        [string type, null] => type,
        _ => throw new PickleDataException("was given arguments other than a device string and an optional index"),
    };

    /// <summary><c>torch.Size((2, 3))</c>, kept as its tuple.</summary>
    private static object?[] NewSize(object?[] args) =>
        args is [object?[] dims] && dims.All(d => d is long) ? dims : throw new PickleDataException("was given something other than one tuple of integers");
}
