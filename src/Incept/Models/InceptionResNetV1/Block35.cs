using Incept.Export;
using Incept.Layers;
using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;

namespace Incept.Models.InceptionResNetV1;

/// <summary>
/// The 35×35 residual block of Inception-ResNet-v1 ("Inception-resnet-A"): 1×1, 1×1→3×3 and 1×1→3×3→3×3
/// branches, a 1×1 projection with bias back to the input's 256 channels, a scaled residual sum and a ReLU. The
/// branches scale with the model's width; the projection always returns to the input's channels.
/// </summary>
public sealed class Block35 : nn.Module<Tensor, Tensor>, IOnnxExportable, IProjectedResidual
{
    private readonly BasicConv2d branch0;
    private readonly Sequential branch1;
    private readonly Sequential branch2;
    private readonly Conv2d conv2d;
    private PanelProduct? projection;

    /// <summary>
    /// Builds the block on <paramref name="inChannels"/> channels (256 in the reference); <paramref name="scale"/>
    /// multiplies the residual branch (0.17 in the reference).
    /// </summary>
    public Block35(long inChannels, double scale, ConvUnit unit) : base(nameof(Block35))
    {
        ArgumentNullException.ThrowIfNull(unit);
        Scale = scale;
        long c32 = unit.Scaled(32);
        branch0 = unit.Build(inChannels, c32, 1);
        branch1 = nn.Sequential(unit.Build(inChannels, c32, 1), unit.Build(c32, c32, 3, padding: 1));
        branch2 = nn.Sequential(unit.Build(inChannels, c32, 1), unit.Build(c32, c32, 3, padding: 1), unit.Build(c32, c32, 3, padding: 1));
        conv2d = nn.Conv2d(3 * c32, inChannels, 1);
        RegisterComponents();
    }

    /// <summary>The factor applied to the residual branch before the sum.</summary>
    public double Scale { get; }

    /// <inheritdoc/>
    public override Tensor forward(Tensor input)
    {
        using var scope = NewDisposeScope();
        // N x 256 x 17 x 17 (at 160) / 35 x 35 (at 299)
        var x = cat([branch0.call(input), branch1.call(input), branch2.call(input)], 1);
        // N x 96 x 17 x 17
        // Projected back to the input's channels, scaled and added to it (in an inference copy, whose conv units are
        // folded, as one matrix product).
        return Residual.ProjectedSum(conv2d, projection, x, Scale, input, fused: ((IConvBnUnit)branch0).BatchNormFolded, relu: true).MoveToOuterDisposeScope();
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
        x = graph.Add(graph.Scale(x, Scale), input);
        return graph.Relu(x);
    }
}
