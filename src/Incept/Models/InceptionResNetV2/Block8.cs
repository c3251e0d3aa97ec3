using Incept.Export;
using Incept.Layers;
using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;

namespace Incept.Models.InceptionResNetV2;

/// <summary>
/// Inception-ResNet-C, the 8×8 residual block of Inception-ResNet-v2 (paper Figure 19): a 1×1 branch and
/// a 1×1 → 1×3 → 3×1 branch concatenated to 448 channels, a 1×1 convolution with bias back to the input's
/// 2080, scaled and added to the input, then (except in the network's last block) ReLU. The branches scale with
/// the model's width; the projection always returns to the input's channels.
/// </summary>
public sealed class Block8 : nn.Module<Tensor, Tensor>, IOnnxExportable, IProjectedResidual
{
    private readonly BasicConv2d branch0;
    private readonly Sequential branch1;
    private readonly Conv2d conv2d;
    private PanelProduct? projection;
    private readonly double scale;
    private readonly bool relu;

    /// <summary>
    /// Builds the block on <paramref name="inChannels"/> channels (2080 in the reference); the residual branch is
    /// multiplied by <paramref name="scale"/> (0.20 in the reference's repeated blocks, 1.0 in its last one) and,
    /// when <paramref name="relu"/> is false, the sum is returned without ReLU.
    /// </summary>
    public Block8(long inChannels, ConvUnit u, double scale, bool relu = true) : base(nameof(Block8))
    {
        ArgumentNullException.ThrowIfNull(u);
        this.scale = scale;
        this.relu = relu;
        long c192 = u.Scaled(192), c224 = u.Scaled(224), c256 = u.Scaled(256);
        branch0 = u.Build(inChannels, c192, 1);
        branch1 = nn.Sequential(
            u.Build(inChannels, c192, 1),
            u.Build(c192, c224, (1, 3), (0, 1)),
            u.Build(c224, c256, (3, 1), (1, 0)));
        conv2d = nn.Conv2d(c192 + c256, inChannels, 1);
        RegisterComponents();
    }

    /// <summary>The factor applied to the residual branch before it is added to the input.</summary>
    public double Scale => scale;

    /// <summary>Whether a ReLU follows the residual sum.</summary>
    public bool Relu => relu;

    /// <inheritdoc/>
    public override Tensor forward(Tensor input)
    {
        using var scope = NewDisposeScope();
        // N x 2080 x 8 x 8
        var x = cat([branch0.call(input), branch1.call(input)], 1);
        // N x (192 + 256) x 8 x 8
        // Projected back to the input's channels, scaled and added to it (in an inference copy, whose conv units are
        // folded, as one matrix product).
        return Residual.ProjectedSum(conv2d, projection, x, scale, input, fused: ((IConvBnUnit)branch0).BatchNormFolded, relu: relu).MoveToOuterDisposeScope();
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
        return relu ? graph.Relu(x) : x;
    }
}
