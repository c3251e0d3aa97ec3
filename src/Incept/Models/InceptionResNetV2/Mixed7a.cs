using Incept.Layers;
using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;

namespace Incept.Models.InceptionResNetV2;

/// <summary>
/// <c>mixed_7a</c>, Reduction-B of Inception-ResNet-v2 (paper Figure 18): three convolution branches and
/// a max pool, 17×17 → 8×8, 1088 → 2080 channels (the branches scaled by the model's width).
/// </summary>
public sealed class Mixed7a : nn.Module<Tensor, Tensor>
{
    private readonly Sequential branch0;
    private readonly Sequential branch1;
    private readonly Sequential branch2;
    private readonly MaxPool2d branch3;

    /// <summary>Builds the block on <paramref name="inChannels"/> input channels with the convolution unit <paramref name="u"/>.</summary>
    public Mixed7a(long inChannels, ConvUnit u) : base(nameof(Mixed7a))
    {
        ArgumentNullException.ThrowIfNull(u);
        long c256 = u.Scaled(256), c288 = u.Scaled(288), c320 = u.Scaled(320), c384 = u.Scaled(384);
        branch0 = nn.Sequential(
            u.Build(inChannels, c256, 1),
            u.Build(c256, c384, 3, stride: 2));
        branch1 = nn.Sequential(
            u.Build(inChannels, c256, 1),
            u.Build(c256, c288, 3, stride: 2));
        branch2 = nn.Sequential(
            u.Build(inChannels, c256, 1),
            u.Build(c256, c288, 3, padding: 1),
            u.Build(c288, c320, 3, stride: 2));
        branch3 = nn.MaxPool2d(3, stride: 2);
        OutChannels = c384 + c288 + c320 + inChannels;
        RegisterComponents();
    }

    /// <summary>Channels of the concatenated output.</summary>
    public long OutChannels { get; }

    /// <inheritdoc/>
    public override Tensor forward(Tensor input)
    {
        using var scope = NewDisposeScope();
        // N x 1088 x 17 x 17 → N x (384 + 288 + 320 + 1088) x 8 x 8
        return cat([branch0.call(input), branch1.call(input), branch2.call(input), branch3.call(input)], 1)
            .MoveToOuterDisposeScope();
    }
}
