using Incept.Export;
using Incept.Layers;
using TorchSharp;
using static TorchSharp.torch;

namespace Incept.Models.InceptionV3;

/// <summary>Inception-v3's 8×8 module (Figure 7): expanded filter banks with parallel 1×3 and 3×1 outputs.</summary>
public sealed class InceptionE : nn.Module<Tensor, Tensor>, IOnnxExportable
{
    private readonly BasicConv2d branch1x1;
    private readonly BasicConv2d branch3x3_1;
    private readonly BasicConv2d branch3x3_2a;
    private readonly BasicConv2d branch3x3_2b;
    private readonly BasicConv2d branch3x3dbl_1;
    private readonly BasicConv2d branch3x3dbl_2;
    private readonly BasicConv2d branch3x3dbl_3a;
    private readonly BasicConv2d branch3x3dbl_3b;
    private readonly BasicConv2d branch_pool;

    /// <summary>Builds the module; output is always 2048 channels in the reference (scaled by <paramref name="unit"/>'s width).</summary>
    public InceptionE(long inChannels, ConvUnit unit) : base(nameof(InceptionE))
    {
        ArgumentNullException.ThrowIfNull(unit);
        long c192 = unit.Scaled(192), c320 = unit.Scaled(320), c384 = unit.Scaled(384), c448 = unit.Scaled(448);
        branch1x1 = unit.Build(inChannels, c320, 1);
        branch3x3_1 = unit.Build(inChannels, c384, 1);
        branch3x3_2a = unit.Build(c384, c384, (1, 3), (0, 1));
        branch3x3_2b = unit.Build(c384, c384, (3, 1), (1, 0));
        branch3x3dbl_1 = unit.Build(inChannels, c448, 1);
        branch3x3dbl_2 = unit.Build(c448, c384, 3, padding: 1);
        branch3x3dbl_3a = unit.Build(c384, c384, (1, 3), (0, 1));
        branch3x3dbl_3b = unit.Build(c384, c384, (3, 1), (1, 0));
        branch_pool = unit.Build(inChannels, c192, 1);
        OutChannels = c320 + 4 * c384 + c192;
        RegisterComponents();
    }

    /// <summary>Channels of the concatenated output.</summary>
    public long OutChannels { get; }

    /// <inheritdoc/>
    public override Tensor forward(Tensor input)
    {
        using var scope = NewDisposeScope();
        var b1 = branch1x1.call(input);
        var b3 = branch3x3_1.call(input);
        b3 = cat([branch3x3_2a.call(b3), branch3x3_2b.call(b3)], 1);
        var bd = branch3x3dbl_2.call(branch3x3dbl_1.call(input));
        bd = cat([branch3x3dbl_3a.call(bd), branch3x3dbl_3b.call(bd)], 1);
        var bp = branch_pool.call(Pooling.Average(input, [3], [1], [1]));
        return cat([b1, b3, bd, bp], 1).MoveToOuterDisposeScope();
    }

    OnnxValue IOnnxExportable.ExportOnnx(OnnxGraphBuilder graph, OnnxValue input)
    {
        var b1 = graph.Call(branch1x1, input, nameof(branch1x1));
        var b3 = graph.Call(branch3x3_1, input, nameof(branch3x3_1));
        b3 = graph.Concat(graph.Call(branch3x3_2a, b3, nameof(branch3x3_2a)), graph.Call(branch3x3_2b, b3, nameof(branch3x3_2b)));
        var bd = graph.Call(branch3x3dbl_2, graph.Call(branch3x3dbl_1, input, nameof(branch3x3dbl_1)), nameof(branch3x3dbl_2));
        bd = graph.Concat(graph.Call(branch3x3dbl_3a, bd, nameof(branch3x3dbl_3a)), graph.Call(branch3x3dbl_3b, bd, nameof(branch3x3dbl_3b)));
        var bp = graph.AveragePool(input, [3, 3], [1, 1], [1, 1], ceilMode: false, countIncludePad: true);
        bp = graph.Call(branch_pool, bp, nameof(branch_pool));
        return graph.Concat(b1, b3, bd, bp);
    }
}
