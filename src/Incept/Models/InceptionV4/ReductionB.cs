using Incept.Export;
using Incept.Layers;
using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;

namespace Incept.Models.InceptionV4;

/// <summary>
/// Reduction-B of Inception-v4 (paper Figure 8): 17×17 → 8×8, 1024 → 1536 channels (the branches scaled by the
/// model's width).
/// </summary>
public sealed class ReductionB : nn.Module<Tensor, Tensor>, IOnnxExportable
{
    private readonly Sequential branch0;
    private readonly Sequential branch1;
    private readonly MaxPool2d branch2;

    /// <summary>Builds the block on <paramref name="inChannels"/> input channels with the convolution unit <paramref name="u"/>.</summary>
    public ReductionB(long inChannels, ConvUnit u) : base(nameof(ReductionB))
    {
        ArgumentNullException.ThrowIfNull(u);
        long c192 = u.Scaled(192), c256 = u.Scaled(256), c320 = u.Scaled(320);
        branch0 = nn.Sequential(
            u.Build(inChannels, c192, 1),
            u.Build(c192, c192, 3, stride: 2));
        branch1 = nn.Sequential(
            u.Build(inChannels, c256, 1),
            u.Build(c256, c256, (1, 7), (0, 3)),
            u.Build(c256, c320, (7, 1), (3, 0)),
            u.Build(c320, c320, 3, stride: 2));
        branch2 = nn.MaxPool2d(3, stride: 2);
        OutChannels = c192 + c320 + inChannels;
        RegisterComponents();
    }

    /// <summary>Channels of the concatenated output.</summary>
    public long OutChannels { get; }

    /// <inheritdoc/>
    public override Tensor forward(Tensor input)
    {
        using var scope = NewDisposeScope();
        // N x 1024 x 17 x 17 → N x (192 + 320 + 1024) x 8 x 8
        return cat([branch0.call(input), branch1.call(input), Pooling.Call(branch2, input)], 1).MoveToOuterDisposeScope();
    }

    OnnxValue IOnnxExportable.ExportOnnx(OnnxGraphBuilder graph, OnnxValue input)
        => graph.Concat(graph.Call(branch0, input, nameof(branch0)), graph.Call(branch1, input, nameof(branch1)), graph.Call(branch2, input, nameof(branch2)));
}
