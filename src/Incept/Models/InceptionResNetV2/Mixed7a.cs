using Incept.Export;
using Incept.Layers;
using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;

namespace Incept.Models.InceptionResNetV2;

/// <summary>
/// <c>mixed_7a</c>, Reduction-B of the Inception-ResNets (paper Figures 12 and 18): three 1×1 → 3×3/2 branches
/// (the third with an extra 3×3) and a 3×3/2 max pool. Inception-ResNet-v2's widths are the defaults
/// (17×17 → 8×8, 1088 → 2080 channels); Inception-ResNet-v1 uses 256, 256, 256 (896 → 1792). The branches are
/// scaled by the model's width.
/// </summary>
public sealed class Mixed7a : nn.Module<Tensor, Tensor>, IOnnxExportable
{
    private readonly Sequential branch0;
    private readonly Sequential branch1;
    private readonly Sequential branch2;
    private readonly MaxPool2d branch3;

    /// <summary>
    /// Builds the block on <paramref name="inChannels"/> input channels with the convolution unit <paramref name="u"/>;
    /// the reference widths of the second branch's output and the third branch's middle and output convolutions.
    /// </summary>
    public Mixed7a(long inChannels, ConvUnit u, long branch1Out = 288, long branch2Mid = 288, long branch2Out = 320) : base(nameof(Mixed7a))
    {
        ArgumentNullException.ThrowIfNull(u);
        long c256 = u.Scaled(256), c384 = u.Scaled(384);
        long b1 = u.Scaled(branch1Out), b2Mid = u.Scaled(branch2Mid), b2 = u.Scaled(branch2Out);
        branch0 = nn.Sequential(
            u.Build(inChannels, c256, 1),
            u.Build(c256, c384, 3, stride: 2));
        branch1 = nn.Sequential(
            u.Build(inChannels, c256, 1),
            u.Build(c256, b1, 3, stride: 2));
        branch2 = nn.Sequential(
            u.Build(inChannels, c256, 1),
            u.Build(c256, b2Mid, 3, padding: 1),
            u.Build(b2Mid, b2, 3, stride: 2));
        branch3 = nn.MaxPool2d(3, stride: 2);
        OutChannels = c384 + b1 + b2 + inChannels;
        RegisterComponents();
    }

    /// <summary>Channels of the concatenated output.</summary>
    public long OutChannels { get; }

    /// <inheritdoc/>
    public override Tensor forward(Tensor input)
    {
        using var scope = NewDisposeScope();
        // v2: N x 1088 x 17 x 17 → N x (384 + 288 + 320 + 1088) x 8 x 8; v1: N x 896 → N x (384 + 256 + 256 + 896)
        return cat([branch0.call(input), branch1.call(input), branch2.call(input), Pooling.Call(branch3, input)], 1)
            .MoveToOuterDisposeScope();
    }

    OnnxValue IOnnxExportable.ExportOnnx(OnnxGraphBuilder graph, OnnxValue input)
        => graph.Concat(graph.Call(branch0, input, nameof(branch0)), graph.Call(branch1, input, nameof(branch1)), graph.Call(branch2, input, nameof(branch2)), graph.Call(branch3, input, nameof(branch3)));
}
