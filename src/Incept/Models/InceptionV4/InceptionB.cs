using Incept.Export;
using Incept.Layers;
using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;

namespace Incept.Models.InceptionV4;

/// <summary>
/// Inception-B, the 17×17 block of Inception-v4 (paper Figure 5): 1×1, factorised 7×7 and doubly
/// factorised 7×7 branches and an average pool → 1×1 branch (1024 → 1024 channels, scaled by the model's width).
/// </summary>
public sealed class InceptionB : nn.Module<Tensor, Tensor>, IOnnxExportable
{
    private readonly BasicConv2d branch0;
    private readonly Sequential branch1;
    private readonly Sequential branch2;
    private readonly Sequential branch3;

    /// <summary>Builds the block on <paramref name="inChannels"/> input channels with the convolution unit <paramref name="u"/>.</summary>
    public InceptionB(long inChannels, ConvUnit u) : base(nameof(InceptionB))
    {
        ArgumentNullException.ThrowIfNull(u);
        long c128 = u.Scaled(128), c192 = u.Scaled(192), c224 = u.Scaled(224), c256 = u.Scaled(256), c384 = u.Scaled(384);
        branch0 = u.Build(inChannels, c384, 1);
        branch1 = nn.Sequential(
            u.Build(inChannels, c192, 1),
            u.Build(c192, c224, (1, 7), (0, 3)),
            u.Build(c224, c256, (7, 1), (3, 0)));
        // The doubly factorised branch starts with 7×1 and then alternates, as the reference (and its TF weights) has it.
        branch2 = nn.Sequential(
            u.Build(inChannels, c192, 1),
            u.Build(c192, c192, (7, 1), (3, 0)),
            u.Build(c192, c224, (1, 7), (0, 3)),
            u.Build(c224, c224, (7, 1), (3, 0)),
            u.Build(c224, c256, (1, 7), (0, 3)));
        branch3 = nn.Sequential(
            nn.AvgPool2d(3, stride: 1, padding: 1, count_include_pad: false),
            u.Build(inChannels, c128, 1));
        OutChannels = c384 + c256 + c256 + c128;
        RegisterComponents();
    }

    /// <summary>Channels of the concatenated output.</summary>
    public long OutChannels { get; }

    /// <inheritdoc/>
    public override Tensor forward(Tensor input)
    {
        using var scope = NewDisposeScope();
        // N x 1024 x 17 x 17 → N x (384 + 256 + 256 + 128) x 17 x 17
        return cat([branch0.call(input), branch1.call(input), branch2.call(input), Pooling.Call(branch3, input)], 1)
            .MoveToOuterDisposeScope();
    }

    OnnxValue IOnnxExportable.ExportOnnx(OnnxGraphBuilder graph, OnnxValue input)
        => graph.Concat(graph.Call(branch0, input, nameof(branch0)), graph.Call(branch1, input, nameof(branch1)), graph.Call(branch2, input, nameof(branch2)), graph.Call(branch3, input, nameof(branch3)));
}
