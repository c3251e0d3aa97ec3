using Incept.Layers;
using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;

namespace Incept.Models.InceptionResNetV1;

/// <summary>
/// Reduction-B of Inception-ResNet-v1: three 1×1→3×3/2 branches (one with an extra 3×3) and a 3×3/2 max
/// pool, concatenated to 1792 channels (the branches scaled by the model's width).
/// </summary>
public sealed class Mixed7a : nn.Module<Tensor, Tensor>
{
    private readonly Sequential branch0;
    private readonly Sequential branch1;
    private readonly Sequential branch2;
    private readonly MaxPool2d branch3;

    /// <summary>Builds the block on <paramref name="inChannels"/> input channels (896 in the reference).</summary>
    public Mixed7a(long inChannels, ConvUnit unit) : base(nameof(Mixed7a))
    {
        ArgumentNullException.ThrowIfNull(unit);
        long c256 = unit.Scaled(256), c384 = unit.Scaled(384);
        branch0 = nn.Sequential(unit.Build(inChannels, c256, 1), unit.Build(c256, c384, 3, stride: 2));
        branch1 = nn.Sequential(unit.Build(inChannels, c256, 1), unit.Build(c256, c256, 3, stride: 2));
        branch2 = nn.Sequential(
            unit.Build(inChannels, c256, 1),
            unit.Build(c256, c256, 3, padding: 1),
            unit.Build(c256, c256, 3, stride: 2));
        branch3 = nn.MaxPool2d(3, stride: 2);
        OutChannels = c384 + c256 + c256 + inChannels;
        RegisterComponents();
    }

    /// <summary>Channels of the concatenated output.</summary>
    public long OutChannels { get; }

    /// <inheritdoc/>
    public override Tensor forward(Tensor input)
    {
        using var scope = NewDisposeScope();
        // N x 896 x 8 x 8 (at 160) -> N x (384 + 256 + 256 + 896) x 3 x 3
        return cat([branch0.call(input), branch1.call(input), branch2.call(input), branch3.call(input)], 1)
            .MoveToOuterDisposeScope();
    }
}
