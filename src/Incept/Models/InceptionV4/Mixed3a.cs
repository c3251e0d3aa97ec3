using Incept.Layers;
using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;

namespace Incept.Models.InceptionV4;

/// <summary>
/// The first stride-2 reduction of the Inception-v4 stem (paper Figure 3): a 3×3/2 max pool beside a
/// 3×3/2 convolution to 96 channels, concatenated (64 → 160 channels).
/// </summary>
public sealed class Mixed3a : nn.Module<Tensor, Tensor>
{
    private readonly MaxPool2d maxpool;
    private readonly BasicConv2d conv;

    /// <summary>Builds the block with the convolution unit <paramref name="u"/>.</summary>
    public Mixed3a(ConvUnit u) : base(nameof(Mixed3a))
    {
        ArgumentNullException.ThrowIfNull(u);
        maxpool = nn.MaxPool2d(3, stride: 2);
        conv = u.Build(64, 96, 3, stride: 2);
        RegisterComponents();
    }

    /// <inheritdoc/>
    public override Tensor forward(Tensor input)
    {
        using var scope = NewDisposeScope();
        // N x 64 x 147 x 147 → N x (64 + 96) x 73 x 73
        return cat([maxpool.call(input), conv.call(input)], 1).MoveToOuterDisposeScope();
    }
}
