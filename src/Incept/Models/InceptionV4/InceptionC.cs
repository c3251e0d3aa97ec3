using Incept.Export;
using Incept.Layers;
using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;

namespace Incept.Models.InceptionV4;

/// <summary>
/// Inception-C, the 8×8 block of Inception-v4 (paper Figure 6): 1×1, a 1×1 that splits into 1×3 and
/// 3×1, a 1×1 → 3×1 → 1×3 that splits into 1×3 and 3×1, and an average pool → 1×1 (1536 → 1536 channels,
/// scaled by the model's width).
/// The split convolutions are flat children (<c>branch1_1a</c>, <c>branch2_3b</c>), as in the reference.
/// </summary>
public sealed class InceptionC : nn.Module<Tensor, Tensor>, IOnnxExportable
{
    private readonly BasicConv2d branch0;
    private readonly BasicConv2d branch1_0;
    private readonly BasicConv2d branch1_1a;
    private readonly BasicConv2d branch1_1b;
    private readonly BasicConv2d branch2_0;
    private readonly BasicConv2d branch2_1;
    private readonly BasicConv2d branch2_2;
    private readonly BasicConv2d branch2_3a;
    private readonly BasicConv2d branch2_3b;
    private readonly Sequential branch3;

    /// <summary>Builds the block on <paramref name="inChannels"/> input channels with the convolution unit <paramref name="u"/>.</summary>
    public InceptionC(long inChannels, ConvUnit u) : base(nameof(InceptionC))
    {
        ArgumentNullException.ThrowIfNull(u);
        long c256 = u.Scaled(256), c384 = u.Scaled(384), c448 = u.Scaled(448), c512 = u.Scaled(512);
        branch0 = u.Build(inChannels, c256, 1);
        branch1_0 = u.Build(inChannels, c384, 1);
        branch1_1a = u.Build(c384, c256, (1, 3), (0, 1));
        branch1_1b = u.Build(c384, c256, (3, 1), (1, 0));
        branch2_0 = u.Build(inChannels, c384, 1);
        branch2_1 = u.Build(c384, c448, (3, 1), (1, 0));
        branch2_2 = u.Build(c448, c512, (1, 3), (0, 1));
        branch2_3a = u.Build(c512, c256, (1, 3), (0, 1));
        branch2_3b = u.Build(c512, c256, (3, 1), (1, 0));
        branch3 = nn.Sequential(
            nn.AvgPool2d(3, stride: 1, padding: 1, count_include_pad: false),
            u.Build(inChannels, c256, 1));
        OutChannels = 6 * c256;
        RegisterComponents();
    }

    /// <summary>Channels of the concatenated output.</summary>
    public long OutChannels { get; }

    /// <inheritdoc/>
    public override Tensor forward(Tensor input)
    {
        using var scope = NewDisposeScope();
        // N x 1536 x 8 x 8
        var x0 = branch0.call(input);
        // N x 256 x 8 x 8
        var x1 = branch1_0.call(input);
        // N x 384 x 8 x 8
        x1 = cat([branch1_1a.call(x1), branch1_1b.call(x1)], 1);
        // N x 512 x 8 x 8
        var x2 = branch2_0.call(input);
        // N x 384 x 8 x 8
        x2 = branch2_1.call(x2);
        // N x 448 x 8 x 8
        x2 = branch2_2.call(x2);
        // N x 512 x 8 x 8
        x2 = cat([branch2_3a.call(x2), branch2_3b.call(x2)], 1);
        // N x 512 x 8 x 8
        var x3 = Pooling.Call(branch3, input);
        // N x 256 x 8 x 8
        return cat([x0, x1, x2, x3], 1).MoveToOuterDisposeScope();
        // N x (256 + 512 + 512 + 256) x 8 x 8
    }

    OnnxValue IOnnxExportable.ExportOnnx(OnnxGraphBuilder graph, OnnxValue input)
    {
        var x0 = graph.Call(branch0, input, nameof(branch0));
        var x1 = graph.Call(branch1_0, input, nameof(branch1_0));
        x1 = graph.Concat(graph.Call(branch1_1a, x1, nameof(branch1_1a)), graph.Call(branch1_1b, x1, nameof(branch1_1b)));
        var x2 = graph.Call(branch2_0, input, nameof(branch2_0));
        x2 = graph.Call(branch2_1, x2, nameof(branch2_1));
        x2 = graph.Call(branch2_2, x2, nameof(branch2_2));
        x2 = graph.Concat(graph.Call(branch2_3a, x2, nameof(branch2_3a)), graph.Call(branch2_3b, x2, nameof(branch2_3b)));
        var x3 = graph.Call(branch3, input, nameof(branch3));
        return graph.Concat(x0, x1, x2, x3);
    }
}
