using Incept.Export;
using Incept.Layers;
using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;

namespace Incept.Models.InceptionResNetV1;

/// <summary>
/// The 17×17 residual block of Inception-ResNet-v1 ("Inception-resnet-B"): 1×1 and 1×1→1×7→7×1 branches,
/// a 1×1 projection with bias back to the input's 896 channels, a scaled residual sum and a ReLU. The branches
/// scale with the model's width; the projection always returns to the input's channels.
/// </summary>
public sealed class Block17 : nn.Module<Tensor, Tensor>, IOnnxExportable, IProjectedResidual
{
    private readonly BasicConv2d branch0;
    private readonly Sequential branch1;
    private readonly Conv2d conv2d;
    private PanelProduct? projection;

    /// <summary>
    /// Builds the block on <paramref name="inChannels"/> channels (896 in the reference); <paramref name="scale"/>
    /// multiplies the residual branch (0.10 in the reference).
    /// </summary>
    public Block17(long inChannels, double scale, ConvUnit unit) : base(nameof(Block17))
    {
        ArgumentNullException.ThrowIfNull(unit);
        Scale = scale;
        long c128 = unit.Scaled(128);
        branch0 = unit.Build(inChannels, c128, 1);
        branch1 = nn.Sequential(
            unit.Build(inChannels, c128, 1),
            unit.Build(c128, c128, (1, 7), (0, 3)),
            unit.Build(c128, c128, (7, 1), (3, 0)));
        conv2d = nn.Conv2d(2 * c128, inChannels, 1);
        RegisterComponents();
    }

    /// <summary>The factor applied to the residual branch before the sum.</summary>
    public double Scale { get; }

    /// <inheritdoc/>
    public override Tensor forward(Tensor input)
    {
        using var scope = NewDisposeScope();
        // N x 896 x 8 x 8 (at 160) / 17 x 17 (at 299)
        var x = cat([branch0.call(input), branch1.call(input)], 1);
        // N x 256 x 8 x 8
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
        var x = graph.Call(conv2d, graph.Concat(graph.Call(branch0, input, nameof(branch0)), graph.Call(branch1, input, nameof(branch1))), nameof(conv2d));
        x = graph.Add(graph.Scale(x, Scale), input);
        return graph.Relu(x);
    }
}
