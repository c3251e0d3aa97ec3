using Incept.Export;
using Incept.Layers;
using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;

namespace Incept.Models.InceptionV4;

/// <summary>
/// The second block of the Inception-v4 stem: a 1×1 → 3×3 branch and a 1×1 → 1×7 → 7×1 → 3×3 branch,
/// both unpadded in their last 3×3 (160 → 192 channels, the map shrinks by 2; padded for small inputs, so that
/// the map keeps its size).
/// </summary>
public sealed class Mixed4a : nn.Module<Tensor, Tensor>, IOnnxExportable
{
    private readonly Sequential branch0;
    private readonly Sequential branch1;

    /// <summary>
    /// Builds the block on <paramref name="inChannels"/> input channels with the convolution unit
    /// <paramref name="u"/>; <paramref name="smallInput"/> pads the last 3×3 convolutions.
    /// </summary>
    public Mixed4a(long inChannels, ConvUnit u, bool smallInput = false) : base(nameof(Mixed4a))
    {
        ArgumentNullException.ThrowIfNull(u);
        long c64 = u.Scaled(64), c96 = u.Scaled(96);
        int pad = smallInput ? 1 : 0;
        branch0 = nn.Sequential(
            u.Build(inChannels, c64, 1),
            u.Build(c64, c96, 3, padding: pad));
        branch1 = nn.Sequential(
            u.Build(inChannels, c64, 1),
            u.Build(c64, c64, (1, 7), (0, 3)),
            u.Build(c64, c64, (7, 1), (3, 0)),
            u.Build(c64, c96, 3, padding: pad));
        OutChannels = 2 * c96;
        RegisterComponents();
    }

    /// <summary>Channels of the concatenated output.</summary>
    public long OutChannels { get; }

    /// <inheritdoc/>
    public override Tensor forward(Tensor input)
    {
        using var scope = NewDisposeScope();
        // N x 160 x 73 x 73 → N x (96 + 96) x 71 x 71
        return cat([branch0.call(input), branch1.call(input)], 1).MoveToOuterDisposeScope();
    }

    OnnxValue IOnnxExportable.ExportOnnx(OnnxGraphBuilder graph, OnnxValue input)
        => graph.Concat(graph.Call(branch0, input, nameof(branch0)), graph.Call(branch1, input, nameof(branch1)));
}
