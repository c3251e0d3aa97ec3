using Incept.Layers;
using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;

namespace Incept.Models.InceptionResNetV1;

/// <summary>
/// Reduction-A of Inception-ResNet-v1 (k = 192, l = 192, m = 256, n = 384): a stride-2 3×3, a 1×1→3×3→3×3/2
/// branch and a 3×3/2 max pool, concatenated to 896 channels.
/// </summary>
public sealed class Mixed6a : nn.Module<Tensor, Tensor>
{
    private readonly BasicConv2d branch0;
    private readonly Sequential branch1;
    private readonly MaxPool2d branch2;

    /// <summary>Builds the block.</summary>
    public Mixed6a(ConvUnit unit) : base(nameof(Mixed6a))
    {
        ArgumentNullException.ThrowIfNull(unit);
        branch0 = unit.Build(256, 384, 3, stride: 2);
        branch1 = nn.Sequential(
            unit.Build(256, 192, 1),
            unit.Build(192, 192, 3, padding: 1),
            unit.Build(192, 256, 3, stride: 2));
        branch2 = nn.MaxPool2d(3, stride: 2);
        RegisterComponents();
    }

    /// <inheritdoc/>
    public override Tensor forward(Tensor input)
    {
        using var scope = NewDisposeScope();
        // N x 256 x 17 x 17 (at 160) -> N x (384 + 256 + 256) x 8 x 8
        return cat([branch0.call(input), branch1.call(input), branch2.call(input)], 1).MoveToOuterDisposeScope();
    }
}
