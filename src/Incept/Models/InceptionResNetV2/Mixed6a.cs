using Incept.Layers;
using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;

namespace Incept.Models.InceptionResNetV2;

/// <summary>
/// <c>mixed_6a</c>, Reduction-A of Inception-ResNet-v2 (paper Figure 7 with k, l, m, n = 256, 256, 384, 384):
/// 35×35 → 17×17, 320 → 1088 channels.
/// </summary>
public sealed class Mixed6a : nn.Module<Tensor, Tensor>
{
    private readonly BasicConv2d branch0;
    private readonly Sequential branch1;
    private readonly MaxPool2d branch2;

    /// <summary>Builds the block with the convolution unit <paramref name="u"/>.</summary>
    public Mixed6a(ConvUnit u) : base(nameof(Mixed6a))
    {
        ArgumentNullException.ThrowIfNull(u);
        branch0 = u.Build(320, 384, 3, stride: 2);
        branch1 = nn.Sequential(
            u.Build(320, 256, 1),
            u.Build(256, 256, 3, padding: 1),
            u.Build(256, 384, 3, stride: 2));
        branch2 = nn.MaxPool2d(3, stride: 2);
        RegisterComponents();
    }

    /// <inheritdoc/>
    public override Tensor forward(Tensor input)
    {
        using var scope = NewDisposeScope();
        // N x 320 x 35 x 35 → N x (384 + 384 + 320) x 17 x 17
        return cat([branch0.call(input), branch1.call(input), branch2.call(input)], 1).MoveToOuterDisposeScope();
    }
}
