using Incept.Layers;
using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;

namespace Incept.Models.InceptionResNetV2;

/// <summary>
/// <c>mixed_7a</c>, Reduction-B of Inception-ResNet-v2 (paper Figure 18): three convolution branches and
/// a max pool, 17×17 → 8×8, 1088 → 2080 channels.
/// </summary>
public sealed class Mixed7a : nn.Module<Tensor, Tensor>
{
    private readonly Sequential branch0;
    private readonly Sequential branch1;
    private readonly Sequential branch2;
    private readonly MaxPool2d branch3;

    /// <summary>Builds the block with the convolution unit <paramref name="u"/>.</summary>
    public Mixed7a(ConvUnit u) : base(nameof(Mixed7a))
    {
        ArgumentNullException.ThrowIfNull(u);
        branch0 = nn.Sequential(
            u.Build(1088, 256, 1),
            u.Build(256, 384, 3, stride: 2));
        branch1 = nn.Sequential(
            u.Build(1088, 256, 1),
            u.Build(256, 288, 3, stride: 2));
        branch2 = nn.Sequential(
            u.Build(1088, 256, 1),
            u.Build(256, 288, 3, padding: 1),
            u.Build(288, 320, 3, stride: 2));
        branch3 = nn.MaxPool2d(3, stride: 2);
        RegisterComponents();
    }

    /// <inheritdoc/>
    public override Tensor forward(Tensor input)
    {
        using var scope = NewDisposeScope();
        // N x 1088 x 17 x 17 → N x (384 + 288 + 320 + 1088) x 8 x 8
        return cat([branch0.call(input), branch1.call(input), branch2.call(input), branch3.call(input)], 1)
            .MoveToOuterDisposeScope();
    }
}
