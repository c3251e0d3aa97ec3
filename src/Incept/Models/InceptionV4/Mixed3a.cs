using Incept.Export;
using Incept.Layers;
using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;

namespace Incept.Models.InceptionV4;

/// <summary>
/// The first stride-2 reduction of the Inception-v4 stem (paper Figure 3): a 3×3/2 max pool beside a
/// 3×3/2 convolution to 96 channels, concatenated (64 → 160 channels). For small inputs the pool is an identity
/// and the convolution has stride 1 and padding 1, so that the block keeps the resolution.
/// </summary>
public sealed class Mixed3a : nn.Module<Tensor, Tensor>, IOnnxExportable
{
    private readonly nn.Module<Tensor, Tensor> maxpool;
    private readonly BasicConv2d conv;

    /// <summary>
    /// Builds the block on <paramref name="inChannels"/> input channels with the convolution unit
    /// <paramref name="u"/>; <paramref name="smallInput"/> keeps the resolution.
    /// </summary>
    public Mixed3a(long inChannels, ConvUnit u, bool smallInput = false) : base(nameof(Mixed3a))
    {
        ArgumentNullException.ThrowIfNull(u);
        maxpool = smallInput ? nn.Identity() : nn.MaxPool2d(3, stride: 2);
        long c96 = u.Scaled(96);
        conv = smallInput ? u.Build(inChannels, c96, 3, padding: 1) : u.Build(inChannels, c96, 3, stride: 2);
        OutChannels = inChannels + c96;
        RegisterComponents();
    }

    /// <summary>Channels of the concatenated output.</summary>
    public long OutChannels { get; }

    /// <inheritdoc/>
    public override Tensor forward(Tensor input)
    {
        using var scope = NewDisposeScope();
        // N x 64 x 147 x 147 → N x (64 + 96) x 73 x 73
        return cat([Pooling.Call(maxpool, input), conv.call(input)], 1).MoveToOuterDisposeScope();
    }

    OnnxValue IOnnxExportable.ExportOnnx(OnnxGraphBuilder graph, OnnxValue input)
        => graph.Concat(graph.Call(maxpool, input, nameof(maxpool)), graph.Call(conv, input, nameof(conv)));
}
