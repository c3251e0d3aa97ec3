using Incept.Models;
using TorchSharp.Modules;
using static TorchSharp.torch;

namespace Incept.Tests.Models;

/// <summary>
/// Gives a freshly initialised network BatchNorm statistics measured on one batch of random inputs. With the initial
/// statistics (mean 0, variance 1) evaluation mode does not rescale, the small initial weights shrink the activations
/// layer by layer to nothing, and the logits are the classifier's bias whatever the input; after calibration each layer
/// sees unit-scale inputs, as in a trained network, so the logits depend on the image.
/// </summary>
internal static class BatchNormCalibration
{
    /// <summary>Sets the running statistics of every BatchNorm of <paramref name="model"/> to those of one batch of random <paramref name="size"/>-pixel inputs.</summary>
    public static void Calibrate(InceptionModel model, int inChannels, int size, int seed = 0)
    {
        var norms = model.modules().OfType<BatchNorm>().ToList();
        var momenta = norms.Select(bn => bn.momentum).ToList();
        bool training = model.training;
        try
        {
            // Momentum 1: the running statistics become this batch's.
            foreach (var bn in norms) bn.momentum = 1.0;
            model.train();
            using var scope = NewDisposeScope();
            using var _ = no_grad();
            model.call(randn([8, inChannels, size, size], generator: new Generator((ulong)seed)));
        }
        finally
        {
            for (int i = 0; i < norms.Count; i++) norms[i].momentum = momenta[i];
            model.train(training);
        }
    }

    /// <summary>
    /// <see cref="Calibrate"/>, then moves every BatchNorm's statistics and affine parameters away from it (mean shifted
    /// by up to a few tenths of a deviation, variance scaled by 0.7–1.3, scale 0.75–1.25, shift of a few tenths), so
    /// that folding them into the convolutions is not the identity while the activations keep their unit scale.
    /// </summary>
    public static void CalibrateAndPerturb(InceptionModel model, int inChannels, int size, int seed)
    {
        Calibrate(model, inChannels, size, seed);
        using var _ = no_grad();
        var g = new Generator((ulong)seed);
        foreach (var bn in model.modules().OfType<BatchNorm>())
        {
            long c = bn.running_mean!.shape[0];
            using var scope = NewDisposeScope();
            bn.running_mean.add_(randn(c, generator: g).mul_(bn.running_var!.sqrt()).mul_(0.2));
            bn.running_var.mul_(rand(c, generator: g).mul_(0.6).add_(0.7));
            bn.weight?.copy_(rand(c, generator: g).mul_(0.5).add_(0.75));
            bn.bias?.copy_(randn(c, generator: g).mul_(0.2));
        }
    }

    /// <summary>How far apart the logits of the first two images are, relative to the first's: near 0 when the network ignores its input.</summary>
    public static double InputDependence(Tensor logits)
    {
        using var scope = NewDisposeScope();
        return (logits[0] - logits[1]).norm().item<float>() / logits[0].norm().item<float>();
    }
}
