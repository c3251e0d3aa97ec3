using Incept.Layers;
using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;

namespace Incept.Models.InceptionV4;

/// <summary>
/// The second block of the Inception-v4 stem: a 1×1 → 3×3 branch and a 1×1 → 1×7 → 7×1 → 3×3 branch,
/// both unpadded in their last 3×3 (160 → 192 channels, the map shrinks by 2).
/// </summary>
public sealed class Mixed4a : nn.Module<Tensor, Tensor>
{
    private readonly Sequential branch0;
    private readonly Sequential branch1;

    /// <summary>Builds the block with the convolution unit <paramref name="u"/>.</summary>
    public Mixed4a(ConvUnit u) : base(nameof(Mixed4a))
    {
        ArgumentNullException.ThrowIfNull(u);
        branch0 = nn.Sequential(
            u.Build(160, 64, 1),
            u.Build(64, 96, 3));
        branch1 = nn.Sequential(
            u.Build(160, 64, 1),
            u.Build(64, 64, (1, 7), (0, 3)),
            u.Build(64, 64, (7, 1), (3, 0)),
            u.Build(64, 96, 3));
        RegisterComponents();
    }

    /// <inheritdoc/>
    public override Tensor forward(Tensor input)
    {
        using var scope = NewDisposeScope();
        // N x 160 x 73 x 73 → N x (96 + 96) x 71 x 71
        return cat([branch0.call(input), branch1.call(input)], 1).MoveToOuterDisposeScope();
    }
}
