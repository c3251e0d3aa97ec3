using System.Globalization;
using Google.Protobuf;
using Incept.Layers;
using Onnx;
using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;

namespace Incept.Export;

/// <summary>
/// Builds the ONNX graph of a model's inference pass, one operator at a time, and tracks every value's shape so
/// that each operator's output size is known (and checked) when it is written. Blocks call it from their
/// <see cref="IOnnxExportable.ExportOnnx"/>; the TorchSharp layers they hold go through <see cref="Call"/>.
/// </summary>
/// <remarks>
/// Initializers are named after the state-dict keys they come from (<c>Mixed_5b.branch1x1.conv.weight</c>), and
/// nodes after the module that produced them, so that a graph viewer shows the checkpoint's structure. With
/// <see cref="FoldBatchNorm"/> a BatchNorm that follows a convolution or linear layer is folded into its weights
/// (w' = w·γ/√(var+ε), b' = β + (b − mean)·γ/√(var+ε), computed in float64) and disappears from the graph.
/// The initializers in <see cref="Graph"/> carry names and shapes only: their data is computed from the model one
/// tensor at a time by <see cref="WriteModel"/>, so that writing a model never holds a second copy of its weights.
/// </remarks>
internal sealed class OnnxGraphBuilder
{
    /// <summary>The oldest opset the builder writes.</summary>
    public const int MinOpset = 7;

    /// <summary>The newest opset the builder writes (the ONNX IR version 11 of OnnxSharp's protobuf schema).</summary>
    public const int MaxOpset = 23;

    /// <summary>Stands for the batch dimension when the batch size is symbolic.</summary>
    public const long SymbolicBatch = -1;

    /// <summary>The name of the symbolic batch dimension in the file.</summary>
    public const string BatchDimName = "N";

    private readonly List<string> scope = [];
    private readonly HashSet<string> names = new(StringComparer.Ordinal);

    /// <summary>Starts an empty graph for <paramref name="opset"/>.</summary>
    public OnnxGraphBuilder(int opset, bool foldBatchNorm)
    {
        if (opset is < MinOpset or > MaxOpset)
            throw new OnnxExportException($"Incept writes ONNX opsets {MinOpset} to {MaxOpset}; opset {opset} was asked for. Export with --opset 17 (the default) or another opset in that range.");
        Opset = opset;
        FoldBatchNorm = foldBatchNorm;
    }

    /// <summary>The opset the graph is written for.</summary>
    public int Opset { get; }

    /// <summary>Whether BatchNorms are folded into the preceding convolution or linear layer.</summary>
    public bool FoldBatchNorm { get; }

    private readonly List<(TensorProto Proto, Func<Tensor> Data)> initializers = [];

    /// <summary>The graph written so far; its initializers have names and shapes but no data (see <see cref="WriteModel"/>).</summary>
    public GraphProto Graph { get; } = new();

    /// <summary>Parameters written as initializers (after folding).</summary>
    public long ParameterCount { get; private set; }

    /// <summary>Declares the float32 graph input <paramref name="name"/> shaped N×C×H×W.</summary>
    public OnnxValue Input(string name, long batch, long channels, long height, long width)
    {
        long[] shape = [batch, channels, height, width];
        Claim(name);
        Graph.Input.Add(ValueInfo(name, shape));
        return new OnnxValue(name, shape);
    }

    /// <summary>Keeps <paramref name="name"/> free for a graph input or output declared later.</summary>
    public void Reserve(string name) => Claim(name);

    /// <summary>Declares <paramref name="value"/> as the graph output <paramref name="name"/>, which must have been reserved.</summary>
    public void Output(OnnxValue value, string name)
    {
        var node = new NodeProto { OpType = "Identity", Name = Unique(name + "_output") };
        names.Add(node.Name);
        node.Input.Add(value.Name);
        node.Output.Add(name);
        Graph.Node.Add(node);
        Graph.Output.Add(ValueInfo(name, value.Shape));
    }

    /// <summary>Runs <paramref name="body"/> with <paramref name="name"/> appended to the scope that prefixes node and initializer names.</summary>
    public T InScope<T>(string? name, Func<T> body)
    {
        ArgumentNullException.ThrowIfNull(body);
        if (string.IsNullOrEmpty(name)) return body();
        scope.Add(name);
        try
        {
            return body();
        }
        finally
        {
            scope.RemoveAt(scope.Count - 1);
        }
    }

    /// <summary>
    /// Adds the evaluation-mode forward pass of <paramref name="module"/>, registered under <paramref name="name"/>
    /// in the current scope (null for a module that only groups others, such as BN-Inception's blocks).
    /// </summary>
    public OnnxValue Call(nn.Module module, OnnxValue x, string? name = null)
    {
        ArgumentNullException.ThrowIfNull(module);
        return InScope(name, () => module switch
        {
            IOnnxExportable block => block.ExportOnnx(this, x),
            Sequential sequential => sequential.named_children().Aggregate(x, (v, child) => Call(child.module, v, child.name)),
            Conv2d conv => Conv(conv, null, x, null, null),
            MaxPool2d pool => MaxPool(x, pool.kernel_size, pool.stride ?? pool.kernel_size, pool.padding ?? [0, 0], pool.ceil_mode, pool.dilation, ""),
            AvgPool2d pool when pool.divisor_override is null
                => AveragePool(x, pool.kernel_size, pool.stride ?? pool.kernel_size, pool.padding ?? [0, 0], pool.ceil_mode, pool.count_include_pad, ""),
            AdaptiveAvgPool2d pool when pool.output_size.All(s => s == 1) => GlobalAveragePool(x, ""),
            LocalResponseNorm lrn => Lrn(x, lrn, ""),
            Linear linear => Linear(linear, null, x, null, null),
            BatchNorm bn => BatchNorm(bn, x, null),
            Identity or Dropout => x,
            _ => throw new OnnxExportException(
                $"The ONNX export has no converter for the {module.GetType().Name} at '{Path(null)}'. Export a registry model (see 'incept models'), or add an exporter for this layer."),
        });
    }

    /// <summary>
    /// A convolution, then <paramref name="bn"/> when there is one (folded into the convolution with
    /// <see cref="FoldBatchNorm"/>). The keys name the two modules relative to the scope; null for the scope itself.
    /// </summary>
    public OnnxValue Conv(Conv2d conv, BatchNorm? bn, OnnxValue x, string? convKey = "conv", string? bnKey = "bn")
    {
        ArgumentNullException.ThrowIfNull(conv);
        string at = Path(convKey);
        if (conv.padding_type is not null || conv.padding_mode != PaddingModes.Zeros || conv.transposed)
            throw new OnnxExportException($"The ONNX export writes zero-padded convolutions with explicit padding; '{at}' is not one.");
        long[] kernel = conv.kernel_size, stride = conv.stride, padding = conv.padding ?? [0, 0], dilation = conv.dilation ?? [1, 1];
        Expect(x, 4, at);
        if (x.Shape[1] != conv.in_channels)
            throw new OnnxExportException($"'{at}' takes {conv.in_channels} channels but receives {x.ShapeText}.");
        long[] shape = [x.Shape[0], conv.out_channels,
            ConvSize(x.Shape[2], kernel[0], stride[0], padding[0], dilation[0], at),
            ConvSize(x.Shape[3], kernel[1], stride[1], padding[1], dilation[1], at)];

        var (weight, bias) = Parameters(conv.weight!, conv.bias, bn, conv.out_channels);
        var inputs = new List<string> { x.Name, Initializer(Key(convKey, "weight"), conv.weight!.shape, weight) };
        if (bias is not null) inputs.Add(Initializer(Key(convKey, "bias"), [conv.out_channels], bias));
        var y = new OnnxValue(Node("Conv", inputs, at,
            Ints("kernel_shape", kernel), Ints("strides", stride), Ints("pads", [padding[0], padding[1], padding[0], padding[1]]),
            Ints("dilations", dilation), Int("group", conv.groups)), shape);
        return bn is not null && !FoldBatchNorm ? BatchNorm(bn, y, bnKey) : y;
    }

    /// <summary>
    /// A linear layer (Gemm), then <paramref name="bn"/> when there is one (folded into the layer with
    /// <see cref="FoldBatchNorm"/>), on an N×features input.
    /// </summary>
    public OnnxValue Linear(Linear linear, BatchNorm? bn, OnnxValue x, string? linearKey, string? bnKey)
    {
        ArgumentNullException.ThrowIfNull(linear);
        string at = Path(linearKey);
        Expect(x, 2, at);
        if (x.Shape[1] != linear.in_features)
            throw new OnnxExportException($"'{at}' takes {linear.in_features} features but receives {x.ShapeText}.");
        var (weight, bias) = Parameters(linear.weight!, linear.bias, bn, linear.out_features);
        // Gemm's bias is optional only from opset 11.
        if (bias is null && Opset < 11) bias = () => zeros(linear.out_features, dtype: float32);
        var inputs = new List<string> { x.Name, Initializer(Key(linearKey, "weight"), linear.weight!.shape, weight) };
        if (bias is not null) inputs.Add(Initializer(Key(linearKey, "bias"), [linear.out_features], bias));
        var y = new OnnxValue(Node("Gemm", inputs, at, Int("transB", 1)), [x.Shape[0], linear.out_features]);
        return bn is not null && !FoldBatchNorm ? BatchNorm(bn, y, bnKey) : y;
    }

    /// <summary>A BatchNorm in evaluation mode (running statistics), on N×C or N×C×H×W.</summary>
    public OnnxValue BatchNorm(BatchNorm bn, OnnxValue x, string? key)
    {
        ArgumentNullException.ThrowIfNull(bn);
        string at = Path(key);
        if (x.Shape[1] != bn.num_features)
            throw new OnnxExportException($"'{at}' normalises {bn.num_features} channels but receives {x.ShapeText}.");
        if (bn.running_mean is null || bn.running_var is null)
            throw new OnnxExportException($"'{at}' keeps no running statistics, so it has no evaluation mode to export.");
        long[] channels = [bn.num_features];
        var (mean, variance) = (bn.running_mean, bn.running_var);
        var inputs = new[]
        {
            x.Name,
            Initializer(Key(key, "weight"), channels, () => bn.weight is { } w ? w.detach() : ones(bn.num_features)),
            Initializer(Key(key, "bias"), channels, () => bn.bias is { } b ? b.detach() : zeros(bn.num_features)),
            Initializer(Key(key, "running_mean"), channels, () => mean),
            Initializer(Key(key, "running_var"), channels, () => variance),
        };
        return new OnnxValue(Node("BatchNormalization", inputs, at, Float("epsilon", bn.eps)), x.Shape);
    }

    /// <summary>ReLU, named <paramref name="name"/> in the scope (<c>relu</c> by default).</summary>
    public OnnxValue Relu(OnnxValue x, string? name = null) => new(Node("Relu", [x.Name], Path(name ?? "relu")), x.Shape);

    /// <summary>
    /// Max pooling with PyTorch's semantics, including ceil mode (where ONNX's rounding equals PyTorch's; any other
    /// case is refused rather than written approximately).
    /// </summary>
    public OnnxValue MaxPool(OnnxValue x, long[] kernel, long[] stride, long[] padding, bool ceilMode, long[]? dilation = null, string? name = null)
    {
        string at = Path(name ?? "maxpool");
        if (dilation is not null && dilation.Any(d => d != 1))
            throw new OnnxExportException($"'{at}' is a dilated max pool, which the ONNX export does not write.");
        var (shape, ceil) = PoolShape(x, kernel, stride, padding, ceilMode, countIncludePad: false, at);
        var attributes = new List<AttributeProto> { Ints("kernel_shape", kernel), Ints("strides", stride), Ints("pads", Pads(padding)) };
        if (ceil)
        {
            Require(10, $"'{at}' (a max pool in ceil mode)");
            attributes.Add(Int("ceil_mode", 1));
        }

        return new OnnxValue(Node("MaxPool", [x.Name], at, [.. attributes]), shape);
    }

    /// <summary>Average pooling with PyTorch's semantics for padding (<paramref name="countIncludePad"/>) and ceil mode.</summary>
    public OnnxValue AveragePool(OnnxValue x, long[] kernel, long[] stride, long[] padding, bool ceilMode, bool countIncludePad, string? name = null)
    {
        string at = Path(name ?? "avgpool");
        var (shape, ceil) = PoolShape(x, kernel, stride, padding, ceilMode, countIncludePad, at);
        var attributes = new List<AttributeProto>
        {
            Ints("kernel_shape", kernel), Ints("strides", stride), Ints("pads", Pads(padding)),
            Int("count_include_pad", countIncludePad && padding.Any(p => p > 0) ? 1 : 0),
        };
        if (ceil)
        {
            Require(10, $"'{at}' (an average pool in ceil mode)");
            attributes.Add(Int("ceil_mode", 1));
        }

        return new OnnxValue(Node("AveragePool", [x.Name], at, [.. attributes]), shape);
    }

    /// <summary>Global average pooling to N×C×1×1.</summary>
    public OnnxValue GlobalAveragePool(OnnxValue x, string? name = null)
    {
        string at = Path(name ?? "global_pool");
        Expect(x, 4, at);
        return new OnnxValue(Node("GlobalAveragePool", [x.Name], at), [x.Shape[0], x.Shape[1], 1, 1]);
    }

    /// <summary>Flattens N×C×1×1 (or any N×…) to N×features.</summary>
    public OnnxValue Flatten(OnnxValue x)
    {
        long features = x.Shape.Skip(1).Aggregate(1L, (a, b) => a * b);
        return new OnnxValue(Node("Flatten", [x.Name], Path("flatten"), Int("axis", 1)), [x.Shape[0], features]);
    }

    /// <summary>Local response normalisation across channels, as PyTorch's <c>LocalResponseNorm</c> computes it.</summary>
    public OnnxValue Lrn(OnnxValue x, LocalResponseNorm lrn, string? name = null)
    {
        ArgumentNullException.ThrowIfNull(lrn);
        // Both divide alpha by the window size; PyTorch's window is centred like ONNX's for odd sizes.
        string at = Path(name ?? "lrn");
        if (lrn.size % 2 == 0)
            throw new OnnxExportException($"'{at}' has an even window ({lrn.size}), which ONNX's LRN centres differently from PyTorch.");
        return new OnnxValue(Node("LRN", [x.Name], at,
            Int("size", lrn.size), Float("alpha", lrn.alpha), Float("beta", lrn.beta), Float("bias", lrn.k)), x.Shape);
    }

    /// <summary>Concatenation along channels.</summary>
    public OnnxValue Concat(params OnnxValue[] parts)
    {
        ArgumentNullException.ThrowIfNull(parts);
        string at = Path("concat");
        var first = parts[0];
        foreach (var p in parts)
        {
            if (p.Shape.Length != first.Shape.Length || p.Shape[0] != first.Shape[0] || !p.Shape.Skip(2).SequenceEqual(first.Shape.Skip(2)))
                throw new OnnxExportException($"'{at}' would join maps of different sizes ({string.Join(", ", parts.Select(q => q.ShapeText))}): this input size does not suit the model. Use the model's default input size.");
        }

        long[] shape = [.. first.Shape];
        shape[1] = parts.Sum(p => p.Shape[1]);
        return new OnnxValue(Node("Concat", [.. parts.Select(p => p.Name)], at, Int("axis", 1)), shape);
    }

    /// <summary>Element-wise sum of two values of the same shape.</summary>
    public OnnxValue Add(OnnxValue a, OnnxValue b)
    {
        string at = Path("add");
        if (!a.Shape.SequenceEqual(b.Shape))
            throw new OnnxExportException($"'{at}' would add values of different shapes ({a.ShapeText} and {b.ShapeText}).");
        return new OnnxValue(Node("Add", [a.Name, b.Name], at), a.Shape);
    }

    /// <summary>Multiplies by a constant (a residual scale); a factor of 1 adds nothing.</summary>
    public OnnxValue Scale(OnnxValue x, double factor)
    {
        if (factor == 1.0) return x;
        string at = Path("scale");
        float value = (float)factor;
        var constant = Initializer(Unique(Key(null, "scale")), [], () => tensor(value));
        return new OnnxValue(Node("Mul", [x.Name, constant], at), x.Shape);
    }

    /// <summary>Divides each row of an N×D value by its L2 norm, as <c>F.normalize(x, p: 2, dim: 1)</c> does for non-zero rows.</summary>
    public OnnxValue L2Normalize(OnnxValue x)
        => new(Node("LpNormalization", [x.Name], Path("normalize"), Int("axis", 1), Int("p", 2)), x.Shape);

    /// <summary>Throws unless the opset is at least <paramref name="minimum"/>, naming <paramref name="what"/> needs it.</summary>
    public void Require(int minimum, string what)
    {
        if (Opset < minimum)
            throw new OnnxExportException($"{what} needs ONNX opset {minimum} or later; the export asks for opset {Opset}. Export with --opset {Math.Max(minimum, 17)}.");
    }

    private static (long[] Shape, bool Ceil) PoolShape(OnnxValue x, long[] kernel, long[] stride, long[] padding, bool ceilMode, bool countIncludePad, string at)
    {
        Expect(x, 4, at);
        var shape = (long[])x.Shape.Clone();
        bool ceil = false;
        for (int d = 0; d < 2; d++)
        {
            long input = x.Shape[2 + d], k = kernel[d], s = stride[d], p = padding[d];
            long span = input + 2 * p - k;
            if (span < 0)
                throw new OnnxExportException($"'{at}' needs a map of at least {k - 2 * p} pixels but receives {x.ShapeText}: the input is too small for the model.");
            long floor = span / s + 1;
            long size = floor;
            if (ceilMode)
            {
                // PyTorch rounds up, then drops a last window that would start in the right padding; ONNX only rounds up.
                long up = (span + s - 1) / s + 1;
                size = (up - 1) * s >= input + p ? up - 1 : up;
                if (size != up)
                    throw new OnnxExportException($"'{at}' is a ceil-mode pool whose last window starts in the padding, where ONNX rounds differently from PyTorch.");
                if (size != floor && countIncludePad && p > 0)
                    throw new OnnxExportException($"'{at}' is a ceil-mode average pool counting padding whose last window runs past the padding, which ONNX divides differently from PyTorch.");
            }

            ceil |= size != floor;
            shape[2 + d] = size;
        }

        return (shape, ceil);
    }

    private static long ConvSize(long input, long kernel, long stride, long padding, long dilation, string at)
    {
        long span = input + 2 * padding - dilation * (kernel - 1) - 1;
        if (span < 0)
            throw new OnnxExportException($"'{at}' needs a map of at least {dilation * (kernel - 1) + 1 - 2 * padding} pixels but receives {input}: the input is too small for the model.");
        return span / stride + 1;
    }

    private static long[] Pads(long[] padding) => [padding[0], padding[1], padding[0], padding[1]];

    private static void Expect(OnnxValue x, int rank, string at)
    {
        if (x.Shape.Length != rank)
            throw new OnnxExportException($"'{at}' takes a {rank}-dimensional value but receives {x.ShapeText}.");
    }

    /// <summary>
    /// How the weight and bias of a layer with <paramref name="outputs"/> outputs are computed when written: as they are,
    /// or with <paramref name="bn"/> folded in (float64, rounded once) when the builder folds.
    /// </summary>
    private (Func<Tensor> Weight, Func<Tensor>? Bias) Parameters(Tensor weight, Tensor? bias, BatchNorm? bn, long outputs)
    {
        if (bn is not null && FoldBatchNorm)
        {
            if (bn.running_mean is null || bn.running_var is null)
                throw new OnnxExportException($"'{Path(null)}' has a BatchNorm without running statistics, so it has no evaluation mode to fold into the layer before it.");
            if (bn.num_features != outputs)
                throw new OnnxExportException($"'{Path(null)}' has a BatchNorm over {bn.num_features} channels after a layer with {outputs} outputs; they cannot be folded.");
            return (() => ConvBnFolding.Folded(weight, bias, bn).Weight, () => ConvBnFolding.Folded(weight, bias, bn).Bias);
        }

        return (() => weight.detach(), bias is null ? null : () => bias.detach());
    }

    /// <summary>
    /// Declares the float32 initializer <paramref name="name"/> shaped <paramref name="shape"/>, whose data
    /// <paramref name="data"/> computes when the model is written.
    /// </summary>
    private string Initializer(string name, long[] shape, Func<Tensor> data)
    {
        Claim(name);
        var proto = new TensorProto { Name = name, DataType = (int)TensorProto.Types.DataType.Float };
        proto.Dims.AddRange(shape);
        Graph.Initializer.Add(proto);
        initializers.Add((proto, data));
        ParameterCount += shape.Aggregate(1L, (n, d) => n * d);
        return name;
    }

    /// <summary>
    /// Writes <paramref name="model"/>, whose graph is <see cref="Graph"/>, to <paramref name="output"/> with the
    /// initializers' data, computing and writing one initializer at a time. The model goes first without its
    /// initializers, then one model fragment per initializer: protobuf merges repeated occurrences of a message field,
    /// so every reader sees one model whose graph holds them all.
    /// </summary>
    public void WriteModel(ModelProto model, Stream output)
    {
        ArgumentNullException.ThrowIfNull(model);
        ArgumentNullException.ThrowIfNull(output);
        if (!ReferenceEquals(model.Graph, Graph)) throw new ArgumentException("The model's graph is not this builder's.", nameof(model));
        if (!BitConverter.IsLittleEndian) throw new PlatformNotSupportedException("ONNX raw tensor data is little-endian.");
        var head = model.Clone();
        head.Graph.Initializer.Clear();
        using var coded = new CodedOutputStream(output, leaveOpen: true);
        head.WriteTo(coded);
        foreach (var (proto, data) in initializers)
        {
            using var scope = NewDisposeScope();
            Tensor value;
            using (no_grad()) value = data().detach().cpu().to(float32).contiguous();
            if (!value.shape.SequenceEqual(proto.Dims))
                throw new OnnxExportException($"The initializer '{proto.Name}' was declared [{string.Join(", ", proto.Dims)}] but is [{string.Join(", ", value.shape)}]; its layer changed during the export.");
            var filled = proto.Clone();
            filled.RawData = ByteString.CopyFrom(value.bytes);
            new ModelProto { Graph = new GraphProto { Initializer = { filled } } }.WriteTo(coded);
        }

        coded.Flush();
    }

    private string Node(string op, IEnumerable<string> inputs, string name, params AttributeProto[] attributes)
    {
        name = Unique(name);
        names.Add(name);
        var node = new NodeProto { OpType = op, Name = name };
        node.Input.AddRange(inputs);
        node.Output.Add(name);
        node.Attribute.AddRange(attributes);
        Graph.Node.Add(node);
        return name;
    }

    private static ValueInfoProto ValueInfo(string name, long[] shape)
    {
        var tensorType = new TypeProto.Types.Tensor { ElemType = (int)TensorProto.Types.DataType.Float, Shape = new TensorShapeProto() };
        foreach (var d in shape)
        {
            tensorType.Shape.Dim.Add(d == SymbolicBatch
                ? new TensorShapeProto.Types.Dimension { DimParam = BatchDimName }
                : new TensorShapeProto.Types.Dimension { DimValue = d });
        }

        return new ValueInfoProto { Name = name, Type = new TypeProto { TensorType = tensorType } };
    }

    private static AttributeProto Int(string name, long value) => new() { Name = name, Type = AttributeProto.Types.AttributeType.Int, I = value };

    private static AttributeProto Float(string name, double value) => new() { Name = name, Type = AttributeProto.Types.AttributeType.Float, F = (float)value };

    private static AttributeProto Ints(string name, IEnumerable<long> values)
    {
        var attribute = new AttributeProto { Name = name, Type = AttributeProto.Types.AttributeType.Ints };
        attribute.Ints.AddRange(values);
        return attribute;
    }

    /// <summary>The state-dict key of <paramref name="leaf"/> of the module <paramref name="module"/> in the current scope.</summary>
    private string Key(string? module, string leaf) => Path(module is null ? leaf : module + "." + leaf);

    /// <summary>The current scope's path, followed by <paramref name="leaf"/> unless it is null or empty.</summary>
    private string Path(string? leaf)
    {
        var parts = string.IsNullOrEmpty(leaf) ? scope : scope.Append(leaf);
        var path = string.Join(".", parts);
        return path.Length > 0 ? path : "model";
    }

    private string Unique(string name)
    {
        if (!names.Contains(name)) return name;
        for (int i = 1; ; i++)
        {
            var candidate = string.Create(CultureInfo.InvariantCulture, $"{name}_{i}");
            if (!names.Contains(candidate)) return candidate;
        }
    }

    private void Claim(string name)
    {
        if (!names.Add(name)) throw new OnnxExportException($"Two tensors of the ONNX graph would both be called '{name}'.");
    }
}
