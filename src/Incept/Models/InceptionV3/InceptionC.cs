using Incept.Export;
using Incept.Layers;
using TorchSharp;
using static TorchSharp.torch;

namespace Incept.Models.InceptionV3;

/// <summary>Inception-v3's 17×17 module (Figure 6): 7×7 convolutions factorised into 1×7 and 7×1.</summary>
public sealed class InceptionC : nn.Module<Tensor, Tensor>, IOnnxExportable
{
    private readonly BasicConv2d branch1x1;
    private readonly BasicConv2d branch7x7_1;
    private readonly BasicConv2d branch7x7_2;
    private readonly BasicConv2d branch7x7_3;
    private readonly BasicConv2d branch7x7dbl_1;
    private readonly BasicConv2d branch7x7dbl_2;
    private readonly BasicConv2d branch7x7dbl_3;
    private readonly BasicConv2d branch7x7dbl_4;
    private readonly BasicConv2d branch7x7dbl_5;
    private readonly BasicConv2d branch_pool;

    /// <summary>
    /// Builds the module with <paramref name="channels7x7"/> inner channels; output is always 768 channels in the
    /// reference (both scaled by <paramref name="unit"/>'s width).
    /// </summary>
    public InceptionC(long inChannels, long channels7x7, ConvUnit unit) : base(nameof(InceptionC))
    {
        ArgumentNullException.ThrowIfNull(unit);
        long c7 = unit.Scaled(channels7x7), c192 = unit.Scaled(192);
        branch1x1 = unit.Build(inChannels, c192, 1);
        branch7x7_1 = unit.Build(inChannels, c7, 1);
        branch7x7_2 = unit.Build(c7, c7, (1, 7), (0, 3));
        branch7x7_3 = unit.Build(c7, c192, (7, 1), (3, 0));
        branch7x7dbl_1 = unit.Build(inChannels, c7, 1);
        branch7x7dbl_2 = unit.Build(c7, c7, (7, 1), (3, 0));
        branch7x7dbl_3 = unit.Build(c7, c7, (1, 7), (0, 3));
        branch7x7dbl_4 = unit.Build(c7, c7, (7, 1), (3, 0));
        branch7x7dbl_5 = unit.Build(c7, c192, (1, 7), (0, 3));
        branch_pool = unit.Build(inChannels, c192, 1);
        OutChannels = 4 * c192;
        RegisterComponents();
    }

    /// <summary>Channels of the concatenated output.</summary>
    public long OutChannels { get; }

    /// <inheritdoc/>
    public override Tensor forward(Tensor input)
    {
        using var scope = NewDisposeScope();
        var b1 = branch1x1.call(input);
        var b7 = branch7x7_3.call(branch7x7_2.call(branch7x7_1.call(input)));
        var bd = branch7x7dbl_1.call(input);
        bd = branch7x7dbl_5.call(branch7x7dbl_4.call(branch7x7dbl_3.call(branch7x7dbl_2.call(bd))));
        var bp = branch_pool.call(Pooling.Average(input, [3], [1], [1]));
        return cat([b1, b7, bd, bp], 1).MoveToOuterDisposeScope();
    }

    OnnxValue IOnnxExportable.ExportOnnx(OnnxGraphBuilder graph, OnnxValue input)
    {
        var b1 = graph.Call(branch1x1, input, nameof(branch1x1));
        var b7 = graph.Call(branch7x7_1, input, nameof(branch7x7_1));
        b7 = graph.Call(branch7x7_3, graph.Call(branch7x7_2, b7, nameof(branch7x7_2)), nameof(branch7x7_3));
        var bd = graph.Call(branch7x7dbl_1, input, nameof(branch7x7dbl_1));
        bd = graph.Call(branch7x7dbl_2, bd, nameof(branch7x7dbl_2));
        bd = graph.Call(branch7x7dbl_3, bd, nameof(branch7x7dbl_3));
        bd = graph.Call(branch7x7dbl_4, bd, nameof(branch7x7dbl_4));
        bd = graph.Call(branch7x7dbl_5, bd, nameof(branch7x7dbl_5));
        var bp = graph.AveragePool(input, [3, 3], [1, 1], [1, 1], ceilMode: false, countIncludePad: true);
        bp = graph.Call(branch_pool, bp, nameof(branch_pool));
        return graph.Concat(b1, b7, bd, bp);
    }
}
