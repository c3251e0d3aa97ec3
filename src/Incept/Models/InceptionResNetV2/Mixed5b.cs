using Incept.Export;
using Incept.Layers;
using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;

namespace Incept.Models.InceptionResNetV2;

/// <summary>
/// <c>mixed_5b</c>, the block that ends the Inception-ResNet-v2 stem (the TF-slim network, not the
/// paper's Figure 3 stem): 1×1, 1×1 → 5×5, 1×1 → 3×3 → 3×3 and average pool → 1×1 branches
/// (192 → 320 channels at 35×35, scaled by the model's width).
/// </summary>
public sealed class Mixed5b : nn.Module<Tensor, Tensor>, IOnnxExportable
{
    private readonly BasicConv2d branch0;
    private readonly Sequential branch1;
    private readonly Sequential branch2;
    private readonly Sequential branch3;

    /// <summary>Builds the block on <paramref name="inChannels"/> input channels with the convolution unit <paramref name="u"/>.</summary>
    public Mixed5b(long inChannels, ConvUnit u) : base(nameof(Mixed5b))
    {
        ArgumentNullException.ThrowIfNull(u);
        long c48 = u.Scaled(48), c64 = u.Scaled(64), c96 = u.Scaled(96);
        branch0 = u.Build(inChannels, c96, 1);
        branch1 = nn.Sequential(
            u.Build(inChannels, c48, 1),
            u.Build(c48, c64, 5, padding: 2));
        branch2 = nn.Sequential(
            u.Build(inChannels, c64, 1),
            u.Build(c64, c96, 3, padding: 1),
            u.Build(c96, c96, 3, padding: 1));
        // timm averages over the valid pixels only at the border (count_include_pad=False).
        branch3 = nn.Sequential(
            nn.AvgPool2d(3, stride: 1, padding: 1, count_include_pad: false),
            u.Build(inChannels, c64, 1));
        OutChannels = c96 + c64 + c96 + c64;
        RegisterComponents();
    }

    /// <summary>Channels of the concatenated output.</summary>
    public long OutChannels { get; }

    /// <inheritdoc/>
    public override Tensor forward(Tensor input)
    {
        using var scope = NewDisposeScope();
        // N x 192 x 35 x 35 → N x (96 + 64 + 96 + 64) x 35 x 35
        return cat([branch0.call(input), branch1.call(input), branch2.call(input), Pooling.Call(branch3, input)], 1)
            .MoveToOuterDisposeScope();
    }

    OnnxValue IOnnxExportable.ExportOnnx(OnnxGraphBuilder graph, OnnxValue input)
        => graph.Concat(graph.Call(branch0, input, nameof(branch0)), graph.Call(branch1, input, nameof(branch1)), graph.Call(branch2, input, nameof(branch2)), graph.Call(branch3, input, nameof(branch3)));
}
