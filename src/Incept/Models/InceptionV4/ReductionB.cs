using Incept.Layers;
using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;

namespace Incept.Models.InceptionV4;

/// <summary>
/// Reduction-B of Inception-v4 (paper Figure 8): 17×17 → 8×8, 1024 → 1536 channels.
/// </summary>
public sealed class ReductionB : nn.Module<Tensor, Tensor>
{
    private readonly Sequential branch0;
    private readonly Sequential branch1;
    private readonly MaxPool2d branch2;

    /// <summary>Builds the block with the convolution unit <paramref name="u"/>.</summary>
    public ReductionB(ConvUnit u) : base(nameof(ReductionB))
    {
        ArgumentNullException.ThrowIfNull(u);
        branch0 = nn.Sequential(
            u.Build(1024, 192, 1),
            u.Build(192, 192, 3, stride: 2));
        branch1 = nn.Sequential(
            u.Build(1024, 256, 1),
            u.Build(256, 256, (1, 7), (0, 3)),
            u.Build(256, 320, (7, 1), (3, 0)),
            u.Build(320, 320, 3, stride: 2));
        branch2 = nn.MaxPool2d(3, stride: 2);
        RegisterComponents();
    }

    /// <inheritdoc/>
    public override Tensor forward(Tensor input)
    {
        using var scope = NewDisposeScope();
        // N x 1024 x 17 x 17 → N x (192 + 320 + 1024) x 8 x 8
        return cat([branch0.call(input), branch1.call(input), branch2.call(input)], 1).MoveToOuterDisposeScope();
    }
}
