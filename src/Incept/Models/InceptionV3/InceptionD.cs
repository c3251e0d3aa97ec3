using Incept.Export;
using Incept.Layers;
using TorchSharp;
using static TorchSharp.torch;

namespace Incept.Models.InceptionV3;

/// <summary>Inception-v3's 17→8 grid reduction: a 3×3/2 branch, a 1×7, 7×1, 3×3/2 branch and a max pool.</summary>
public sealed class InceptionD : nn.Module<Tensor, Tensor>, IOnnxExportable
{
    private readonly BasicConv2d branch3x3_1;
    private readonly BasicConv2d branch3x3_2;
    private readonly BasicConv2d branch7x7x3_1;
    private readonly BasicConv2d branch7x7x3_2;
    private readonly BasicConv2d branch7x7x3_3;
    private readonly BasicConv2d branch7x7x3_4;

    /// <summary>Builds the module; output channels are <paramref name="inChannels"/> + 512 (scaled by <paramref name="unit"/>'s width).</summary>
    public InceptionD(long inChannels, ConvUnit unit) : base(nameof(InceptionD))
    {
        ArgumentNullException.ThrowIfNull(unit);
        long c192 = unit.Scaled(192), c320 = unit.Scaled(320);
        branch3x3_1 = unit.Build(inChannels, c192, 1);
        branch3x3_2 = unit.Build(c192, c320, 3, stride: 2);
        branch7x7x3_1 = unit.Build(inChannels, c192, 1);
        branch7x7x3_2 = unit.Build(c192, c192, (1, 7), (0, 3));
        branch7x7x3_3 = unit.Build(c192, c192, (7, 1), (3, 0));
        branch7x7x3_4 = unit.Build(c192, c192, 3, stride: 2);
        OutChannels = c320 + c192 + inChannels;
        RegisterComponents();
    }

    /// <summary>Channels of the concatenated output.</summary>
    public long OutChannels { get; }

    /// <inheritdoc/>
    public override Tensor forward(Tensor input)
    {
        using var scope = NewDisposeScope();
        var b3 = branch3x3_2.call(branch3x3_1.call(input));
        var b7 = branch7x7x3_4.call(branch7x7x3_3.call(branch7x7x3_2.call(branch7x7x3_1.call(input))));
        var bp = Pooling.Max(input, [3], [2], [0]);
        return cat([b3, b7, bp], 1).MoveToOuterDisposeScope();
    }

    OnnxValue IOnnxExportable.ExportOnnx(OnnxGraphBuilder graph, OnnxValue input)
    {
        var b3 = graph.Call(branch3x3_2, graph.Call(branch3x3_1, input, nameof(branch3x3_1)), nameof(branch3x3_2));
        var b7 = graph.Call(branch7x7x3_1, input, nameof(branch7x7x3_1));
        b7 = graph.Call(branch7x7x3_2, b7, nameof(branch7x7x3_2));
        b7 = graph.Call(branch7x7x3_3, b7, nameof(branch7x7x3_3));
        b7 = graph.Call(branch7x7x3_4, b7, nameof(branch7x7x3_4));
        var bp = graph.MaxPool(input, [3, 3], [2, 2], [0, 0], ceilMode: false);
        return graph.Concat(b3, b7, bp);
    }
}
