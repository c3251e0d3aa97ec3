using Incept.Export;
using Incept.Layers;
using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;

namespace Incept.Models.InceptionResNetV2;

/// <summary>
/// Inception-ResNet-A, the 35×35 residual block of Inception-ResNet-v2 (paper Figure 16): three
/// branches concatenated to 128 channels, a 1×1 convolution with bias back to the input's 320, scaled and
/// added to the input, then ReLU. The branches scale with the model's width; the projection always returns to
/// the input's channels.
/// </summary>
public sealed class Block35 : nn.Module<Tensor, Tensor>, IOnnxExportable, IProjectedResidual
{
    private readonly BasicConv2d branch0;
    private readonly Sequential branch1;
    private readonly Sequential branch2;
    private readonly Conv2d conv2d;
    private PanelProduct? projection;
    private readonly double scale;

    /// <summary>
    /// Builds the block on <paramref name="inChannels"/> channels (320 in the reference); the residual branch is
    /// multiplied by <paramref name="scale"/> (0.17 in the reference) before the sum.
    /// </summary>
    public Block35(long inChannels, ConvUnit u, double scale) : base(nameof(Block35))
    {
        ArgumentNullException.ThrowIfNull(u);
        this.scale = scale;
        long c32 = u.Scaled(32), c48 = u.Scaled(48), c64 = u.Scaled(64);
        branch0 = u.Build(inChannels, c32, 1);
        branch1 = nn.Sequential(
            u.Build(inChannels, c32, 1),
            u.Build(c32, c32, 3, padding: 1));
        branch2 = nn.Sequential(
            u.Build(inChannels, c32, 1),
            u.Build(c32, c48, 3, padding: 1),
            u.Build(c48, c64, 3, padding: 1));
        conv2d = nn.Conv2d(c32 + c32 + c64, inChannels, 1);
        RegisterComponents();
    }

    /// <summary>The factor applied to the residual branch before it is added to the input.</summary>
    public double Scale => scale;

    /// <inheritdoc/>
    public override Tensor forward(Tensor input)
    {
        using var scope = NewDisposeScope();
        // N x 320 x 35 x 35
        var x = cat([branch0.call(input), branch1.call(input), branch2.call(input)], 1);
        // N x (32 + 32 + 64) x 35 x 35
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
        var x = graph.Call(conv2d, graph.Concat(graph.Call(branch0, input, nameof(branch0)), graph.Call(branch1, input, nameof(branch1)), graph.Call(branch2, input, nameof(branch2))), nameof(conv2d));
        x = graph.Add(graph.Scale(x, scale), input);
        return graph.Relu(x);
    }
}
