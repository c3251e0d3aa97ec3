using Incept.Export;
using Incept.Layers;
using TorchSharp;
using static TorchSharp.torch;

namespace Incept.Models.InceptionV3;

/// <summary>Inception-v3's 35→17 grid reduction (Figure 10): stride-2 convolutions beside a stride-2 pool.</summary>
public sealed class InceptionB : nn.Module<Tensor, Tensor>, IOnnxExportable
{
    private readonly BasicConv2d branch3x3;
    private readonly BasicConv2d branch3x3dbl_1;
    private readonly BasicConv2d branch3x3dbl_2;
    private readonly BasicConv2d branch3x3dbl_3;

    /// <summary>Builds the module; output channels are <paramref name="inChannels"/> + 480 (scaled by <paramref name="unit"/>'s width).</summary>
    public InceptionB(long inChannels, ConvUnit unit) : base(nameof(InceptionB))
    {
        ArgumentNullException.ThrowIfNull(unit);
        long c64 = unit.Scaled(64), c96 = unit.Scaled(96), c384 = unit.Scaled(384);
        branch3x3 = unit.Build(inChannels, c384, 3, stride: 2);
        branch3x3dbl_1 = unit.Build(inChannels, c64, 1);
        branch3x3dbl_2 = unit.Build(c64, c96, 3, padding: 1);
        branch3x3dbl_3 = unit.Build(c96, c96, 3, stride: 2);
        OutChannels = c384 + c96 + inChannels;
        RegisterComponents();
    }

    /// <summary>Channels of the concatenated output.</summary>
    public long OutChannels { get; }

    /// <inheritdoc/>
    public override Tensor forward(Tensor input)
    {
        using var scope = NewDisposeScope();
        var b3 = branch3x3.call(input);
        var bd = branch3x3dbl_3.call(branch3x3dbl_2.call(branch3x3dbl_1.call(input)));
        var bp = Pooling.Max(input, [3], [2], [0]);
        return cat([b3, bd, bp], 1).MoveToOuterDisposeScope();
    }

    OnnxValue IOnnxExportable.ExportOnnx(OnnxGraphBuilder graph, OnnxValue input)
    {
        var b3 = graph.Call(branch3x3, input, nameof(branch3x3));
        var bd = graph.Call(branch3x3dbl_1, input, nameof(branch3x3dbl_1));
        bd = graph.Call(branch3x3dbl_3, graph.Call(branch3x3dbl_2, bd, nameof(branch3x3dbl_2)), nameof(branch3x3dbl_3));
        var bp = graph.MaxPool(input, [3, 3], [2, 2], [0, 0], ceilMode: false);
        return graph.Concat(b3, bd, bp);
    }
}
