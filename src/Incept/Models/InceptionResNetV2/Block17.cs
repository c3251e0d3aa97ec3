using Incept.Export;
using Incept.Layers;
using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;

namespace Incept.Models.InceptionResNetV2;

/// <summary>
/// Inception-ResNet-B, the 17×17 residual block of Inception-ResNet-v2 (paper Figure 17): a 1×1 branch
/// and a 1×1 → 1×7 → 7×1 branch concatenated to 384 channels, a 1×1 convolution with bias back to the
/// input's 1088, scaled and added to the input, then ReLU. The branches scale with the model's width; the
/// projection always returns to the input's channels.
/// </summary>
public sealed class Block17 : nn.Module<Tensor, Tensor>, IOnnxExportable, IProjectedResidual
{
    private readonly BasicConv2d branch0;
    private readonly Sequential branch1;
    private readonly Conv2d conv2d;
    private PanelProduct? projection;
    private readonly double scale;

    /// <summary>
    /// Builds the block on <paramref name="inChannels"/> channels (1088 in the reference); the residual branch is
    /// multiplied by <paramref name="scale"/> (0.10 in the reference) before the sum.
    /// </summary>
    public Block17(long inChannels, ConvUnit u, double scale) : base(nameof(Block17))
    {
        ArgumentNullException.ThrowIfNull(u);
        this.scale = scale;
        long c128 = u.Scaled(128), c160 = u.Scaled(160), c192 = u.Scaled(192);
        branch0 = u.Build(inChannels, c192, 1);
        branch1 = nn.Sequential(
            u.Build(inChannels, c128, 1),
            u.Build(c128, c160, (1, 7), (0, 3)),
            u.Build(c160, c192, (7, 1), (3, 0)));
        conv2d = nn.Conv2d(c192 + c192, inChannels, 1);
        RegisterComponents();
    }

    /// <summary>The factor applied to the residual branch before it is added to the input.</summary>
    public double Scale => scale;

    /// <inheritdoc/>
    public override Tensor forward(Tensor input)
    {
        using var scope = NewDisposeScope();
        // N x 1088 x 17 x 17
        var x = cat([branch0.call(input), branch1.call(input)], 1);
        // N x (192 + 192) x 17 x 17
        // Projected back to the input's channels, scaled and added to it (in an inference copy, whose conv units are
        // folded, as one matrix product).
        return Residual.ProjectedSum(conv2d, projection, x, scale, input, fused: ((IConvBnUnit)branch0).BatchNormFolded, relu: true).MoveToOuterDisposeScope();
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
        x = graph.Add(graph.Scale(x, scale), input);
        return graph.Relu(x);
    }
}
