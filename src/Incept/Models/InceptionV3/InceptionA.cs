using Incept.Export;
using Incept.Layers;
using TorchSharp;
using static TorchSharp.torch;

namespace Incept.Models.InceptionV3;

/// <summary>Inception-v3's 35×35 module (Figure 5): the 5×5 factorised into two 3×3 in one branch.</summary>
public sealed class InceptionA : nn.Module<Tensor, Tensor>, IOnnxExportable
{
    private readonly BasicConv2d branch1x1;
    private readonly BasicConv2d branch5x5_1;
    private readonly BasicConv2d branch5x5_2;
    private readonly BasicConv2d branch3x3dbl_1;
    private readonly BasicConv2d branch3x3dbl_2;
    private readonly BasicConv2d branch3x3dbl_3;
    private readonly BasicConv2d branch_pool;

    /// <summary>
    /// Builds the module; output channels are 224 + <paramref name="poolFeatures"/> in the reference, each branch
    /// scaled by <paramref name="unit"/>'s width.
    /// </summary>
    public InceptionA(long inChannels, long poolFeatures, ConvUnit unit) : base(nameof(InceptionA))
    {
        ArgumentNullException.ThrowIfNull(unit);
        long c48 = unit.Scaled(48), c64 = unit.Scaled(64), c96 = unit.Scaled(96), pool = unit.Scaled(poolFeatures);
        branch1x1 = unit.Build(inChannels, c64, 1);
        branch5x5_1 = unit.Build(inChannels, c48, 1);
        branch5x5_2 = unit.Build(c48, c64, 5, padding: 2);
        branch3x3dbl_1 = unit.Build(inChannels, c64, 1);
        branch3x3dbl_2 = unit.Build(c64, c96, 3, padding: 1);
        branch3x3dbl_3 = unit.Build(c96, c96, 3, padding: 1);
        branch_pool = unit.Build(inChannels, pool, 1);
        OutChannels = c64 + c64 + c96 + pool;
        RegisterComponents();
    }

    /// <summary>Channels of the concatenated output.</summary>
    public long OutChannels { get; }

    /// <inheritdoc/>
    public override Tensor forward(Tensor input)
    {
        using var scope = NewDisposeScope();
        var b1 = branch1x1.call(input);
        var b5 = branch5x5_2.call(branch5x5_1.call(input));
        var b3 = branch3x3dbl_3.call(branch3x3dbl_2.call(branch3x3dbl_1.call(input)));
        var bp = branch_pool.call(Pooling.Average(input, [3], [1], [1]));
        return cat([b1, b5, b3, bp], 1).MoveToOuterDisposeScope();
    }

    OnnxValue IOnnxExportable.ExportOnnx(OnnxGraphBuilder graph, OnnxValue input)
    {
        var b1 = graph.Call(branch1x1, input, nameof(branch1x1));
        var b5 = graph.Call(branch5x5_2, graph.Call(branch5x5_1, input, nameof(branch5x5_1)), nameof(branch5x5_2));
        var b3 = graph.Call(branch3x3dbl_1, input, nameof(branch3x3dbl_1));
        b3 = graph.Call(branch3x3dbl_3, graph.Call(branch3x3dbl_2, b3, nameof(branch3x3dbl_2)), nameof(branch3x3dbl_3));
        var bp = graph.AveragePool(input, [3, 3], [1, 1], [1, 1], ceilMode: false, countIncludePad: true);
        bp = graph.Call(branch_pool, bp, nameof(branch_pool));
        return graph.Concat(b1, b5, b3, bp);
    }
}
