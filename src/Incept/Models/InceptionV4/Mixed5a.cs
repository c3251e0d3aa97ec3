using Incept.Export;
using Incept.Layers;
using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;

namespace Incept.Models.InceptionV4;

/// <summary>
/// The last block of the Inception-v4 stem: a 3×3/2 convolution beside a 3×3/2 max pool, concatenated
/// (192 → 384 channels). Note the order: convolution first, pool second (the reverse of <see cref="Mixed3a"/>).
/// For small inputs both are padded by 1, so that the block halves the map exactly.
/// </summary>
public sealed class Mixed5a : nn.Module<Tensor, Tensor>, IOnnxExportable
{
    private readonly BasicConv2d conv;
    private readonly MaxPool2d maxpool;

    /// <summary>
    /// Builds the block on <paramref name="inChannels"/> input channels with the convolution unit
    /// <paramref name="u"/>; <paramref name="smallInput"/> pads the convolution and the pool.
    /// </summary>
    public Mixed5a(long inChannels, ConvUnit u, bool smallInput = false) : base(nameof(Mixed5a))
    {
        ArgumentNullException.ThrowIfNull(u);
        int pad = smallInput ? 1 : 0;
        long c192 = u.Scaled(192);
        conv = u.Build(inChannels, c192, 3, stride: 2, padding: pad);
        maxpool = nn.MaxPool2d(3, stride: 2, padding: pad);
        OutChannels = c192 + inChannels;
        RegisterComponents();
    }

    /// <summary>Channels of the concatenated output.</summary>
    public long OutChannels { get; }

    /// <inheritdoc/>
    public override Tensor forward(Tensor input)
    {
        using var scope = NewDisposeScope();
        // N x 192 x 71 x 71 → N x (192 + 192) x 35 x 35
        return cat([conv.call(input), Pooling.Call(maxpool, input)], 1).MoveToOuterDisposeScope();
    }

    OnnxValue IOnnxExportable.ExportOnnx(OnnxGraphBuilder graph, OnnxValue input)
        => graph.Concat(graph.Call(conv, input, nameof(conv)), graph.Call(maxpool, input, nameof(maxpool)));
}
