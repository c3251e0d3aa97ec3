using Incept.Layers;
using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;

namespace Incept.Models.InceptionV3;

/// <summary>
/// Inception-v3's auxiliary classifier on the 17×17 grid, with BatchNorm (the "BN-auxiliary" of the paper). Its
/// convolutions (128 and 768 channels) scale with the model's width.
/// </summary>
public sealed class InceptionAux : nn.Module<Tensor, Tensor>
{
    private readonly BasicConv2d conv0;
    private readonly BasicConv2d conv1;
    private readonly Linear fc;
    private readonly bool adaptivePool;

    /// <summary>
    /// Builds the head for a feature map of <paramref name="inChannels"/> channels. With <paramref name="adaptivePool"/>
    /// the 5×5/3 average pool becomes an adaptive 5×5 average pool, so that the head works on the small grid of
    /// <see cref="ModelConfig.SmallInput"/>.
    /// </summary>
    public InceptionAux(long inChannels, int numClasses, ConvUnit unit, bool adaptivePool = false) : base(nameof(InceptionAux))
    {
        ArgumentNullException.ThrowIfNull(unit);
        long c128 = unit.Scaled(128), c768 = unit.Scaled(768);
        conv0 = unit.Build(inChannels, c128, 1);
        conv1 = unit.Build(c128, c768, 5);
        fc = nn.Linear(c768, numClasses);
        this.adaptivePool = adaptivePool;
        RegisterComponents();
    }

    /// <summary>The classifier, which the reference initialises with a smaller standard deviation.</summary>
    internal Linear Fc => fc;

    /// <inheritdoc/>
    public override Tensor forward(Tensor input)
    {
        using var scope = NewDisposeScope();
        // N x 768 x 17 x 17
        var x = adaptivePool
            ? nn.functional.adaptive_avg_pool2d(input, [5, 5])
            : nn.functional.avg_pool2d(input, 5, stride: 3);
        // N x 768 x 5 x 5
        x = conv1.call(conv0.call(x));
        // N x 768 x 1 x 1
        x = flatten(nn.functional.adaptive_avg_pool2d(x, [1, 1]), 1);
        return fc.call(x).MoveToOuterDisposeScope();
    }
}
