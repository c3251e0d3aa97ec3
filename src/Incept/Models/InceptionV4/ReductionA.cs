using Incept.Export;
using Incept.Layers;
using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;

namespace Incept.Models.InceptionV4;

/// <summary>
/// Reduction-A of the Inception-v4 paper (Figure 7), shared by the three networks of that paper with their
/// filter counts k, l, m, n (Table 1): Inception-v4 192, 224, 256, 384; Inception-ResNet-v1 192, 192, 256, 384;
/// Inception-ResNet-v2 256, 256, 384, 384. A stride-2 3×3 (n), a 1×1 (k) → 3×3 (l) → stride-2 3×3 (m) branch
/// and a stride-2 3×3 max pool, concatenated: 35×35 → 17×17 with <c>inChannels + m + n</c> channels (k, l, m
/// and n scaled by the model's width).
/// </summary>
public sealed class ReductionA : nn.Module<Tensor, Tensor>, IOnnxExportable
{
    private readonly BasicConv2d branch0;
    private readonly Sequential branch1;
    private readonly MaxPool2d branch2;

    /// <summary>
    /// Builds the block on <paramref name="inChannels"/> input channels with the paper's filter counts, scaled by
    /// the width of the convolution unit <paramref name="u"/>.
    /// </summary>
    public ReductionA(long inChannels, long k, long l, long m, long n, ConvUnit u) : base(nameof(ReductionA))
    {
        ArgumentNullException.ThrowIfNull(u);
        (k, l, m, n) = (u.Scaled(k), u.Scaled(l), u.Scaled(m), u.Scaled(n));
        branch0 = u.Build(inChannels, n, 3, stride: 2);
        branch1 = nn.Sequential(
            u.Build(inChannels, k, 1),
            u.Build(k, l, 3, padding: 1),
            u.Build(l, m, 3, stride: 2));
        branch2 = nn.MaxPool2d(3, stride: 2);
        OutChannels = inChannels + m + n;
        RegisterComponents();
    }

    /// <summary>Channels of the concatenated output.</summary>
    public long OutChannels { get; }

    /// <inheritdoc/>
    public override Tensor forward(Tensor input)
    {
        using var scope = NewDisposeScope();
        // N x C x 35 x 35 → N x (n + m + C) x 17 x 17
        return cat([branch0.call(input), branch1.call(input), Pooling.Call(branch2, input)], 1).MoveToOuterDisposeScope();
    }

    OnnxValue IOnnxExportable.ExportOnnx(OnnxGraphBuilder graph, OnnxValue input)
        => graph.Concat(graph.Call(branch0, input, nameof(branch0)), graph.Call(branch1, input, nameof(branch1)), graph.Call(branch2, input, nameof(branch2)));
}
