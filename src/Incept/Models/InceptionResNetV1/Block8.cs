using Incept.Export;
using Incept.Layers;
using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;

namespace Incept.Models.InceptionResNetV1;

/// <summary>
/// The 8×8 residual block of Inception-ResNet-v1 ("Inception-resnet-C"): 1×1 and 1×1→1×3→3×1 branches,
/// a 1×1 projection with bias back to the input's 1792 channels and a scaled residual sum, followed by a ReLU
/// except in the network's last block. The branches scale with the model's width; the projection always returns
/// to the input's channels.
/// </summary>
public sealed class Block8 : nn.Module<Tensor, Tensor>, IOnnxExportable, IProjectedResidual
{
    private readonly BasicConv2d branch0;
    private readonly Sequential branch1;
    private readonly Conv2d conv2d;
    private PanelProduct? projection;

    /// <summary>
    /// Builds the block on <paramref name="inChannels"/> channels (1792 in the reference); <paramref name="scale"/>
    /// multiplies the residual branch (0.20 in <c>repeat_3</c>, 1.0 in the final <c>block8</c>), and
    /// <paramref name="noReLU"/> leaves the sum without activation (the final block).
    /// </summary>
    public Block8(long inChannels, double scale, ConvUnit unit, bool noReLU = false) : base(nameof(Block8))
    {
        ArgumentNullException.ThrowIfNull(unit);
        Scale = scale;
        NoReLU = noReLU;
        long c192 = unit.Scaled(192);
        branch0 = unit.Build(inChannels, c192, 1);
        branch1 = nn.Sequential(
            unit.Build(inChannels, c192, 1),
            unit.Build(c192, c192, (1, 3), (0, 1)),
            unit.Build(c192, c192, (3, 1), (1, 0)));
        conv2d = nn.Conv2d(2 * c192, inChannels, 1);
        RegisterComponents();
    }

    /// <summary>The factor applied to the residual branch before the sum.</summary>
    public double Scale { get; }

    /// <summary>Whether the block returns the residual sum without a ReLU.</summary>
    public bool NoReLU { get; }

    /// <inheritdoc/>
    public override Tensor forward(Tensor input)
    {
        using var scope = NewDisposeScope();
        // N x 1792 x 3 x 3 (at 160) / 8 x 8 (at 299)
        var x = cat([branch0.call(input), branch1.call(input)], 1);
        // N x 384 x 3 x 3
        // Projected back to the input's channels, scaled and added to it (in an inference copy, whose conv units are
        // folded, as one matrix product).
        return Residual.ProjectedSum(conv2d, projection, x, Scale, input, fused: ((IConvBnUnit)branch0).BatchNormFolded, relu: !NoReLU).MoveToOuterDisposeScope();
    }

    /// <inheritdoc/>
    bool IProjectedResidual.PreparePanels() => ((IConvBnUnit)branch0).BatchNormFolded && PanelProduct.ReplacePointwise(conv2d, ref projection);

    /// <inheritdoc/>
    bool IProjectedResidual.PanelsPrepared => projection is not null;

    /// <inheritdoc/>
    protected override void Dispose(bool disposing)
    {
        if (disposing) projection?.Dispose();
        base.Dispose(disposing);
    }

    OnnxValue IOnnxExportable.ExportOnnx(OnnxGraphBuilder graph, OnnxValue input)
    {
        var x = graph.Call(conv2d, graph.Concat(graph.Call(branch0, input, nameof(branch0)), graph.Call(branch1, input, nameof(branch1))), nameof(conv2d));
        x = graph.Add(graph.Scale(x, Scale), input);
        return NoReLU ? x : graph.Relu(x);
    }
}
