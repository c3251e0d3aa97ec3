using Incept.Layers;
using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;

namespace Incept.Models.InceptionV3;

/// <summary>Inception-v3's auxiliary classifier on the 17×17 grid, with BatchNorm (the "BN-auxiliary" of the paper).</summary>
public sealed class InceptionAux : nn.Module<Tensor, Tensor>
{
    private readonly BasicConv2d conv0;
    private readonly BasicConv2d conv1;
    private readonly Linear fc;

    /// <summary>Builds the head for a feature map of <paramref name="inChannels"/> channels.</summary>
    public InceptionAux(long inChannels, int numClasses, ConvUnit unit) : base(nameof(InceptionAux))
    {
        ArgumentNullException.ThrowIfNull(unit);
        conv0 = unit.Build(inChannels, 128, 1);
        conv1 = unit.Build(128, 768, 5);
        fc = nn.Linear(768, numClasses);
        RegisterComponents();
    }

    /// <summary>The classifier, which the reference initialises with a smaller standard deviation.</summary>
    internal Linear Fc => fc;

    /// <inheritdoc/>
    public override Tensor forward(Tensor input)
    {
        using var scope = NewDisposeScope();
        // N x 768 x 17 x 17
        var x = nn.functional.avg_pool2d(input, 5, stride: 3);
        // N x 768 x 5 x 5
        x = conv1.call(conv0.call(x));
        // N x 768 x 1 x 1
        x = flatten(nn.functional.adaptive_avg_pool2d(x, [1, 1]), 1);
        return fc.call(x).MoveToOuterDisposeScope();
    }
}
