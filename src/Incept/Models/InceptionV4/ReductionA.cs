using Incept.Layers;
using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;

namespace Incept.Models.InceptionV4;

/// <summary>
/// Reduction-A of Inception-v4 (paper Figure 7 with k, l, m, n = 192, 224, 256, 384): 35×35 → 17×17,
/// 384 → 1024 channels.
/// </summary>
public sealed class ReductionA : nn.Module<Tensor, Tensor>
{
    private readonly BasicConv2d branch0;
    private readonly Sequential branch1;
    private readonly MaxPool2d branch2;

    /// <summary>Builds the block with the convolution unit <paramref name="u"/>.</summary>
    public ReductionA(ConvUnit u) : base(nameof(ReductionA))
    {
        ArgumentNullException.ThrowIfNull(u);
        branch0 = u.Build(384, 384, 3, stride: 2);
        branch1 = nn.Sequential(
            u.Build(384, 192, 1),
            u.Build(192, 224, 3, padding: 1),
            u.Build(224, 256, 3, stride: 2));
        branch2 = nn.MaxPool2d(3, stride: 2);
        RegisterComponents();
    }

    /// <inheritdoc/>
    public override Tensor forward(Tensor input)
    {
        using var scope = NewDisposeScope();
        // N x 384 x 35 x 35 → N x (384 + 256 + 384) x 17 x 17
        return cat([branch0.call(input), branch1.call(input), branch2.call(input)], 1).MoveToOuterDisposeScope();
    }
}
